package netpoll

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// poolFixture is an echo server and a pool dialing it, counting dials.
type poolFixture struct {
	pool  *ConnectionPool
	dials atomic.Int64
	// server connections, for tests that close them from the server side
	mu      sync.Mutex
	servers []Connection
}

func newPoolFixture(t testing.TB, opts ...PoolOption) *poolFixture {
	t.Helper()
	f := &poolFixture{}
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler, WithOnPrepare(func(c Connection) context.Context {
		f.mu.Lock()
		f.servers = append(f.servers, c)
		f.mu.Unlock()
		return context.Background()
	}))
	addr := ln.Addr().String()
	pool, err := NewConnectionPool(func(ctx context.Context) (Connection, error) {
		f.dials.Add(1)
		return DialConnection("tcp", addr, time.Second)
	}, opts...)
	if err != nil {
		t.Fatalf("NewConnectionPool: %v", err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	f.pool = pool
	return f
}

// get takes a connection or fails the test.
func (f *poolFixture) get(t testing.TB) Connection {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := f.pool.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return c
}

func (f *poolFixture) put(t testing.TB, c Connection) {
	t.Helper()
	if err := f.pool.Put(c); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func (f *poolFixture) idle() int {
	f.pool.mu.Lock()
	defer f.pool.mu.Unlock()
	return len(f.pool.idle)
}

// roundTrip checks that c still carries traffic: one echo.
func roundTrip(t testing.TB, c Connection) {
	t.Helper()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo = %q, %v; want \"ping\", <nil>", buf, err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

func TestConnectionPoolReuse(t *testing.T) {
	checkNoFDLeak(t)
	f := newPoolFixture(t)
	c1 := f.get(t)
	roundTrip(t, c1)
	f.put(t, c1)
	c2 := f.get(t)
	if c2 != c1 {
		t.Errorf("Get after Put returned a new connection; want the idle one back")
	}
	roundTrip(t, c2)
	f.put(t, c2)
	if got := f.dials.Load(); got != 1 {
		t.Errorf("dialed %d times; want 1", got)
	}
}

// TestConnectionPoolSizeWaits checks that Get waits at the size limit, gives
// up with the context's error, and is served by a Put.
func TestConnectionPoolSizeWaits(t *testing.T) {
	checkNoFDLeak(t)
	f := newPoolFixture(t, WithPoolSize(2))
	a, b := f.get(t), f.get(t)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	_, err := f.pool.Get(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get at the limit = %v; want DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("Get gave up after %v; want it to wait for the 50ms deadline", waited)
	}

	ctx, cancel = context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := f.pool.Get(ctx)
		got <- err
	}()
	cancel()
	if err := recvTimeout(t, got, 5*time.Second, "a cancelled Get"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Get = %v; want Canceled", err)
	}

	served := make(chan Connection, 1)
	go func() {
		c, err := f.pool.Get(context.Background())
		if err != nil {
			c = nil
		}
		served <- c
	}()
	f.put(t, a)
	if c := recvTimeout(t, served, 5*time.Second, "a waiting Get"); c != a {
		t.Fatalf("waiting Get got %v; want the connection just Put", c)
	}
	f.put(t, a)
	f.put(t, b)
	if got := f.dials.Load(); got != 2 {
		t.Errorf("dialed %d times; want 2 (the size)", got)
	}
}

func TestConnectionPoolMaxIdle(t *testing.T) {
	checkNoFDLeak(t)
	f := newPoolFixture(t, WithPoolMaxIdle(1))
	conns := []Connection{f.get(t), f.get(t), f.get(t)}
	for _, c := range conns {
		f.put(t, c)
	}
	if got := f.idle(); got != 1 {
		t.Fatalf("%d idle connections; want 1", got)
	}
	active := 0
	for _, c := range conns {
		if c.IsActive() {
			active++
		}
	}
	if active != 1 {
		t.Errorf("%d connections left open; want 1 (the rest closed at Put)", active)
	}
}

// TestConnectionPoolDirtyPut checks that a connection that would hand the
// next user someone else's bytes is closed, not reused.
func TestConnectionPoolDirtyPut(t *testing.T) {
	tests := []struct {
		name  string
		dirty func(t *testing.T, c Connection)
	}{
		{"unread input", func(t *testing.T, c Connection) {
			if _, err := c.Write([]byte("reply pending")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the echo to arrive", func() bool { return c.Reader().Len() > 0 })
		}},
		{"unflushed output", func(t *testing.T, c Connection) {
			if _, err := c.Writer().WriteString("half a request"); err != nil {
				t.Fatal(err)
			}
		}},
		{"closed by the user", func(t *testing.T, c Connection) { _ = c.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoFDLeak(t)
			f := newPoolFixture(t)
			c := f.get(t)
			tt.dirty(t, c)
			f.put(t, c)
			if c.IsActive() || f.idle() != 0 {
				t.Fatalf("after Put: active %v, %d idle; want closed, 0 idle", c.IsActive(), f.idle())
			}
			c2 := f.get(t)
			if c2 == c {
				t.Fatal("Get returned the dirty connection")
			}
			roundTrip(t, c2)
			f.put(t, c2)
		})
	}
}

// TestConnectionPoolPutUnsentOutput is defect 5 of #15: a Flush that failed
// on its write deadline leaves flushed output the kernel did not take. A pool
// that took the connection back would send those stale bytes ahead of the
// next user's request. Put must close it, and Get must dial afresh.
func TestConnectionPoolPutUnsentOutput(t *testing.T) {
	checkNoFDLeak(t)
	// The peer accepts but reads nothing until the test says so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	peers := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(peers)
				return
			}
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			peers <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for c := range peers {
			_ = c.Close()
		}
	})
	var dials atomic.Int64
	pool, err := NewConnectionPool(func(ctx context.Context) (Connection, error) {
		dials.Add(1)
		return DialConnection("tcp", ln.Addr().String(), time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	first, err := pool.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if err := syscall.SetsockoptInt(first.(Conn).Fd(), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
		t.Fatalf("SO_SNDBUF: %v", err)
	}
	firstPeer := recvTimeout(t, peers, 5*time.Second, "the first connection")
	t.Cleanup(func() { _ = firstPeer.Close() })
	// Far more than the two socket buffers hold while the peer reads nothing.
	stale := bytes.Repeat([]byte{'S'}, 8<<20)
	if _, err := first.Writer().WriteBinary(stale); err != nil {
		t.Fatal(err)
	}
	_ = first.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	if err := first.Writer().Flush(); !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("Flush to a peer that reads nothing = %v; want ErrWriteTimeout", err)
	}
	_ = first.SetWriteDeadline(time.Time{})
	if err := pool.Put(first); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if first.IsActive() {
		t.Error("Put kept a connection whose flushed output was not all sent; want it closed")
	}

	next, err := pool.Get(ctx)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if next == first {
		_ = pool.Put(next)
		t.Fatal("Get handed out the connection that still held the previous user's output")
	}
	if _, err := next.Writer().WriteString("REQ"); err != nil {
		t.Fatal(err)
	}
	if err := next.Writer().Flush(); err != nil {
		t.Fatalf("Flush of the next request: %v", err)
	}
	nextPeer := recvTimeout(t, peers, 5*time.Second, "a fresh connection")
	t.Cleanup(func() { _ = nextPeer.Close() })
	_ = nextPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 3)
	if _, err := io.ReadFull(nextPeer, got); err != nil || string(got) != "REQ" {
		t.Fatalf("fresh connection's peer read %q, %v; want \"REQ\" first", got, err)
	}
	// The first peer gets part of the stale output, then the end of stream,
	// and never the next user's request.
	_ = firstPeer.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(firstPeer)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the first peer: %v", err)
	}
	if i := bytes.IndexFunc(rest, func(r rune) bool { return r != 'S' }); i >= 0 {
		t.Fatalf("the first peer received %q at offset %d after the stale output", rest[i:min(i+8, len(rest))], i)
	}
	if err := pool.Put(next); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := dials.Load(); got != 2 {
		t.Errorf("dialed %d times; want 2", got)
	}
}

// TestConnectionPoolEvictsDead closes every connection from the server side
// while they sit idle: the next Get must skip them, without reading, and
// dial a working one.
func TestConnectionPoolEvictsDead(t *testing.T) {
	checkNoFDLeak(t)
	f := newPoolFixture(t)
	conns := []Connection{f.get(t), f.get(t), f.get(t)}
	for _, c := range conns {
		roundTrip(t, c)
		f.put(t, c)
	}
	f.mu.Lock()
	for _, s := range f.servers {
		_ = s.Close()
	}
	f.mu.Unlock()
	for _, c := range conns {
		waitFor(t, 5*time.Second, "the client to see the server's close", func() bool { return !c.IsActive() })
	}
	c := f.get(t)
	for _, dead := range conns {
		if c == dead {
			t.Fatal("Get handed out a connection the server had closed")
		}
	}
	roundTrip(t, c)
	f.put(t, c)
	if got := f.dials.Load(); got != 4 {
		t.Errorf("dialed %d times; want 4", got)
	}
	if got := f.idle(); got != 1 {
		t.Errorf("%d idle; want 1 (the dead ones dropped)", got)
	}
}

func TestConnectionPoolIdleTimeout(t *testing.T) {
	checkNoFDLeak(t)
	f := newPoolFixture(t, WithPoolIdleTimeout(30*time.Millisecond))
	a, b := f.get(t), f.get(t)
	f.put(t, a)
	f.put(t, b)
	for _, c := range []Connection{a, b} {
		waitFor(t, 5*time.Second, "the idle sweep to close the connection", func() bool { return !c.IsActive() })
	}
	if got := f.idle(); got != 0 {
		t.Errorf("%d idle after the sweep; want 0", got)
	}
	c := f.get(t)
	roundTrip(t, c)
	f.put(t, c)
}

func TestConnectionPoolMaxLifetime(t *testing.T) {
	checkNoFDLeak(t)
	const lifetime = 30 * time.Millisecond
	f := newPoolFixture(t, WithPoolMaxLifetime(lifetime))
	c := f.get(t)
	born := time.Now()
	f.put(t, c)
	if !c.IsActive() {
		t.Fatal("a young connection was closed at Put")
	}
	waitFor(t, 5*time.Second, "the lifetime to pass", func() bool { return time.Since(born) > lifetime })
	c2 := f.get(t)
	if c2 == c || c.IsActive() {
		t.Fatalf("Get after the lifetime: same connection %v, old one active %v; want a new one, old closed", c2 == c, c.IsActive())
	}
	born = time.Now()
	waitFor(t, 5*time.Second, "the lifetime to pass", func() bool { return time.Since(born) > lifetime })
	f.put(t, c2)
	if c2.IsActive() {
		t.Error("a connection past its lifetime was kept at Put")
	}
}

func TestConnectionPoolClose(t *testing.T) {
	checkNoFDLeak(t)
	f := newPoolFixture(t, WithPoolSize(2))
	idle, out := f.get(t), f.get(t)
	f.put(t, idle)
	if err := f.pool.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if idle.IsActive() || f.idle() != 0 {
		t.Errorf("after Close: idle connection active %v, %d idle; want closed, 0", idle.IsActive(), f.idle())
	}
	if !out.IsActive() {
		t.Error("Close closed a connection that is out; want it closed at Put")
	}
	f.put(t, out)
	if out.IsActive() {
		t.Error("Put after Close kept the connection open")
	}
	if _, err := f.pool.Get(context.Background()); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Get after Close = %v; want ErrPoolClosed", err)
	}
	if err := f.pool.Close(); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("second Close = %v; want ErrPoolClosed", err)
	}
}

// TestConnectionPoolCloseWakesWaiter checks that a Get blocked at the size
// limit returns ErrPoolClosed when the pool closes.
func TestConnectionPoolCloseWakesWaiter(t *testing.T) {
	checkNoFDLeak(t)
	f := newPoolFixture(t, WithPoolSize(1))
	c := f.get(t)
	waiting := make(chan error, 1)
	go func() {
		_, err := f.pool.Get(context.Background())
		waiting <- err
	}()
	waitFor(t, 5*time.Second, "the Get to block", func() bool { return len(f.pool.slots) == 1 })
	if err := f.pool.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recvTimeout(t, waiting, 5*time.Second, "the waiting Get"); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("waiting Get = %v; want ErrPoolClosed", err)
	}
	f.put(t, c)
}

func TestConnectionPoolPutErrors(t *testing.T) {
	f := newPoolFixture(t)
	c := f.get(t)
	stranger := dial(t, newLocalListener(t, "tcp"))
	tests := []struct {
		name string
		conn Connection
	}{
		{"nil", nil},
		{"not from the pool", stranger},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.pool.Put(tt.conn); !errors.Is(err, errPoolForeign) {
				t.Errorf("Put = %v; want errPoolForeign", err)
			}
		})
	}
	f.put(t, c)
	if err := f.pool.Put(c); !errors.Is(err, errPoolForeign) {
		t.Errorf("second Put = %v; want errPoolForeign", err)
	}
}

func TestConnectionPoolOptions(t *testing.T) {
	dialer := func(context.Context) (Connection, error) { return nil, errors.New("unused") }
	tests := []struct {
		name string
		dial func(context.Context) (Connection, error)
		opts []PoolOption
		want error
	}{
		{"nil dial", nil, nil, errPoolNoDial},
		{"negative size", dialer, []PoolOption{WithPoolSize(-1)}, errPoolOption},
		{"negative idle", dialer, []PoolOption{WithPoolMaxIdle(-2)}, errPoolOption},
		{"negative idle timeout", dialer, []PoolOption{WithPoolIdleTimeout(-time.Second)}, errPoolOption},
		{"negative lifetime", dialer, []PoolOption{WithPoolMaxLifetime(-time.Second)}, errPoolOption},
		{"valid", dialer, []PoolOption{WithPoolSize(4), WithPoolMaxIdle(0)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewConnectionPool(tt.dial, tt.opts...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewConnectionPool = %v; want %v", err, tt.want)
			}
			if p != nil {
				_ = p.Close()
			}
		})
	}
	p, _ := NewConnectionPool(dialer)
	defer p.Close()
	if _, err := p.Get(context.Background()); err == nil || err.Error() != "netpoll: pool dial: unused" {
		t.Errorf("Get with a failing dial = %v; want the dial's error, wrapped", err)
	}
}

// TestConnectionPoolConcurrent hammers one pool from many goroutines under
// the race detector; at no time may more than the size be out.
func TestConnectionPoolConcurrent(t *testing.T) {
	checkNoFDLeak(t)
	const size, workers, rounds = 4, 16, 100
	f := newPoolFixture(t, WithPoolSize(size), WithPoolMaxIdle(2))
	var out, peak atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4)
			for i := range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := f.pool.Get(ctx)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				n := out.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if i%3 == 0 {
					if _, err = c.Write([]byte("ping")); err == nil {
						_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
						_, err = io.ReadFull(c, buf)
					}
					if err != nil {
						errs <- err
						return
					}
				}
				out.Add(-1)
				if err := f.pool.Put(c); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p > size {
		t.Errorf("%d connections out at once; want at most %d", p, size)
	}
	if f.idle() > 2 {
		t.Errorf("%d idle; want at most 2", f.idle())
	}
}

// TestConnectionPoolGetPutAllocs pins the fast path, an idle connection
// taken and returned, at zero allocations.
func TestConnectionPoolGetPutAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes allocation counts meaningless")
	}
	f := newPoolFixture(t, WithPoolSize(8), WithPoolIdleTimeout(time.Minute), WithPoolMaxLifetime(time.Hour))
	f.put(t, f.get(t))
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		c, err := f.pool.Get(ctx)
		if err != nil {
			panic(err)
		}
		if err = f.pool.Put(c); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Get+Put of an idle connection: %v allocations; want 0", allocs)
	}
}
