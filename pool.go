package netpoll

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrPoolClosed is returned by Get, and by a second Close, once the
// ConnectionPool is closed.
var ErrPoolClosed = errors.New("netpoll: connection pool closed")

var (
	errPoolNoDial  = errors.New("netpoll: NewConnectionPool needs a dial function")
	errPoolForeign = errors.New("netpoll: Put of a connection that is not out of this pool")
	errPoolNilConn = errors.New("netpoll: pool dial returned no connection and no error")
)

// ConnectionPool keeps client connections to one destination for reuse, so a
// request does not pay for a dial. Get hands out an idle connection or dials
// a new one; Put returns it. Safe for concurrent use.
//
// A connection is reused only when it is clean. Get drops, without reading
// them, idle connections that are no longer active (the library closes a
// connection once its peer has closed and its input is drained) or that hold
// input nobody asked for. Put closes a connection returned with unread input
// or output not yet sent, because the next user would read the previous reply
// or send the rest of the previous request ahead of theirs. Idle connections past WithPoolIdleTimeout or
// WithPoolMaxLifetime are closed too.
//
// The check costs no system call, so a peer's close that is still in flight
// is not seen: a connection handed out can fail on first use. Retry
// idempotent requests on a fresh connection.
type ConnectionPool struct {
	// Set by NewConnectionPool, then read-only.
	dial   func(ctx context.Context) (Connection, error)
	opts   poolOptions
	slots  chan struct{} // a token per connection out; nil without WithPoolSize
	closed chan struct{} // closed by Close: wakes Gets waiting for a slot

	// Lock order: mu is never held while a connection is dialed or closed,
	// since Close runs the connection's close callbacks.
	mu       sync.Mutex
	idle     []*pooledConn              // guarded by mu; oldest first, taken from the end
	conns    map[Connection]*pooledConn // guarded by mu; every connection the pool owns
	isClosed bool                       // guarded by mu
	sweep    *time.Timer                // guarded by mu; closes idle connections past idleTimeout
	sweeping bool                       // guarded by mu; sweep is armed
}

// pooledConn is the pool's record of one connection.
type pooledConn struct {
	conn      Connection
	created   time.Time // set once at dial; only read with WithPoolMaxLifetime
	idleSince time.Time // guarded by mu; set by Put with WithPoolIdleTimeout
	out       bool      // guarded by mu; handed out by Get and not yet Put
}

// NewConnectionPool returns a pool that makes connections with dial and is
// configured by opts. dial is called by Get, with Get's context, and may run
// on several goroutines at once. It returns an error for a nil dial or an
// invalid option.
func NewConnectionPool(dial func(ctx context.Context) (Connection, error), opts ...PoolOption) (*ConnectionPool, error) {
	if dial == nil {
		return nil, errPoolNoDial
	}
	o, err := newPoolOptions(opts)
	if err != nil {
		return nil, err
	}
	p := &ConnectionPool{
		dial:   dial,
		opts:   o,
		closed: make(chan struct{}),
		idle:   make([]*pooledConn, 0, o.maxIdle),
		conns:  make(map[Connection]*pooledConn),
	}
	if o.size > 0 {
		p.slots = make(chan struct{}, o.size)
	}
	return p, nil
}

// Get returns a connection for the caller's sole use until it is given back
// with Put: the most recently returned idle one that is still clean, or else
// a new one from dial. With WithPoolSize(n) and n connections out, it waits
// for a Put until ctx is done, and then returns an error that matches
// ctx.Err() under errors.Is. After Close it returns ErrPoolClosed.
func (p *ConnectionPool) Get(ctx context.Context) (Connection, error) {
	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	now := p.now()
	p.mu.Lock()
	for !p.isClosed && len(p.idle) > 0 {
		last := len(p.idle) - 1
		pc := p.idle[last]
		p.idle[last] = nil
		p.idle = p.idle[:last]
		if p.reusableLocked(pc, now, true) {
			pc.out = true
			p.mu.Unlock()
			return pc.conn, nil
		}
		delete(p.conns, pc.conn)
		p.mu.Unlock()
		_ = pc.conn.Close()
		p.mu.Lock()
	}
	closed := p.isClosed
	p.mu.Unlock()
	if closed {
		p.release()
		return nil, ErrPoolClosed
	}
	return p.dialNew(ctx, now)
}

// dialNew dials a connection for a Get that holds a slot.
func (p *ConnectionPool) dialNew(ctx context.Context, now time.Time) (Connection, error) {
	conn, err := p.dial(ctx)
	if err == nil && conn == nil {
		err = errPoolNilConn
	}
	if err != nil {
		p.release()
		return nil, fmt.Errorf("netpoll: pool dial: %w", err)
	}
	pc := &pooledConn{conn: conn, created: now, out: true}
	p.mu.Lock()
	if p.isClosed {
		p.mu.Unlock()
		_ = conn.Close()
		p.release()
		return nil, ErrPoolClosed
	}
	p.conns[conn] = pc
	p.mu.Unlock()
	return conn, nil
}

// Put gives back a connection that Get returned; the caller must not use it
// afterwards. A clean connection becomes idle for the next Get; one that is
// closed, holds unread input or unsent output (unflushed, or flushed by a Flush
// that failed on a deadline), is past its lifetime, finds
// the idle list full, or comes back after Close, is closed. It returns an
// error only for a connection that is not out of this pool (never got, or
// put twice).
func (p *ConnectionPool) Put(conn Connection) error {
	if conn == nil {
		return errPoolForeign
	}
	now := p.now()
	p.mu.Lock()
	pc, ok := p.conns[conn]
	if !ok || !pc.out {
		p.mu.Unlock()
		return errPoolForeign
	}
	pc.out = false
	keep := !p.isClosed && len(p.idle) < p.opts.maxIdle && p.reusableLocked(pc, now, false)
	if keep {
		pc.idleSince = now
		p.idle = append(p.idle, pc)
		p.armSweepLocked()
	} else {
		delete(p.conns, conn)
	}
	p.mu.Unlock()
	if !keep {
		// Close before the slot is freed, so the pool never holds more than
		// its size in open connections.
		_ = conn.Close()
	}
	p.release()
	return nil
}

// Close closes the idle connections at once and makes Get fail with
// ErrPoolClosed, waking the Gets that wait. Connections that are out are
// closed when they are Put. A second Close returns ErrPoolClosed.
func (p *ConnectionPool) Close() error {
	p.mu.Lock()
	if p.isClosed {
		p.mu.Unlock()
		return ErrPoolClosed
	}
	p.isClosed = true
	idle := p.idle
	p.idle = nil
	for _, pc := range idle {
		delete(p.conns, pc.conn)
	}
	if p.sweep != nil {
		p.sweep.Stop()
	}
	close(p.closed)
	p.mu.Unlock()
	for _, pc := range idle {
		_ = pc.conn.Close()
	}
	return nil
}

// acquire takes a slot for a connection going out, waiting while the pool is
// at its size.
func (p *ConnectionPool) acquire(ctx context.Context) error {
	if p.slots == nil {
		return nil
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("netpoll: waiting for a pooled connection: %w", ctx.Err())
	case <-p.closed:
		return ErrPoolClosed
	}
}

// release frees the slot of a connection that came back or never went out.
func (p *ConnectionPool) release() {
	if p.slots != nil {
		<-p.slots
	}
}

// now reads the clock only when an option needs it.
func (p *ConnectionPool) now() time.Time {
	if p.opts.idleTimeout > 0 || p.opts.maxLifetime > 0 {
		return time.Now()
	}
	return time.Time{}
}

// reusableLocked reports whether pc may go (back) into use. idle is true at
// Get, where unread input means the peer sent something unasked and the idle
// timeout applies; at Put unsent output also disqualifies.
func (p *ConnectionPool) reusableLocked(pc *pooledConn, now time.Time, idle bool) bool {
	c := pc.conn
	if !c.IsActive() || c.Reader().Len() > 0 {
		return false
	}
	if !idle && outputPending(c) {
		return false
	}
	if p.opts.maxLifetime > 0 && now.Sub(pc.created) >= p.opts.maxLifetime {
		return false
	}
	if idle && p.opts.idleTimeout > 0 && now.Sub(pc.idleSince) >= p.opts.idleTimeout {
		return false
	}
	return true
}

// armSweepLocked starts the idle sweep unless it is armed. One timer serves
// the whole pool: it fires for the oldest idle connection.
func (p *ConnectionPool) armSweepLocked() {
	if p.opts.idleTimeout <= 0 || p.sweeping {
		return
	}
	p.sweeping = true
	if p.sweep == nil {
		p.sweep = time.AfterFunc(p.opts.idleTimeout, p.sweepIdle)
	} else {
		p.sweep.Reset(p.opts.idleTimeout)
	}
}

// sweepIdle closes the idle connections past the idle timeout, then re-arms
// for the oldest that remains. Runs on the timer's goroutine.
func (p *ConnectionPool) sweepIdle() {
	now := time.Now()
	p.mu.Lock()
	if p.isClosed {
		p.mu.Unlock()
		return
	}
	expired := 0
	for expired < len(p.idle) && now.Sub(p.idle[expired].idleSince) >= p.opts.idleTimeout {
		expired++
	}
	stale := make([]*pooledConn, expired)
	copy(stale, p.idle)
	for _, pc := range stale {
		delete(p.conns, pc.conn)
	}
	n := copy(p.idle, p.idle[expired:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	p.sweeping = false
	if n > 0 {
		p.sweeping = true
		p.sweep.Reset(p.opts.idleTimeout - now.Sub(p.idle[0].idleSince))
	}
	p.mu.Unlock()
	for _, pc := range stale {
		_ = pc.conn.Close()
	}
}

// pendingOutputter is implemented by the library's connections, which can
// tell output that a Flush accepted but the kernel never took.
type pendingOutputter interface {
	hasPendingOutput() bool
}

// outputPending reports whether c holds output its peer has not been sent:
// written and not flushed, or flushed by a Flush that failed (a write
// deadline passed while the peer read nothing). The next Flush would send it
// ahead of the next user's request (#15, defect 5). A connection of another
// package can only report what Malloc'd bytes it holds.
func outputPending(c Connection) bool {
	if p, ok := c.(pendingOutputter); ok {
		return p.hasPendingOutput()
	}
	return c.Writer().MallocLen() > 0
}

// hasPendingOutput reports output written or flushed and not yet in the
// kernel, for every transport (under TLS, plaintext not yet encrypted and
// sent: records go out whole, from the Flush that made them). It claims
// the write side, so a close freeing the output buffer
// cannot race the look; a side that is busy or closed counts as pending.
func (c *connection) hasPendingOutput() bool {
	if c.lockWriter() != nil {
		return true
	}
	defer c.unlockWriter()
	return c.outputBuffer.MallocLen() > 0 || !c.outputBuffer.IsEmpty()
}
