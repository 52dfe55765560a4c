package netpoll

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
)

// Idle timeouts are watched by one coarse timing wheel per poller, turned by
// the poller's own ticker, so 100k idle connections cost no timers. Activity
// costs one atomic store of a coarse clock (lastActive); the wheel looks at
// a connection only when its slot comes round, closes it if it has been idle
// long enough, and otherwise puts it back in the slot of its new expiry.

const (
	idleTick       = 250 * time.Millisecond
	idleWheelSlots = 256 // slots ahead of the cursor: about a minute at idleTick
)

// coarseClock is unix nanoseconds, advanced by the poller tickers while any
// idle timeout is in use; touch reads it instead of the system clock.
var coarseClock struct {
	sync.Once
	now atomic.Int64
}

// idleWheel is one poller's wheel. Owned by the poller goroutine, except
// incoming, which any goroutine may append to under mu.
type idleWheel struct {
	mu       sync.Mutex
	incoming []*connection // guarded by mu

	slots    [idleWheelSlots][]*connection
	cursor   int
	lastTick int64 // the coarse clock this wheel set at its previous tick
}

// watchIdle files c under its poller's wheel; the caller won idleWatched.
// It starts the tickers the first time an idle timeout is used.
func (c *connection) watchIdle() {
	coarseClock.Do(func() {
		coarseClock.now.Store(time.Now().UnixNano())
		pollers.SetTickers(idleTick, tickIdleWheel)
	})
	c.lastActive.Store(time.Now().UnixNano())
	w := wheelOf(c.operator.Poller().(*poller.Poller))
	w.mu.Lock()
	w.incoming = append(w.incoming, c)
	w.mu.Unlock()
}

// startIdleWatch files c under its wheel if it has an idle timeout and is
// not filed yet. A connection is filed once however often its timeout is
// switched off and on: idleWatched says it is in the wheel, or on its way.
func (c *connection) startIdleWatch() {
	if c.operator != nil && c.idleClose.Load() > 0 && c.idleWatched.CompareAndSwap(false, true) {
		c.watchIdle()
	}
}

// wheelOf returns p's idle wheel.
func wheelOf(p *poller.Poller) *idleWheel { return &stateOf(p).wheel }

// touch records activity for the idle timeout.
func (c *connection) touch() {
	if c.idleClose.Load() != 0 {
		c.lastActive.Store(coarseClock.now.Load())
	}
}

// SetIdleTimeout turns on TCP keepalive probes about every timeout, as the
// reference does; zero or less does nothing. The idle close is
// setIdleClose (WithIdleCloseTimeout).
func (c *connection) SetIdleTimeout(timeout time.Duration) error {
	if timeout <= 0 {
		return nil
	}
	return c.SetKeepAlive(max(int(timeout.Seconds()), 1))
}

// setIdleClose closes the connection after timeout without input or
// output, checked about every quarter second. Zero or less turns it off.
// Set before the connection is polled (in OnPrepare), it takes effect when
// polling starts.
func (c *connection) setIdleClose(timeout time.Duration) error {
	if timeout <= 0 {
		c.idleClose.Store(0)
		return nil
	}
	c.idleClose.Store(int64(timeout))
	c.startIdleWatch()
	return nil
}

// tickIdleWheel turns p's wheel by one slot.
// Called on the poller goroutine; must not block.
func tickIdleWheel(p *poller.Poller, now int64) {
	coarseClock.now.Store(now)
	w := wheelOf(p)
	// Activity is stamped with the coarse clock, which lags the real one
	// by up to a tick, and more when a loaded machine delays the ticker.
	// Judged against this wheel's previous tick instead of now, a
	// connection active since then is never taken for idle: a timeout
	// fires up to a tick late, never early.
	idleBefore := w.lastTick
	if idleBefore == 0 {
		idleBefore = now - int64(idleTick)
	}
	w.lastTick = now
	w.mu.Lock()
	incoming := w.incoming
	w.incoming = nil
	w.mu.Unlock()
	for _, c := range incoming {
		w.place(c, now, idleBefore)
	}
	slot := w.slots[w.cursor]
	w.slots[w.cursor] = slot[:0]
	w.cursor = (w.cursor + 1) % idleWheelSlots
	for i, c := range slot {
		slot[i] = nil
		w.place(c, now, idleBefore)
	}
}

// place closes c if it has been idle for its timeout as of idleBefore (the
// previous tick), drops it if it is closed or no longer has one, and
// otherwise files it under its expiry.
func (w *idleWheel) place(c *connection, now, idleBefore int64) {
	timeout := c.idleClose.Load()
	if timeout == 0 || c.closingStarted() {
		// Leave the wheel. A SetIdleTimeout that raced the check either
		// files c again itself, or finds it still filed: then keep it.
		c.idleWatched.Store(false)
		if c.closingStarted() || c.idleClose.Load() == 0 || !c.idleWatched.CompareAndSwap(false, true) {
			return
		}
		timeout = c.idleClose.Load()
	}
	expiry := c.lastActive.Load() + timeout
	if expiry <= idleBefore {
		c.stats.idleTimeouts.Add(1)
		runTask(*c.ctx.Load(), func() { c.close() })
		return
	}
	ahead := int((expiry-now+int64(idleTick)-1)/int64(idleTick)) - 1
	// At most two short of a full turn, so c never lands in the slot being emptied.
	ahead = min(max(ahead, 0), idleWheelSlots-2)
	i := (w.cursor + ahead) % idleWheelSlots
	w.slots[i] = append(w.slots[i], c)
}
