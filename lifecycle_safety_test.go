package netpoll_test

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ccb70390/netpoll"
	"github.com/ccb70390/netpoll/internal/torture"
)

// Regression tests for the two critical defects of issue #15: a close that
// frees memory a running handler still uses, and a failed Flush that leaves
// output pointing at memory the user may release. Both let one connection
// see another's bytes. Every connection carries its canary (internal/torture),
// so a foreign byte names its owner.
//
// Each test runs several victims at once: with the race detector sync.Pool
// drops a quarter of what it is given, so one victim's memory may never be
// reused, but all of them rarely.

const (
	victimCount = 4
	victimSize  = 5000 // bytes a victim sends; one read into an 8 KiB node
)

// holdVictims dials victimCount clients to addr, each sending victimSize
// bytes of its canary, and waits until every victim handler reports on
// holding that it holds its memory. The clients are closed at cleanup.
func holdVictims(t *testing.T, addr string, g *ids, rcvbuf int, holding <-chan struct{}) []*net.TCPConn {
	t.Helper()
	clients := make([]*net.TCPConn, victimCount)
	for i := range clients {
		c, err := dialCanary(addr, rcvbuf)
		if err != nil {
			t.Fatalf("dial victim %d: %v", i, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		clients[i] = c
		if err := sendCanary(c, g.take(), 0, victimSize); err != nil {
			t.Fatalf("victim %d: write: %v", i, err)
		}
	}
	for i := range victimCount {
		select {
		case <-holding:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d victim handlers started", i, victimCount)
		}
	}
	return clients
}

// waitRelease blocks a victim handler until the test releases it; the bound
// keeps a broken test from hanging Shutdown.
func waitRelease(release <-chan struct{}) {
	select {
	case <-release:
	case <-time.After(20 * time.Second):
	}
}

// collect reads n results and reports the non-nil ones.
func collect(t *testing.T, results <-chan error, n int, what string) {
	t.Helper()
	for i := range n {
		select {
		case err := <-results:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d %s reported", i, n, what)
		}
	}
}

// TestIdleCloseKeepsHeldNextSlice is issue #15's first recipe: idle timeout
// 300 ms; the handler takes Next(5000) and holds the slice for 1.5 s
// without I/O while other clients connect and send; the slice must still
// hold the handler's own bytes.
func TestIdleCloseKeepsHeldNextSlice(t *testing.T) {
	foreign := &reports{}
	var g ids
	holding := make(chan struct{}, victimCount)
	release := make(chan struct{})
	results := make(chan error, victimCount)
	victim := func(st *canaryState) error {
		if !st.learnID(foreign.add) {
			return st.conn.Close()
		}
		r := st.conn.Reader()
		p, err := r.Next(victimSize)
		if err != nil {
			results <- fmt.Errorf("conn %d: Next(%d) = %v", st.id, victimSize, err)
			holding <- struct{}{}
			return err
		}
		before := torture.Check(p, st.id, 0, "Next slice, before the idle close,")
		holding <- struct{}{}
		waitRelease(release)
		results <- errors.Join(before, torture.Check(p, st.id, 0, "Next slice held across the idle close,"))
		return r.Release()
	}
	victims := startCanaryServer(t, foreign, victim, netpoll.WithIdleCloseTimeout(300*time.Millisecond))
	neighbours := startCanaryServer(t, foreign, bystanderHandler(foreign, 20*time.Millisecond))

	holdVictims(t, victims.addr, &g, 0, holding)
	stop := make(chan struct{})
	wait := runBystanders(neighbours.addr, &g, 4, victimSize, stop)
	// The scenario: the handlers hold their slices 1.5 s without I/O, so
	// the idle timeout fires after 300-550 ms, while neighbours read.
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wait()
	close(release)
	collect(t, results, victimCount, "victims")
	foreign.check(t)
}

// TestIdleCloseKeepsMallocBuffer is the Malloc variant: the handler Mallocs
// 8000 bytes, is idle-closed, and then fills the buffer with its canary. No
// other connection's input may ever contain those bytes, and the buffer
// must still hold them when the handler looks again.
func TestIdleCloseKeepsMallocBuffer(t *testing.T) {
	foreign := &reports{}
	var g ids
	holding := make(chan struct{}, victimCount)
	release := make(chan struct{})
	results := make(chan error, victimCount)
	victim := func(st *canaryState) error {
		if !st.learnID(foreign.add) {
			return st.conn.Close()
		}
		r, w := st.conn.Reader(), st.conn.Writer()
		if _, err := r.Next(victimSize); err != nil {
			results <- fmt.Errorf("conn %d: Next(%d) = %v", st.id, victimSize, err)
			holding <- struct{}{}
			return err
		}
		buf, err := w.Malloc(8000)
		if err != nil {
			results <- fmt.Errorf("conn %d: Malloc(8000) = %v", st.id, err)
			holding <- struct{}{}
			return err
		}
		holding <- struct{}{}
		waitRelease(release)
		// A reply built slowly: fill, let neighbours run, look again.
		var bad error
		for range 40 {
			torture.Fill(buf, st.id, 0)
			time.Sleep(10 * time.Millisecond)
			if bad = torture.Check(buf, st.id, 0, "Malloc buffer, filled after the idle close,"); bad != nil {
				break
			}
		}
		results <- bad
		_ = w.Flush()
		return r.Release()
	}
	victims := startCanaryServer(t, foreign, victim, netpoll.WithIdleCloseTimeout(300*time.Millisecond))
	neighbours := startCanaryServer(t, foreign, bystanderHandler(foreign, 20*time.Millisecond))

	holdVictims(t, victims.addr, &g, 0, holding)
	// The scenario: hold the Malloc buffer across the idle close, then fill
	// it while neighbours read into pooled memory and hold their slices.
	time.Sleep(800 * time.Millisecond)
	stop := make(chan struct{})
	wait := runBystanders(neighbours.addr, &g, 4, 8000, stop)
	close(release)
	collect(t, results, victimCount, "victims")
	close(stop)
	wait()
	foreign.check(t)
}

// TestFailedFlushNeverSendsForeignBytes is issue #15's second recipe: a
// peer that does not read, a small send buffer, a write deadline a little in
// the future, WriteBinary of a large input slice (referenced, not copied),
// Flush fails, Release; traffic on other connections; then the deadline is
// extended, the peer reads, and Flush runs again. The peer must receive
// exactly its own bytes, or a clean end, never another connection's.
func TestFailedFlushNeverSendsForeignBytes(t *testing.T) {
	const filler = 1 << 20 // output ahead of the slice, more than the socket buffers take
	if victimSize < netpoll.BinaryInplaceThreshold {
		t.Fatalf("victimSize %d is copied by WriteBinary; the recipe needs a reference", victimSize)
	}
	foreign := &reports{}
	var g ids
	stalled := make(chan struct{}, victimCount)
	release := make(chan struct{})
	type outcome struct {
		id         uint32
		first, err error
	}
	outcomes := make(chan outcome, victimCount)
	victim := func(st *canaryState) error {
		if !st.learnID(foreign.add) {
			return st.conn.Close()
		}
		defer st.conn.Close()
		r, w := st.conn.Reader(), st.conn.Writer()
		report := func(first, err error) {
			outcomes <- outcome{st.id, first, err}
			stalled <- struct{}{}
		}
		p, err := r.Next(victimSize)
		if err != nil {
			report(nil, fmt.Errorf("Next(%d) = %v", victimSize, err))
			return err
		}
		if err := setSndbuf(st.conn, 4096); err != nil {
			report(nil, fmt.Errorf("SO_SNDBUF: %v", err))
			return err
		}
		buf, err := w.Malloc(filler)
		if err != nil {
			report(nil, fmt.Errorf("Malloc(%d) = %v", filler, err))
			return err
		}
		torture.Fill(buf, st.id, 0)
		if _, err := w.WriteBinary(p); err != nil { // stream offset filler ≡ 0 (mod 8)
			report(nil, fmt.Errorf("WriteBinary = %v", err))
			return err
		}
		_ = st.conn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		first := w.Flush()
		if first == nil {
			report(nil, errors.New("Flush to a peer that does not read = nil; want a timeout (the recipe did not stall)"))
			return nil
		}
		_ = r.Release() // the documented order: WriteBinary → Flush → Release
		stalled <- struct{}{}
		waitRelease(release)
		_ = st.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		outcomes <- outcome{st.id, first, w.Flush()}
		return nil
	}
	victims := startCanaryServer(t, foreign, victim)
	neighbours := startCanaryServer(t, foreign, bystanderHandler(foreign, 20*time.Millisecond))

	clients := holdVictims(t, victims.addr, &g, 4096, stalled)
	// The scenario: neighbours take pooled memory and write their input
	// into it while the victims' output waits.
	stop := make(chan struct{})
	wait := runBystanders(neighbours.addr, &g, 4, victimSize, stop)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wait()

	// The peers start reading; then the handlers extend their deadlines
	// and flush again.
	type drained struct {
		n   int64
		err error
	}
	got := make([]chan drained, len(clients))
	for i, c := range clients {
		got[i] = make(chan drained, 1)
		go func() {
			n, err := drainCanary(c, uint32(i+1), time.Now().Add(10*time.Second))
			got[i] <- drained{n, err}
		}()
	}
	close(release)
	results := make(map[uint32]outcome)
	for i := range victimCount {
		select {
		case o := <-outcomes:
			results[o.id] = o
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d victims flushed again", i, victimCount)
		}
	}
	for i := range clients {
		id := uint32(i + 1)
		d := recvDrained(t, got[i])
		o := results[id]
		switch {
		case d.err != nil:
			t.Errorf("%v (first Flush: %v, second Flush: %v)", d.err, o.first, o.err)
		case o.first == nil:
			t.Errorf("conn %d: %v", id, o.err)
		case o.err == nil && d.n != filler+victimSize:
			t.Errorf("conn %d: peer received %d bytes after the second Flush = nil; want %d", id, d.n, filler+victimSize)
		}
	}
	foreign.check(t)
}

// recvDrained waits for a client's drain result.
func recvDrained[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("a client did not finish reading")
		var zero T
		return zero
	}
}

// TestCloseCallbacksWaitForOnRequest checks that a close during OnRequest
// (idle timeout, Close from another goroutine, the peer's reset) runs the
// close callbacks only after OnRequest returned, as the reference does:
// they commonly free what the handler still uses.
func TestCloseCallbacksWaitForOnRequest(t *testing.T) {
	tests := []struct {
		name  string
		opts  []netpoll.Option
		close func(st *canaryState, client *net.TCPConn)
		hold  time.Duration // how long the handler holds on after the close
	}{
		{"idle timeout", []netpoll.Option{netpoll.WithIdleCloseTimeout(300 * time.Millisecond)}, nil, 1500 * time.Millisecond},
		{"Close from another goroutine", nil, func(st *canaryState, _ *net.TCPConn) { _ = st.conn.Close() }, 500 * time.Millisecond},
		{"peer reset", nil, func(_ *canaryState, c *net.TCPConn) { resetConn(c) }, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			foreign := &reports{}
			holding := make(chan *canaryState, 1)
			release := make(chan struct{})
			handler := func(st *canaryState) error {
				if !st.learnID(foreign.add) {
					return st.conn.Close()
				}
				r := st.conn.Reader()
				if _, err := r.Next(torture.UnitSize); err != nil {
					return err
				}
				holding <- st
				waitRelease(release)
				return r.Release()
			}
			srv := startCanaryServer(t, foreign, handler, tt.opts...)
			c, err := dialCanary(srv.addr, 0)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			t.Cleanup(func() { _ = c.Close() })
			if err := sendCanary(c, 1, 0, torture.UnitSize); err != nil {
				t.Fatalf("write: %v", err)
			}
			st := recvDrained(t, holding)
			if tt.close != nil {
				tt.close(st, c)
			}
			// The scenario: the handler keeps working for a while after
			// the close; a callback that runs now runs too early.
			select {
			case <-st.closed:
			case <-time.After(tt.hold):
			}
			ranEarly := st.callbacks.Load() > 0
			close(release)
			if tt.close == nil {
				_ = st.conn.Close() // so the callbacks run even if the idle close never came
			}
			select {
			case <-st.closed:
			case <-time.After(5 * time.Second):
				t.Fatalf("close callback did not run within 5s after OnRequest returned")
			}
			if ranEarly || st.duringRequest.Load() {
				t.Errorf("%s: close callback ran while OnRequest was still running; want it held until OnRequest returns", tt.name)
			}
			waitCallbacksSettle(t, st)
			foreign.check(t)
		})
	}
}

// waitCallbacksSettle checks, after a short grace, that the close callbacks
// ran exactly once.
func waitCallbacksSettle(t *testing.T, st *canaryState) {
	t.Helper()
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) && st.callbacks.Load() == 1 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := st.callbacks.Load(); n != 1 {
		t.Errorf("close callback ran %d times; want 1", n)
	}
}
