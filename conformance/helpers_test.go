package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccb70390/netpoll"
	"go.uber.org/goleak"
)

// The library keeps two kinds of goroutines for the life of the process, as
// the reference does, and exposes no way to stop them; goleak must not count
// them as leaks. Anything else left running after the tests is a leak.
var (
	// pollerLoops are the global poller goroutines. They sit in epoll_wait,
	// so the top of their stack is the syscall and the loop is further down:
	// they are matched anywhere in the stack.
	pollerLoops = []string{
		"github.com/ccb70390/netpoll/internal/poller.(*Poller).Wait",
	}
	// idleWorkers are the handler pool's parked goroutines, waiting on their
	// task channel (the reference's pool lets its workers exit instead).
	idleWorkers = []string{
		"github.com/ccb70390/netpoll.(*workerPool).serve",
	}
)

func TestMain(m *testing.M) {
	var opts []goleak.Option
	for _, fn := range pollerLoops {
		opts = append(opts, goleak.IgnoreAnyFunction(fn))
	}
	for _, fn := range idleWorkers {
		opts = append(opts, goleak.IgnoreTopFunction(fn))
	}
	goleak.VerifyTestMain(m, opts...)
}

// waitLimit bounds every wait in this package, so that a hang in the library
// shows up as a failure that names what it was waiting for.
const waitLimit = 10 * time.Second

// server is an EventLoop serving a fresh local listener. It is shut down, and
// its Serve call awaited, when the test that made it ends.
type server struct {
	network string
	addr    string
	// accepted receives each connection OnConnect sees, in order, when the
	// server was made without an OnRequest handler.
	accepted chan netpoll.Connection
}

// newServer starts an EventLoop on 127.0.0.1:0 ("tcp") or on a socket file
// under tb.TempDir() ("unix"). With a nil onRequest the connections are handed
// out by server.accept.
func newServer(tb testing.TB, network string, onRequest netpoll.OnRequest, opts ...netpoll.Option) *server {
	tb.Helper()
	s := &server{network: network, addr: "127.0.0.1:0"}
	if network == "unix" {
		s.addr = filepath.Join(tb.TempDir(), "conn.sock")
	}
	ln, err := netpoll.CreateListener(network, s.addr)
	if err != nil {
		tb.Fatalf("CreateListener(%q, %q) = %v", network, s.addr, err)
	}
	s.addr = ln.Addr().String()
	if onRequest == nil {
		s.accepted = make(chan netpoll.Connection, 16)
		opts = append(opts, netpoll.WithOnConnect(func(ctx context.Context, c netpoll.Connection) context.Context {
			s.accepted <- c
			return ctx
		}))
	}
	loop, err := netpoll.NewEventLoop(onRequest, opts...)
	if err != nil {
		ln.Close()
		tb.Fatalf("NewEventLoop = %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := loop.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown = %v", err)
		}
		select {
		case err := <-served:
			if err != nil && !errors.Is(err, net.ErrClosed) {
				tb.Errorf("Serve = %v after Shutdown; want nil", err)
			}
		case <-time.After(waitLimit):
			tb.Errorf("Serve did not return within %v of Shutdown", waitLimit)
		}
	})
	return s
}

// accept returns the server side of the connection whose client side has
// local address clientAddr. Only a server made without OnRequest hands out
// connections. Unix clients are unnamed, so for them the order of OnConnect
// calls decides, which is why callers dial one connection at a time.
func (s *server) accept(clientAddr net.Addr) (netpoll.Connection, error) {
	select {
	case c := <-s.accepted:
		if s.network == "tcp" && c.RemoteAddr().String() != clientAddr.String() {
			c.Close()
			return nil, fmt.Errorf("OnConnect got peer %v; want %v", c.RemoteAddr(), clientAddr)
		}
		return c, nil
	case <-time.After(waitLimit):
		return nil, fmt.Errorf("OnConnect not called within %v of the dial", waitLimit)
	}
}

// role is how the netpoll connection under test was made; its peer is a
// plain net.Conn from the standard library, whose behaviour is the model.
type role struct {
	name    string
	network string
	server  bool // true: accepted by an EventLoop; false: dialed with DialConnection
}

var roles = []role{
	{name: "server/tcp", network: "tcp", server: true},
	{name: "client/tcp", network: "tcp", server: false},
	{name: "server/unix", network: "unix", server: true},
	{name: "client/unix", network: "unix", server: false},
}

// newConn returns a netpoll connection in role r and its standard-library
// peer. Both are closed when the test ends.
func newConn(tb testing.TB, r role) (netpoll.Connection, net.Conn) {
	tb.Helper()
	var conn netpoll.Connection
	var peer net.Conn
	if r.server {
		s := newServer(tb, r.network, nil)
		var err error
		if peer, err = net.DialTimeout(r.network, s.addr, waitLimit); err != nil {
			tb.Fatalf("net.Dial(%q, %q) = %v", r.network, s.addr, err)
		}
		tb.Cleanup(func() { peer.Close() })
		if conn, err = s.accept(peer.LocalAddr()); err != nil {
			tb.Fatal(err)
		}
	} else {
		addr := "127.0.0.1:0"
		if r.network == "unix" {
			addr = filepath.Join(tb.TempDir(), "conn.sock")
		}
		ln, err := net.Listen(r.network, addr)
		if err != nil {
			tb.Fatalf("net.Listen(%q, %q) = %v", r.network, addr, err)
		}
		defer ln.Close()
		if conn, err = netpoll.DialConnection(r.network, ln.Addr().String(), waitLimit); err != nil {
			tb.Fatalf("DialConnection(%q, %q) = %v", r.network, ln.Addr(), err)
		}
		if peer, err = ln.Accept(); err != nil {
			conn.Close()
			tb.Fatalf("Accept = %v", err)
		}
		tb.Cleanup(func() { peer.Close() })
	}
	tb.Cleanup(func() { conn.Close() })
	return conn, peer
}
