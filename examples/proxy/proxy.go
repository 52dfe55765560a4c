package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccb70390/netpoll"
)

// dialTimeout bounds the connection to the upstream.
const dialTimeout = 5 * time.Second

// proxy connects each accepted connection to a new connection to upstream.
type proxy struct {
	upstream string
}

// pipe moves bytes one way, from one connection's input buffer to the other
// connection's output buffer, without copying them: the input is cut out as a
// Slice, which keeps its memory, and appended to the output as it is.
type pipe struct {
	from, to netpoll.Connection
	// mu serialises forward and finish, which run on different goroutines:
	// forward on from's OnRequest, finish on its OnDisconnect or close callback.
	mu sync.Mutex
	// done is set by finish once to's write side is shut down; guarded by mu.
	done bool
	// finished is closed when done is set.
	finished chan struct{}
}

// pair is one proxied connection: down is the client's, up the upstream's.
type pair struct {
	toUp, toDown *pipe
	// finished counts the pipes that are done; guarded by closeMu.
	closeMu  sync.Mutex
	finished int
	// closing is set by the first closeBoth, which then closes gone, waking
	// a half-closed side waiting in halfClose, and both connections. Atomic:
	// closeBoth is reentered from the close callbacks that Close runs.
	closing atomic.Bool
	gone    chan struct{}
}

type pairKey struct{}

// onConnect dials the upstream for a new client connection and wires the two
// together. The event loop calls onRequest only after it returns, so no input
// is forwarded before the upstream exists.
func (p *proxy) onConnect(ctx context.Context, down netpoll.Connection) context.Context {
	up, err := netpoll.DialConnection("tcp", p.upstream, dialTimeout)
	if err != nil {
		// Nothing can be served: the client sees its connection close.
		_ = down.Close()
		return ctx
	}
	pr := &pair{
		toUp:   &pipe{from: down, to: up, finished: make(chan struct{})},
		toDown: &pipe{from: up, to: down, finished: make(chan struct{})},
		gone:   make(chan struct{}),
	}
	upConn, ok := up.(interface {
		SetOnDisconnect(netpoll.OnDisconnect) error
	})
	if !ok {
		_ = up.Close()
		_ = down.Close()
		return ctx
	}
	err = errors.Join(
		up.SetOnRequest(func(context.Context, netpoll.Connection) error { return pr.forward(pr.toDown) }),
		upConn.SetOnDisconnect(func(context.Context, netpoll.Connection) { pr.halfClose(pr.toDown, pr.toUp) }),
		up.AddCloseCallback(func(netpoll.Connection) error { pr.onClosed(pr.toDown); return nil }),
		down.AddCloseCallback(func(netpoll.Connection) error { pr.onClosed(pr.toUp); return nil }),
	)
	if err != nil {
		_ = up.Close()
		_ = down.Close()
	}
	return context.WithValue(ctx, pairKey{}, pr)
}

// onRequest forwards the client's input to the upstream.
func (p *proxy) onRequest(ctx context.Context, down netpoll.Connection) error {
	pr, ok := ctx.Value(pairKey{}).(*pair)
	if !ok {
		return down.Close()
	}
	return pr.forward(pr.toUp)
}

// onDisconnect passes the client's half-close on to the upstream.
func (p *proxy) onDisconnect(ctx context.Context, _ netpoll.Connection) {
	if pr, ok := ctx.Value(pairKey{}).(*pair); ok {
		pr.halfClose(pr.toUp, pr.toDown)
	}
}

// halfClose handles end of stream on the connection that out reads from:
// it finishes out, then waits until the pipe in, which writes to that same
// connection, is finished too, or the pair is closed. It runs in OnDisconnect,
// and the library closes the connection when OnDisconnect returns, so
// returning early would cut off the answer still flowing in: a half-closed
// connection holds its handler goroutine until the other side ends.
func (pr *pair) halfClose(out, in *pipe) {
	pr.finish(out)
	select {
	case <-in.finished:
	case <-pr.gone:
	}
}

// onClosed handles the close of the connection that out reads from, by the
// library or by closeBoth: what it had buffered is forwarded, and since
// nothing can be written to it any more, the pair is closed.
func (pr *pair) onClosed(out *pipe) {
	pr.finish(out)
	pr.closeBoth()
}

// forward sends what pi.from has buffered to pi.to. On failure both
// connections are closed: a proxy that loses bytes one way cannot go on.
func (pr *pair) forward(pi *pipe) error {
	pi.mu.Lock()
	err := pi.forwardLocked()
	pi.mu.Unlock()
	if err != nil {
		pr.closeBoth()
	}
	return err
}

func (pi *pipe) forwardLocked() error {
	r := pi.from.Reader()
	n := r.Len()
	if n == 0 || pi.done {
		return nil
	}
	slice, err := r.Slice(n)
	if err != nil {
		return fmt.Errorf("proxy: slice: %w", err)
	}
	if err := r.Release(); err != nil {
		return fmt.Errorf("proxy: release: %w", err)
	}
	w := pi.to.Writer()
	sw, ok := slice.(netpoll.Writer)
	if !ok {
		return fmt.Errorf("proxy: Slice returned %T, which Append cannot take", slice)
	}
	if err := w.Append(sw); err != nil {
		return fmt.Errorf("proxy: append: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("proxy: flush: %w", err)
	}
	return nil
}

// finish ends pipe pi once pi.from has no more input: it forwards what is
// still buffered, then shuts down the write side of pi.to, so the far end sees
// the same end of stream (half-close). When both pipes are done, both
// connections are closed. Safe to call more than once.
func (pr *pair) finish(pi *pipe) {
	pi.mu.Lock()
	if pi.done {
		pi.mu.Unlock()
		return
	}
	err := pi.forwardLocked()
	pi.done = true
	close(pi.finished)
	if err == nil {
		err = shutdownWrite(pi.to)
	}
	pi.mu.Unlock()

	pr.closeMu.Lock()
	pr.finished++
	both := pr.finished == 2
	pr.closeMu.Unlock()
	if both || err != nil {
		pr.closeBoth()
	}
}

// closeBoth closes both connections, once. It holds no lock: Close runs the
// close callbacks, which take the pipes' locks.
func (pr *pair) closeBoth() {
	if !pr.closing.CompareAndSwap(false, true) {
		return
	}
	close(pr.gone)
	_ = pr.toUp.from.Close()
	_ = pr.toUp.to.Close()
}
