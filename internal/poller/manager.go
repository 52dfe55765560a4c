package poller

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// LoadBalance selects how a Manager spreads new file descriptors over its pollers.
type LoadBalance int

// The load-balancing policies.
const (
	// RoundRobin hands out the pollers in turn.
	RoundRobin LoadBalance = 0
	// Random picks a poller at random.
	Random LoadBalance = 1
	// SourceAddrHash picks by a key the caller derives from the peer's address
	// ([Manager.PickFor]), so one source always lands on the same poller.
	SourceAddrHash LoadBalance = 2
)

// loops is one started set of pollers; a Manager replaces it as a whole.
type loops struct {
	all    []*Poller       // every started poller, serving its registered fds
	active int             // all[:active] receive new fds
	wg     *sync.WaitGroup // tracks the Wait goroutines of all
}

// Manager starts pollers lazily and spreads new file descriptors over them.
// All methods are safe for concurrent use.
type Manager struct {
	// cur is the running set, nil before the first Pick and after Close. Pick
	// reads it without a lock. Atomic; replaced under mu.
	cur atomic.Pointer[loops]
	// lb is the LoadBalance in force. Atomic.
	lb atomic.Int32
	// next counts RoundRobin picks. Atomic.
	next atomic.Uint64

	// mu serialises starting, resizing and closing.
	mu sync.Mutex
	// Guarded by mu.
	numLoops  int // requested count; 0 means the default
	tickEvery time.Duration
	tickFn    func(p *Poller, now int64)
	waitErr   error // the first error a Wait returned
}

// NewManager returns a Manager with the default poller count and RoundRobin.
// It starts nothing: the first Pick does.
func NewManager() *Manager {
	return &Manager{}
}

// defaultNumLoops is one poller per 20 Ps, at least one: a poller that does the
// reads itself keeps up with many cores of handlers.
func defaultNumLoops() int {
	return max(1, runtime.GOMAXPROCS(0)/20)
}

// SetNumLoops sets the number of pollers that receive new fds. Growing starts
// pollers at once if the Manager is running; shrinking only stops handing new
// fds to the extra pollers, which keep serving the fds they have until Close.
func (m *Manager) SetNumLoops(n int) error {
	if n < 1 {
		return fmt.Errorf("netpoll: number of loops %d: must be at least 1", n)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.numLoops = n
	cur := m.cur.Load()
	if cur == nil {
		return nil
	}
	return m.resizeLocked(cur, n)
}

// resizeLocked publishes a set with n active pollers, starting the missing ones.
func (m *Manager) resizeLocked(cur *loops, n int) error {
	next := &loops{all: cur.all, active: n, wg: cur.wg}
	for len(next.all) < n {
		p, err := m.startLocked(cur.wg)
		if err != nil {
			next.active = len(next.all)
			m.cur.Store(next)
			return err
		}
		next.all = append(next.all[:len(next.all):len(next.all)], p)
	}
	m.cur.Store(next)
	return nil
}

// NumLoops returns the number of pollers that receive new fds.
func (m *Manager) NumLoops() int {
	if cur := m.cur.Load(); cur != nil {
		return cur.active
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.numLoops > 0 {
		return m.numLoops
	}
	return defaultNumLoops()
}

// Engine returns the engine of the running pollers, or, before they start,
// the one SetEngine asked for.
func (m *Manager) Engine() Engine {
	if cur := m.cur.Load(); cur != nil && len(cur.all) > 0 {
		return cur.all[0].Engine()
	}
	return RequestedEngine()
}

// SetLoadBalance sets the policy of Pick and PickFor.
func (m *Manager) SetLoadBalance(lb LoadBalance) error {
	switch lb {
	case RoundRobin, Random, SourceAddrHash:
		m.lb.Store(int32(lb))
		return nil
	}
	return fmt.Errorf("netpoll: unknown load balance %d", lb)
}

// SetTickers makes every poller, running or started later, call fn about every
// interval; see [Poller.SetTicker]. A nil fn removes the tickers.
func (m *Manager) SetTickers(interval time.Duration, fn func(p *Poller, now int64)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tickEvery, m.tickFn = interval, fn
	if cur := m.cur.Load(); cur != nil {
		for _, p := range cur.all {
			m.applyTickerLocked(p)
		}
	}
}

func (m *Manager) applyTickerLocked(p *Poller) {
	if m.tickFn == nil {
		p.SetTicker(0, nil)
		return
	}
	fn := m.tickFn
	p.SetTicker(m.tickEvery, func(now int64) { fn(p, now) })
}

// Pick returns the poller for a new fd under the current policy
// (SourceAddrHash, which needs a key, falls back to RoundRobin). The first call
// starts the pollers. It returns nil only if not one poller could be started;
// [Manager.Start] returns why. Pick costs a few atomic operations and no lock.
func (m *Manager) Pick() *Poller {
	cur := m.cur.Load()
	if cur == nil {
		if cur = m.start(); cur == nil {
			return nil
		}
	}
	if LoadBalance(m.lb.Load()) == Random {
		return cur.all[rand.IntN(cur.active)]
	}
	return cur.all[(m.next.Add(1)-1)%uint64(cur.active)]
}

// BySource reports whether the load balance is SourceAddrHash, so a caller
// hashes the peer's address only when PickFor will use it.
func (m *Manager) BySource() bool {
	return LoadBalance(m.lb.Load()) == SourceAddrHash
}

// PickFor is Pick for the fd of a peer whose address hashes to key: under
// SourceAddrHash it returns poller key % n, so one source always gets the same
// poller while the count stays; the other policies ignore key.
func (m *Manager) PickFor(key uint64) *Poller {
	if LoadBalance(m.lb.Load()) != SourceAddrHash {
		return m.Pick()
	}
	cur := m.cur.Load()
	if cur == nil {
		if cur = m.start(); cur == nil {
			return nil
		}
	}
	return cur.all[key%uint64(cur.active)]
}

// Start starts the pollers if they are not running. Pick calls it; call it
// yourself to see the error if Pick returned nil.
func (m *Manager) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.startAllLocked()
	return err
}

func (m *Manager) start() *loops {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, _ := m.startAllLocked()
	return cur
}

// startAllLocked starts the configured number of pollers, unless running.
func (m *Manager) startAllLocked() (*loops, error) {
	if cur := m.cur.Load(); cur != nil {
		return cur, nil
	}
	n := m.numLoops
	if n == 0 {
		n = defaultNumLoops()
	}
	empty := &loops{wg: new(sync.WaitGroup)}
	err := m.resizeLocked(empty, n)
	cur := m.cur.Load()
	if cur.active == 0 {
		m.cur.Store(nil)
		return nil, err
	}
	return cur, err
}

// startLocked creates a poller and runs its Wait on a new goroutine tracked by wg.
func (m *Manager) startLocked(wg *sync.WaitGroup) (*Poller, error) {
	p, err := New()
	if err != nil {
		return nil, err
	}
	if m.tickFn != nil {
		m.applyTickerLocked(p)
	}
	wg.Go(func() {
		if err := p.Wait(); err != nil {
			m.mu.Lock()
			m.waitErr = errors.Join(m.waitErr, err)
			m.mu.Unlock()
		}
	})
	return p, nil
}

// Close closes every poller and waits until each Wait has returned and closed
// its descriptors. It returns the errors the Waits failed with, if any. A later
// Pick starts new pollers. Must not be called from a poller callback: it would
// wait for its own poller.
func (m *Manager) Close() error {
	m.mu.Lock()
	cur := m.cur.Swap(nil)
	m.mu.Unlock()
	if cur == nil {
		return nil
	}
	var errs []error
	for _, p := range cur.all {
		errs = append(errs, p.Close())
	}
	cur.wg.Wait()
	m.mu.Lock()
	errs = append(errs, m.waitErr)
	m.waitErr = nil
	m.mu.Unlock()
	return errors.Join(errs...)
}
