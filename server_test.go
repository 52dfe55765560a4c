package netpoll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEchoTCPAndUnix(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			checkNoFDLeak(t)
			ln := newLocalListener(t, network)
			startServer(t, ln, echoHandler)
			c := dialStd(t, ln)
			for i := range 20 {
				msg := bytes.Repeat([]byte{byte('a' + i)}, 1+i*97)
				if _, err := c.Write(msg); err != nil {
					t.Fatalf("Write: %v", err)
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatalf("ReadFull: %v", err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("echo %d: got %q; want %q", i, got[:min(8, len(got))], msg[:min(8, len(msg))])
				}
			}
		})
	}
}

// TestCallbackOrder checks OnPrepare → OnConnect → OnRequest, then
// OnDisconnect and the close callback exactly once, when the peer closes.
func TestCallbackOrder(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	closed := make(chan struct{})
	type ctxKey struct{}
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		record(fmt.Sprintf("request:%v", ctx.Value(ctxKey{})))
		b, _ := c.Reader().Next(c.Reader().Len())
		_, _ = c.Writer().WriteBinary(b)
		err := c.Writer().Flush()
		_ = c.Reader().Release()
		return err
	},
		WithOnPrepare(func(c Connection) context.Context {
			record("prepare")
			_ = c.AddCloseCallback(func(Connection) error {
				record("close")
				close(closed)
				return nil
			})
			return context.WithValue(context.Background(), ctxKey{}, "p")
		}),
		WithOnConnect(func(ctx context.Context, c Connection) context.Context {
			time.Sleep(20 * time.Millisecond) // input arrives meanwhile; OnRequest must still wait
			record(fmt.Sprintf("connect:%v", ctx.Value(ctxKey{})))
			return ctx
		}),
		WithOnDisconnect(func(ctx context.Context, c Connection) { record("disconnect") }),
	)
	c := dialStd(t, ln)
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	recvTimeout(t, closed, 5*time.Second, "close callback")
	time.Sleep(20 * time.Millisecond) // give a duplicate callback time to show up
	mu.Lock()
	got := fmt.Sprint(events)
	mu.Unlock()
	want := "[prepare connect:p request:p disconnect close]"
	if got != want {
		t.Fatalf("events = %s; want %s", got, want)
	}
}

// TestCloseCallbackServerSideClose checks the callback runs once when the
// server closes, and that the peer then sees EOF.
func TestCloseCallbackServerSideClose(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	var calls atomic.Int32
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		_ = c.AddCloseCallback(func(Connection) error { calls.Add(1); return nil })
		_ = c.Reader().Skip(c.Reader().Len())
		_ = c.Reader().Release()
		_ = c.Close()
		if err := c.Close(); err == nil {
			t.Errorf("second Close = nil; want an error")
		}
		return nil
	})
	c := dialStd(t, ln)
	_, _ = c.Write([]byte("x"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer Read = %d, %v; want EOF", n, err)
	}
	waitFor(t, 5*time.Second, "close callback", func() bool { return calls.Load() == 1 })
	time.Sleep(10 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("close callback ran %d times; want 1", n)
	}
}

// TestNextWaitsForSegments sends a message in pieces; Next(n) must block
// until all of it is there.
func TestNextWaitsForSegments(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	got := make(chan string, 1)
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		b, err := c.Reader().Next(10)
		if err != nil {
			got <- "error: " + err.Error()
			return err
		}
		got <- string(b)
		return c.Reader().Release()
	})
	c := dialStd(t, ln)
	for _, part := range []string{"01", "234", "5", "6789"} {
		if _, err := c.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := recvTimeout(t, got, 5*time.Second, "Next(10)"); s != "0123456789" {
		t.Fatalf("Next(10) = %q; want %q", s, "0123456789")
	}
}

// TestReadTimeout: a blocked Next fails with ErrReadTimeout, and the
// connection still works afterwards.
func TestReadTimeout(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	results := make(chan error, 4)
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		_, err := c.Reader().Next(100) // only 1 byte will come in time
		results <- err
		if err != nil {
			b, err2 := c.Reader().Next(c.Reader().Len())
			if err2 == nil {
				_, _ = c.Writer().WriteBinary(append([]byte(nil), b...))
				err2 = c.Writer().Flush()
			}
			results <- err2
		}
		return c.Reader().Release()
	}, WithReadTimeout(50*time.Millisecond))
	c := dialStd(t, ln)
	start := time.Now()
	_, _ = c.Write([]byte("x"))
	err := recvTimeout(t, results, 5*time.Second, "read timeout")
	if !errors.Is(err, ErrReadTimeout) || !isTimeoutErr(err) {
		t.Fatalf("Next = %v; want ErrReadTimeout as a net.Error timeout", err)
	}
	if elapsed := time.Since(start); elapsed < 40*time.Millisecond {
		t.Fatalf("timed out after %v; want about 50ms", elapsed)
	}
	if err := recvTimeout(t, results, 5*time.Second, "write after timeout"); err != nil {
		t.Fatalf("write after timeout: %v", err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("echo after timeout = %q, %v", buf, err)
	}
}

// TestWriteTimeout: Flush to a peer that never reads fails with
// ErrWriteTimeout.
func TestWriteTimeout(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	results := make(chan error, 1)
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		_ = c.Reader().Skip(c.Reader().Len())
		_ = c.Reader().Release()
		chunk := make([]byte, 1<<20)
		for range 256 { // 256 MiB at most; the peer's buffers fill long before
			if _, err := c.Writer().WriteBinary(chunk); err != nil {
				results <- err
				return err
			}
			if err := c.Writer().Flush(); err != nil {
				results <- err
				return err
			}
		}
		results <- nil
		return nil
	}, WithWriteTimeout(100*time.Millisecond))
	c := dialStd(t, ln)
	_, _ = c.Write([]byte("go"))
	err := recvTimeout(t, results, 10*time.Second, "write timeout")
	if !errors.Is(err, ErrWriteTimeout) || !isTimeoutErr(err) {
		t.Fatalf("Flush = %v; want ErrWriteTimeout", err)
	}
}

// TestIdleTimeout: a silent connection is closed after the idle timeout, and
// an active one is not.
func TestIdleTimeout(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler, WithIdleCloseTimeout(300*time.Millisecond))
	silent := dialStd(t, ln)
	active := dialStd(t, ln)
	start := time.Now()
	done := make(chan time.Duration, 1)
	go func() {
		_, _ = silent.Read(make([]byte, 1))
		done <- time.Since(start)
	}()
	for time.Since(start) < 900*time.Millisecond {
		if _, err := active.Write([]byte("k")); err != nil {
			t.Fatalf("active conn write: %v", err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(active, b); err != nil {
			t.Fatalf("active conn closed by idle timeout: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := recvTimeout(t, done, 5*time.Second, "idle close")
	if elapsed < 250*time.Millisecond || elapsed > 900*time.Millisecond {
		t.Fatalf("silent connection closed after %v; want 300ms..900ms", elapsed)
	}
}

// TestHalfClose: data then SHUT_WR from the peer; the full echo arrives,
// then EOF.
func TestHalfClose(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 64)
	for i := range 20 {
		c := dialStd(t, ln)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("trial %d: echo = %d bytes, %v; want %d bytes then EOF", i, len(got), err, len(msg))
		}
		_ = c.Close()
	}
}

// TestCloseWakesBlockedNextAndFlush: Close from another goroutine wakes a
// blocked Next and a blocked Flush at once with ErrConnClosed.
func TestCloseWakesBlockedNextAndFlush(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	peer := make(chan net.Conn, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			peer <- c
		}
	}()
	// The dialed side is ours; the accepted side (std) never writes or reads.
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	std := recvTimeout(t, peer, 5*time.Second, "dial")
	defer std.Close()
	c := raw.(Connection)
	nextErr := make(chan error, 1)
	go func() {
		_, err := c.Reader().Next(1)
		nextErr <- err
	}()
	flushErr := make(chan error, 1)
	go func() {
		chunk := make([]byte, 1<<20)
		for range 256 {
			if _, err := c.Writer().WriteBinary(chunk); err != nil {
				flushErr <- err
				return
			}
			if err := c.Writer().Flush(); err != nil {
				flushErr <- err
				return
			}
		}
		flushErr <- nil
	}()
	time.Sleep(100 * time.Millisecond) // let both block
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan error{nextErr, flushErr} {
		err := recvTimeout(t, ch, time.Second, "woken call")
		if !errors.Is(err, ErrConnClosed) {
			t.Fatalf("blocked call returned %v; want ErrConnClosed", err)
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("woken after %v; want promptly", d)
	}
}

// TestShutdownInFlight: Shutdown while requests are being handled; every
// started request gets its full reply.
func TestShutdownInFlight(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	const clients = 50
	started := make(chan struct{}, clients)
	release := make(chan struct{})
	loop, err := NewEventLoop(func(ctx context.Context, c Connection) error {
		b, err := c.Reader().Next(4)
		if err != nil {
			return err
		}
		req := string(b)
		_ = c.Reader().Release()
		started <- struct{}{}
		<-release
		_, _ = c.Writer().WriteString("reply:" + req)
		return c.Writer().Flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = dialStd(t, ln)
		fmt.Fprintf(conns[i], "%04d", i)
	}
	for range clients {
		recvTimeout(t, started, 5*time.Second, "request start")
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- loop.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if want := fmt.Sprintf("reply:%04d", i); string(got) != want {
			t.Fatalf("client %d got %q, %v; want %q then EOF", i, got, err, want)
		}
	}
	if err := recvTimeout(t, shut, 10*time.Second, "Shutdown"); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := recvTimeout(t, served, 5*time.Second, "Serve return"); err != nil {
		t.Fatalf("Serve = %v; want nil", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatalf("listener still accepts after Shutdown")
	}
}

// TestShutdownDeadline: a handler that does not finish makes Shutdown return
// the context's error.
func TestShutdownDeadline(t *testing.T) {
	ln := newLocalListener(t, "tcp")
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	loop, _ := NewEventLoop(func(ctx context.Context, c Connection) error {
		entered <- struct{}{}
		<-block
		return c.Reader().Skip(c.Reader().Len())
	})
	go func() { _ = loop.Serve(ln) }()
	c := dialStd(t, ln)
	_, _ = c.Write([]byte("x"))
	recvTimeout(t, entered, 5*time.Second, "handler start")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := loop.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v; want context.DeadlineExceeded", err)
	}
	close(block)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := loop.Shutdown(ctx2); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
}

// TestManyConnectionsEcho: 5,000 concurrent connections echo, every byte
// verified. Both ends live in this process: 10,000 fds of the 20,000 limit.
func TestManyConnectionsEcho(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	const conns, rounds = 5000, 3
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	sem := make(chan struct{}, 500) // bound concurrent dials: the backlog is finite
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
			<-sem
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			for r := range rounds {
				msg := []byte(fmt.Sprintf("conn %05d round %d payload %s", i, r, bytes.Repeat([]byte{byte(i)}, i%200)))
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("conn %d round %d: echo mismatch", i, r)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestLargeMessageEcho: a 64 MiB message is echoed intact.
func TestLargeMessageEcho(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	c := dialStd(t, ln)
	const size = 64 << 20
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte(i * 7 >> 3)
	}
	go func() { _, _ = c.Write(msg) }()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("ReadFull: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("64 MiB echo differs")
	}
}

// TestHandlerThatDoesNotReadDoesNotSpin: OnRequest is not called again
// until more input arrives when it consumed nothing.
func TestHandlerThatDoesNotReadDoesNotSpin(t *testing.T) {
	ln := newLocalListener(t, "tcp")
	var calls atomic.Int32
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		calls.Add(1)
		if c.Reader().Len() < 10 { // wait for a whole 10-byte request
			return nil
		}
		_ = c.Reader().Skip(10)
		return c.Reader().Release()
	})
	c := dialStd(t, ln)
	_, _ = c.Write([]byte("abc"))
	waitFor(t, 5*time.Second, "first call", func() bool { return calls.Load() >= 1 })
	time.Sleep(100 * time.Millisecond)
	if n := calls.Load(); n > 2 {
		t.Fatalf("OnRequest called %d times for one incomplete input; want no spinning", n)
	}
	_, _ = c.Write([]byte("defghij"))
	waitFor(t, 5*time.Second, "call after more input", func() bool { return calls.Load() >= 2 })
}

// TestPanicInHandler: a panicking handler costs only its connection.
func TestPanicInHandler(t *testing.T) {
	checkNoFDLeak(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	SetLoggerOutput(lockedWriter{&logMu, &logs})
	defer SetLoggerOutput(io.Discard)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		b, _ := c.Reader().Peek(1)
		if b[0] == 'p' {
			panic("boom")
		}
		return echoHandler(ctx, c)
	})
	bad := dialStd(t, ln)
	_, _ = bad.Write([]byte("p"))
	_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bad.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("panicking connection: Read = %v; want EOF", err)
	}
	good := dialStd(t, ln)
	_, _ = good.Write([]byte("ok"))
	b := make([]byte, 2)
	if _, err := io.ReadFull(good, b); err != nil || string(b) != "ok" {
		t.Fatalf("other connection after panic: %q, %v", b, err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !bytes.Contains(logs.Bytes(), []byte("boom")) {
		t.Fatalf("panic not logged; log = %q", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestOnDisconnectWhileRequestRuns: the peer's close is reported at once,
// with the connection's context, while a handler still runs (frameworks
// cancel its work then); the close callback still comes after it.
func TestOnDisconnectWhileRequestRuns(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	type key struct{}
	release := make(chan struct{})
	disconnected := make(chan any, 1)
	closed := make(chan struct{})
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		_ = c.Reader().Skip(c.Reader().Len())
		<-release // a long request
		return c.Reader().Release()
	},
		WithOnPrepare(func(c Connection) context.Context {
			_ = c.AddCloseCallback(func(Connection) error { close(closed); return nil })
			return context.WithValue(context.Background(), key{}, "prepared")
		}),
		WithOnDisconnect(func(ctx context.Context, c Connection) { disconnected <- ctx.Value(key{}) }),
	)
	c := dialStd(t, ln)
	_, _ = c.Write([]byte("req"))
	time.Sleep(20 * time.Millisecond)
	_ = c.Close()
	if v := recvTimeout(t, disconnected, 2*time.Second, "OnDisconnect during OnRequest"); v != "prepared" {
		t.Fatalf("OnDisconnect context value = %v; want the OnPrepare context", v)
	}
	select {
	case <-closed:
		t.Fatalf("closed while the handler still ran")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	recvTimeout(t, closed, 5*time.Second, "close after the handler")
}

// TestOnDisconnectAfterSlowOnConnect: when the peer closes while OnConnect
// still runs, OnDisconnect waits for it and gets the context it returned
// (a proxy keeps its upstream there), as the reference does.
func TestOnDisconnectAfterSlowOnConnect(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	type key struct{}
	peerGone := make(chan struct{})
	got := make(chan any, 1)
	startServer(t, ln, nil,
		WithOnConnect(func(ctx context.Context, c Connection) context.Context {
			<-peerGone // the peer closes while OnConnect runs
			time.Sleep(20 * time.Millisecond)
			return context.WithValue(ctx, key{}, "from OnConnect")
		}),
		WithOnDisconnect(func(ctx context.Context, c Connection) { got <- ctx.Value(key{}) }),
	)
	c := dialStd(t, ln)
	_ = c.Close()
	close(peerGone)
	if v := recvTimeout(t, got, 5*time.Second, "OnDisconnect"); v != "from OnConnect" {
		t.Fatalf("OnDisconnect saw context value %v; want the one OnConnect returned", v)
	}
}

func TestShutdownSweepWait(t *testing.T) {
	tests := []struct {
		busy int
		want time.Duration
	}{
		{1, 50 * time.Millisecond},
		{49, 50 * time.Millisecond},
		{300, 300 * time.Millisecond},
		{1000, time.Second},
		{100000, time.Second},
	}
	for _, tt := range tests {
		if got := shutdownSweepWait(tt.busy); got != tt.want {
			t.Errorf("shutdownSweepWait(%d) = %v; want %v", tt.busy, got, tt.want)
		}
	}
}

// TestShutdownSweepsGently: while a connection stays busy, Shutdown sweeps
// no more often than every 50 ms, as the reference does, so a connection
// between a response and its client's next request is seldom caught idle
// (#16). Timers never fire early, so the bound holds on a slow machine too.
func TestShutdownSweepsGently(t *testing.T) {
	ln := newLocalListener(t, "tcp")
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	loop, err := NewEventLoop(func(ctx context.Context, c Connection) error {
		entered <- struct{}{}
		<-release
		return c.Reader().Skip(c.Reader().Len())
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = loop.Serve(ln) }()
	c := dialStd(t, ln)
	_, _ = c.Write([]byte("x"))
	recvTimeout(t, entered, 5*time.Second, "handler start")
	shut := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- loop.Shutdown(ctx)
	}()
	srv := loop.(*server)
	waitFor(t, 5*time.Second, "two sweeps", func() bool { return srv.sweeps.Load() >= 2 })
	time.Sleep(200 * time.Millisecond)
	sweeps, elapsed := srv.sweeps.Load(), time.Since(start)
	close(release)
	if err := recvTimeout(t, shut, 5*time.Second, "Shutdown"); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if most := int64(elapsed/minSweepWait) + 1; sweeps > most {
		t.Fatalf("%d sweeps in %v with one busy connection; want at most %d (one per %v)", sweeps, elapsed, most, minSweepWait)
	}
	t.Logf("%d sweeps in %v", sweeps, elapsed)
}
