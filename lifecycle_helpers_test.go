package netpoll_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ccb70390/netpoll"
	"github.com/ccb70390/netpoll/internal/torture"
)

// The helpers of the issue #15 tests: servers whose connections carry
// canaries (see internal/torture), and the clients that feed them. They use
// only the public API, so the tests run against any connection core.

// canaryState is what a server connection of these tests knows about
// itself. OnConnect makes it and puts it in the connection's context.
type canaryState struct {
	conn netpoll.Connection

	// id is the connection's canary id, learned from its first unit; inOff
	// and outOff are the stream offsets of the next input and output
	// bytes. Owned by the handler.
	id            uint32
	inOff, outOff int64

	// inRequest is true while OnRequest runs. Written by the handler.
	inRequest atomic.Bool

	// callbacks counts close callback runs; duringRequest is set if one ran
	// while OnRequest was still running. Written by the close callback.
	callbacks     atomic.Int32
	duringRequest atomic.Bool
	closed        chan struct{} // closed by the first close callback
}

type canaryStateKey struct{}

// stateOf returns the state OnConnect put in ctx.
func stateOf(ctx context.Context) *canaryState {
	return ctx.Value(canaryStateKey{}).(*canaryState)
}

// learnID reads (without consuming) the first unit of a connection's input
// and records its id. It reports false if the unit is no canary.
func (s *canaryState) learnID(report func(error)) bool {
	if s.id != 0 {
		return true
	}
	head, err := s.conn.Reader().Peek(torture.UnitSize)
	if err != nil {
		return false
	}
	id, ok := torture.Decode(head)
	if !ok {
		report(fmt.Errorf("server conn: first unit % x is not a canary", head))
		return false
	}
	s.id = id
	return true
}

// canaryServer is an EventLoop serving on a loopback port whose connections
// carry a canaryState; foreign collects what the handlers report.
type canaryServer struct {
	addr    string
	foreign *reports
	states  chan *canaryState // every connection's state, as it connects
}

// reports collects errors from handlers and clients for the test goroutine.
type reports struct {
	mu    sync.Mutex
	errs  []error
	count int
}

func (r *reports) add(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	if len(r.errs) < 20 {
		r.errs = append(r.errs, err)
	}
}

// check fails t with every collected error.
func (r *reports) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.errs {
		t.Error(err)
	}
	if r.count > len(r.errs) {
		t.Errorf("... and %d more", r.count-len(r.errs))
	}
}

// startCanaryServer serves handler, wrapped so that it marks the state's
// inRequest, with opts added. The cleanup shuts the loop down.
func startCanaryServer(t *testing.T, foreign *reports, handler func(*canaryState) error, opts ...netpoll.Option) *canaryServer {
	t.Helper()
	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("CreateListener: %v", err)
	}
	s := &canaryServer{addr: ln.Addr().String(), foreign: foreign, states: make(chan *canaryState, 1024)}
	onConnect := func(ctx context.Context, c netpoll.Connection) context.Context {
		st := &canaryState{conn: c, closed: make(chan struct{})}
		_ = c.AddCloseCallback(func(netpoll.Connection) error {
			if st.inRequest.Load() {
				st.duringRequest.Store(true)
			}
			if st.callbacks.Add(1) == 1 {
				close(st.closed)
			}
			return nil
		})
		select {
		case s.states <- st:
		default:
		}
		return context.WithValue(ctx, canaryStateKey{}, st)
	}
	onRequest := func(ctx context.Context, _ netpoll.Connection) error {
		st := stateOf(ctx)
		st.inRequest.Store(true)
		defer st.inRequest.Store(false)
		return handler(st)
	}
	loop, err := netpoll.NewEventLoop(onRequest, append([]netpoll.Option{netpoll.WithOnConnect(onConnect)}, opts...)...)
	if err != nil {
		_ = ln.Close()
		t.Fatalf("NewEventLoop: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := loop.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
		_ = ln.Close()
	})
	return s
}

// bystanderHandler reads whatever input is buffered, checks it is the
// connection's canary, and answers with as many bytes of it in a Malloc
// buffer; it holds both for hold, checks them again, flushes and releases:
// a neighbour whose reads and replies take pooled memory on every core, and
// whose held slices and buffers show anyone who writes into memory they do
// not own.
func bystanderHandler(foreign *reports, hold time.Duration) func(*canaryState) error {
	return func(st *canaryState) error {
		if !st.learnID(foreign.add) {
			return st.conn.Close()
		}
		r, w := st.conn.Reader(), st.conn.Writer()
		p, err := r.Next(r.Len())
		if err != nil {
			return err
		}
		foreign.add(torture.Check(p, st.id, st.inOff, "bystander Next slice"))
		buf, err := w.Malloc(len(p))
		if err != nil {
			return err
		}
		torture.Fill(buf, st.id, st.outOff)
		if hold > 0 {
			time.Sleep(hold) // the scenario: a handler at work, holding its memory
			foreign.add(torture.Check(p, st.id, st.inOff, "bystander Next slice after holding"))
		}
		foreign.add(torture.Check(buf, st.id, st.outOff, "bystander Malloc buffer before Flush"))
		st.inOff += int64(len(p))
		st.outOff += int64(len(buf))
		if err := w.Flush(); err != nil {
			return err
		}
		return r.Release()
	}
}

// ids hands out connection ids; each test takes its own range so a foreign
// byte names a connection of its own test.
type ids struct{ next atomic.Uint32 }

func (g *ids) take() uint32 { return g.next.Add(1) }

// dialCanary connects to addr; with rcvbuf > 0 it shrinks the receive
// buffer before the connection is made, so the window stays small.
func dialCanary(addr string, rcvbuf int) (*net.TCPConn, error) { return torture.Dial(addr, rcvbuf) }

// sendCanary writes n bytes of id's canary from stream offset off.
func sendCanary(c net.Conn, id uint32, off int64, n int) error {
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, err := c.Write(torture.Pattern(id, off, n))
	return err
}

// runBystanders keeps workers clients connecting to addr, each sending a
// few messages of size bytes of its canary, until stop is closed. It
// returns a function that waits for them.
func runBystanders(addr string, g *ids, workers, size int, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := dialCanary(addr, 0)
				if err != nil {
					continue
				}
				id := g.take()
				var off int64
				for range 3 {
					if sendCanary(c, id, off, size) != nil {
						break
					}
					off += int64(size)
				}
				_ = c.Close()
			}
		})
	}
	return wg.Wait
}

// drainCanary reads c until EOF, an error, or its deadline, checking that
// every byte is id's canary from offset 0; it returns the bytes read.
func drainCanary(c net.Conn, id uint32, deadline time.Time) (int64, error) {
	_ = c.SetReadDeadline(deadline)
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := c.Read(buf)
		if cerr := torture.CheckStream(buf[:n], id, off, "client received stream,"); cerr != nil {
			return off, cerr
		}
		off += int64(n)
		if err != nil {
			return off, nil
		}
	}
}

// setSndbuf shrinks a server connection's send buffer through its fd.
func setSndbuf(c netpoll.Connection, size int) error {
	fc, ok := c.(interface{ Fd() int })
	if !ok {
		return errors.New("connection has no Fd")
	}
	return syscall.SetsockoptInt(fc.Fd(), syscall.SOL_SOCKET, syscall.SO_SNDBUF, size)
}

// resetConn makes Close send an RST instead of a FIN.
func resetConn(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}
