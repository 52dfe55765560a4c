package netpoll

// The fault suite (#6): hostile and broken peers against an echo server on
// the library, over real loopback sockets. Each test states what a peer does
// and what the server must do about it; the measured figures (close
// latencies, memory growth, CPU while out of fds, log line counts) go to
// t.Logf, so `go test -race -run Fault -v .` shows them.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// logCapture collects the library's log output for one test.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// captureLogs sends the library's log lines to a buffer until the test ends.
func captureLogs(t testing.TB) *logCapture {
	t.Helper()
	lc := &logCapture{}
	SetLoggerOutput(lockedWriter{&lc.mu, &lc.buf})
	t.Cleanup(func() { SetLoggerOutput(io.Discard) })
	return lc
}

// lines returns the captured lines that contain substr ("" for all).
func (lc *logCapture) lines(substr string) []string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out []string
	for line := range strings.Lines(lc.buf.String()) {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// resetLimiter lets the next line of l through, so a test that expects a
// line does not depend on what an earlier test logged less than a second ago.
func resetLimiter(l *logLimiter) {
	l.last.Store(0)
	l.suppressed.Store(0)
}

// latencySummary describes a distribution of durations for the report.
func latencySummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("n=%d min=%v p50=%v p90=%v p99=%v max=%v", len(s), q(0), q(0.5), q(0.9), q(0.99), q(1))
}

// readUntilClosed reads c until the server closes it (EOF or a reset) and
// returns when that happened. A read deadline bounds the wait.
func readUntilClosed(c net.Conn, limit time.Duration) (time.Time, error) {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if isTimeoutErr(err) {
				return time.Time{}, err
			}
			return time.Now(), nil
		}
	}
}

// echoOnce writes msg on c and reads it back, bounded by limit.
func echoOnce(c net.Conn, msg []byte, limit time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(limit))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo = %q; want %q", got, msg)
	}
	return nil
}

// requestHandler waits, with the read timeout, for a whole size-byte
// request and echoes it; any failure closes the connection, as a server
// should when a peer cannot complete a request in time.
func requestHandler(size int) OnRequest {
	return func(_ context.Context, c Connection) error {
		b, err := c.Reader().Next(size)
		if err != nil {
			_ = c.Close()
			return err
		}
		if _, err = c.Writer().WriteBinary(b); err == nil {
			err = c.Writer().Flush()
		}
		if err != nil {
			_ = c.Close()
			return err
		}
		return c.Reader().Release()
	}
}

// TestFaultSlowPeersAreClosed: silent peers are closed by the idle timeout,
// and peers that dribble a byte at a time, never completing a request, by
// the read timeout: each byte must not restart the handler's wait.
func TestFaultSlowPeersAreClosed(t *testing.T) {
	const timeout = 500 * time.Millisecond
	tests := []struct {
		name    string
		opts    []Option
		dribble time.Duration // interval between single bytes; 0 sends nothing
	}{
		{"silent/idle timeout", []Option{WithIdleCloseTimeout(timeout)}, 0},
		{"dribble/read timeout", []Option{WithReadTimeout(timeout)}, 50 * time.Millisecond},
		{"dribble/idle and read timeout", []Option{WithIdleCloseTimeout(timeout), WithReadTimeout(timeout)}, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoFDLeak(t)
			ln := newLocalListener(t, "tcp")
			startServer(t, ln, requestHandler(64), tt.opts...)
			const clients = 40
			latencies := make(chan time.Duration, clients)
			errs := make(chan error, clients)
			var wg sync.WaitGroup
			for range clients {
				// A silent peer's clock starts before the server can see it; a
				// dribbling one's just before its first byte.
				start := time.Now()
				c := dialStd(t, ln)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if tt.dribble > 0 {
						start = time.Now()
					}
					readerDone, writerDone := make(chan struct{}), make(chan struct{})
					go func() {
						defer close(writerDone)
						// Far fewer than 64 bytes go out before the timeout.
						for i := 0; tt.dribble > 0 && i < 60; i++ {
							if _, err := c.Write([]byte{'x'}); err != nil {
								return
							}
							select {
							case <-readerDone:
								return
							case <-time.After(tt.dribble):
							}
						}
					}()
					at, err := readUntilClosed(c, 20*time.Second)
					close(readerDone)
					if err != nil {
						errs <- fmt.Errorf("peer not closed by the server: %w", err)
					} else {
						latencies <- at.Sub(start)
					}
					<-writerDone
					_ = c.Close()
				}()
			}
			wg.Wait()
			close(errs)
			close(latencies)
			for err := range errs {
				t.Error(err)
			}
			var ds []time.Duration
			for d := range latencies {
				ds = append(ds, d)
			}
			t.Logf("close latency after %v timeout: %s", timeout, latencySummary(ds))
			// Never early (but for clock granularity); late by up to two wheel
			// ticks, with a generous margin for a loaded machine.
			for _, d := range ds {
				if d < timeout-5*time.Millisecond || d > timeout+3*time.Second {
					t.Errorf("closed after %v; want %v..%v", d, timeout, timeout+3*time.Second)
				}
			}
		})
	}
}

// vmRSS returns the resident set size of this process, from /proc.
func vmRSS(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}

// memorySample is what the flood test watches.
type memorySample struct {
	heapInuse, sys, rss int64
}

// sampleMemory collects garbage first, so heapInuse is what the server holds
// (and its pools keep) rather than how far the collector has let garbage
// pile up: a copying handler leaves a dead copy of its input per call, and
// with GOGC's default the heap may reach twice what is live before a cycle.
// Sys and VmRSS still show the footprint, garbage and all.
func sampleMemory(t testing.TB) memorySample {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return memorySample{int64(ms.HeapInuse), int64(ms.Sys), vmRSS(t)}
}

// copyingEcho echoes a copy of the input and releases the input before it
// flushes, as a handler that decodes into its own memory does.
func copyingEcho(_ context.Context, c Connection) error {
	b, err := c.Reader().Next(c.Reader().Len())
	if err != nil {
		return err
	}
	out, err := c.Writer().Malloc(len(b))
	if err != nil {
		return err
	}
	copy(out, b)
	if err = c.Reader().Release(); err != nil {
		return err
	}
	return c.Writer().Flush()
}

// TestFaultFloodingPeerThatNeverReads: a peer sends up to 512 MiB to an echo
// server and never reads the echo. What the server must do: stay small
// (input stops at the input limit, so TCP flow control blocks the sender,
// and echo it cannot send must not pile up), keep answering other clients,
// and drop the peer once a Flush to it has waited the whole write timeout
// (or, without one, once the idle timeout sees neither input nor output),
// rather than holding its buffers and a stuck handler for as long as the
// peer likes.
func TestFaultFloodingPeerThatNeverReads(t *testing.T) {
	const timeout = 500 * time.Millisecond
	tests := []struct {
		name     string
		handler  OnRequest
		opt      Option
		flushErr error // what the handler's blocked Flush returns
	}{
		{"zero-copy echo/write timeout", echoHandler, WithWriteTimeout(timeout), ErrWriteTimeout},
		{"copying echo/write timeout", copyingEcho, WithWriteTimeout(timeout), ErrWriteTimeout},
		{"zero-copy echo/idle timeout", echoHandler, WithIdleCloseTimeout(timeout), ErrConnClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testFlood(t, tt.handler, tt.opt, tt.flushErr) })
	}
}

func testFlood(t *testing.T, handler OnRequest, opt Option, wantErr error) {
	checkNoFDLeak(t)
	const (
		floodSize    = 512 << 20
		memoryBudget = 64 << 20
		window       = 4 * time.Second
	)
	ln := newLocalListener(t, "tcp")
	flushErrs := make(chan error, 64)
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		err := handler(ctx, c)
		if err != nil {
			select {
			case flushErrs <- err:
			default:
			}
		}
		return err
	}, opt)
	probe := dialStd(t, ln)
	if err := echoOnce(probe, []byte("warm"), 5*time.Second); err != nil {
		t.Fatalf("probe before the flood: %v", err)
	}
	runtime.GC()
	base := sampleMemory(t)

	flood := dialStd(t, ln)
	var sent atomic.Int64
	floodDone := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat([]byte("flood!!!"), 128<<10) // 1 MiB
		for sent.Load() < floodSize {
			n, err := flood.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				floodDone <- err
				return
			}
		}
		floodDone <- nil
	}()

	peak := base
	var probeLatency []time.Duration
	start := time.Now()
	var floodErr error
	var floodEnded time.Duration
	for time.Since(start) < window {
		s := sampleMemory(t)
		peak = memorySample{max(peak.heapInuse, s.heapInuse), max(peak.sys, s.sys), max(peak.rss, s.rss)}
		t0 := time.Now()
		if err := echoOnce(probe, []byte("ping"), 10*time.Second); err != nil {
			t.Fatalf("probe during the flood (%d MiB sent): %v", sent.Load()>>20, err)
		}
		probeLatency = append(probeLatency, time.Since(t0))
		if floodEnded == 0 {
			select {
			case floodErr = <-floodDone:
				floodEnded = time.Since(start)
			default:
			}
		}
		time.Sleep(50 * time.Millisecond) // pacing of the samples, not a wait for a condition
	}
	sentInWindow := sent.Load()
	outcome := fmt.Sprintf("still blocked after %v", window)
	if floodEnded > 0 {
		outcome = fmt.Sprintf("dropped after %v: %v", floodEnded.Round(time.Millisecond), floodErr)
	}
	t.Logf("flood: %d MiB of %d MiB sent; sender %s", sentInWindow>>20, floodSize>>20, outcome)
	t.Logf("server memory growth: HeapInuse %+.1f MiB, Sys %+.1f MiB, VmRSS %+.1f MiB (budget %d MiB, race %v)",
		mib(peak.heapInuse-base.heapInuse), mib(peak.sys-base.sys), mib(peak.rss-base.rss), memoryBudget>>20, raceEnabled)
	t.Logf("other client's echo latency during the flood: %s", latencySummary(probeLatency))

	if sentInWindow >= floodSize {
		t.Errorf("the whole %d MiB went through a peer that never reads: the sender was not slowed", floodSize>>20)
	}
	if g := peak.heapInuse - base.heapInuse; g > memoryBudget {
		t.Errorf("HeapInuse grew by %.1f MiB; want < %d MiB", mib(g), memoryBudget>>20)
	}
	if g := peak.sys - base.sys; g > memoryBudget {
		t.Errorf("Sys grew by %.1f MiB; want < %d MiB", mib(g), memoryBudget>>20)
	}
	if g := peak.rss - base.rss; g > memoryBudget && !raceEnabled {
		// The race detector's shadow memory follows the heap several times
		// over, so RSS is only held to the budget without it.
		t.Errorf("VmRSS grew by %.1f MiB; want < %d MiB", mib(g), memoryBudget>>20)
	}
	if slices.Max(probeLatency) > 2*time.Second {
		t.Errorf("other client's echo took up to %v during the flood; want prompt", slices.Max(probeLatency))
	}
	err := recvTimeout(t, flushErrs, 10*time.Second, "the flood handler's Flush to give up")
	if !errors.Is(err, wantErr) {
		t.Errorf("flood handler's Flush = %v; want %v", err, wantErr)
	}
	if floodEnded == 0 {
		t.Errorf("the server still holds the flooding peer after %v; want it dropped", window)
	} else if floodErr == nil {
		t.Errorf("the flooding peer sent all %d MiB", floodSize>>20)
	}
	_ = flood.Close()
	if floodEnded == 0 {
		recvTimeout(t, floodDone, 10*time.Second, "the flooding writer to stop")
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// TestFaultHalfCloseEcho: 1 KiB then SHUT_WR; the whole echo arrives, then
// EOF, in every one of 100 trials.
func TestFaultHalfCloseEcho(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	for i := range 100 {
		msg := bytes.Repeat([]byte{byte('a' + i%26)}, 1024)
		c := dialStd(t, ln)
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("trial %d: Write = %v", i, err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatalf("trial %d: CloseWrite = %v", i, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("trial %d: read %d bytes, %v; want the 1024-byte echo then EOF", i, len(got), err)
		}
		_ = c.Close()
	}
}

// goroutinesAfterDrain counts goroutines once idle pooled workers have left,
// since they are kept on purpose and are not a leak.
func goroutinesAfterDrain() int {
	defaultPool.drain()
	return runtime.NumGoroutine()
}

// TestFaultResetStorm: 5,000 peers connect and reset at once (SO_LINGER 0,
// then close). Every fd and goroutine the server spent on them comes back,
// and the resets cost no log lines beyond a rate-limited one.
func TestFaultResetStorm(t *testing.T) {
	logs := captureLogs(t)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	if err := echoOnce(dialStd(t, ln), []byte("warm"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	baseFDs, baseG := countFDs(t), goroutinesAfterDrain()
	const resets, workers = 5000, 8
	start := time.Now()
	var wg sync.WaitGroup
	var dialErrs atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := w; i < resets; i += workers {
				c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				_ = c.(*net.TCPConn).SetLinger(0)
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	if n := dialErrs.Load(); n > 0 {
		t.Fatalf("%d of %d dials failed", n, resets)
	}
	var fds, gs int
	waitFor(t, 30*time.Second, "fds and goroutines back to baseline", func() bool {
		fds, gs = countFDs(t), goroutinesAfterDrain()
		return fds <= baseFDs && gs <= baseG
	})
	elapsed := time.Since(start)
	lines := logs.lines("")
	t.Logf("%d resets in %v: fds %d → %d, goroutines %d → %d, %d log lines",
		resets, elapsed.Round(time.Millisecond), baseFDs, fds, baseG, gs, len(lines))
	if limit := 1 + int(elapsed/time.Second); len(lines) > limit {
		t.Errorf("%d log lines for %d resets in %v; want at most %d:\n%s", len(lines), resets, elapsed, limit, strings.Join(lines, ""))
	}
	if err := echoOnce(dialStd(t, ln), []byte("after"), 5*time.Second); err != nil {
		t.Errorf("echo after the resets: %v", err)
	}
}

// TestFaultShutdownInFlight: Shutdown while 200 requests are being handled;
// each gets its whole reply, then EOF.
func TestFaultShutdownInFlight(t *testing.T) {
	checkNoFDLeak(t)
	const (
		clients   = 200
		replySize = 32 << 10
	)
	ln := newLocalListener(t, "tcp")
	var started atomic.Int64
	release := make(chan struct{})
	reply := func(req []byte) []byte { return bytes.Repeat(req, replySize/len(req)) }
	loop := startServer(t, ln, func(_ context.Context, c Connection) error {
		b, err := c.Reader().Next(8)
		if err != nil {
			return err
		}
		req := append([]byte(nil), b...)
		_ = c.Reader().Release()
		started.Add(1)
		select {
		case <-release:
		case <-time.After(30 * time.Second): // the test failed; do not hang its cleanup
		}
		if _, err = c.Writer().WriteBinary(reply(req)); err != nil {
			return err
		}
		return c.Writer().Flush()
	})
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = dialStd(t, ln)
		fmt.Fprintf(conns[i], "req%05d", i)
	}
	waitFor(t, 30*time.Second, "every request in its handler", func() bool { return started.Load() == clients })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- loop.Shutdown(ctx)
	}()
	// Release the handlers only once Shutdown is under way: the listener
	// refuses connections then.
	waitFor(t, 10*time.Second, "Shutdown to close the listener", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	close(release)
	results := make(chan error, clients)
	for i, c := range conns {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, err := io.ReadAll(c)
			if want := reply(fmt.Appendf(nil, "req%05d", i)); err != nil || !bytes.Equal(got, want) {
				results <- fmt.Errorf("client %d: %d bytes, %v; want the %d-byte reply then EOF", i, len(got), err, len(want))
				return
			}
			results <- nil
		}()
	}
	for range clients {
		if err := recvTimeout(t, results, 60*time.Second, "replies"); err != nil {
			t.Error(err)
		}
	}
	if err := recvTimeout(t, shut, 30*time.Second, "Shutdown"); err != nil {
		t.Fatalf("Shutdown = %v; want nil", err)
	}
}

// TestFaultPanickingHandler: a handler that panics on one connection costs
// that connection only; the panic is logged once, with its stack.
func TestFaultPanickingHandler(t *testing.T) {
	checkNoFDLeak(t)
	logs := captureLogs(t)
	resetLimiter(panicLog)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		if b, err := c.Reader().Peek(1); err == nil && b[0] == 'P' {
			panic("fault suite: handler panic")
		}
		return echoHandler(ctx, c)
	})
	good := make([]net.Conn, 8)
	for i := range good {
		good[i] = dialStd(t, ln)
	}
	stop := make(chan struct{})
	errs := make(chan error, len(good))
	for i, c := range good {
		go func() {
			for r := 0; ; r++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				if err := echoOnce(c, fmt.Appendf(nil, "good %d round %d", i, r), 10*time.Second); err != nil {
					errs <- fmt.Errorf("good client %d round %d: %w", i, r, err)
					return
				}
			}
		}()
	}
	bad := dialStd(t, ln)
	_, _ = bad.Write([]byte("PANIC"))
	if _, err := readUntilClosed(bad, 10*time.Second); err != nil {
		t.Fatalf("panicking connection not closed: %v", err)
	}
	close(stop)
	for range good {
		if err := recvTimeout(t, errs, 20*time.Second, "good clients"); err != nil {
			t.Error(err)
		}
	}
	all := logs.lines("")
	panics := logs.lines("panic in OnRequest")
	t.Logf("log lines: %d total, %d about the panic", len(all), len(panics))
	if len(panics) != 1 || len(all) != 1 {
		t.Fatalf("log has %d lines, %d about the panic; want exactly the panic line:\n%s", len(all), len(panics), strings.Join(all, ""))
	}
	for _, want := range []string{"fault suite: handler panic", "stack=", "goroutine ", "faults_test.go"} {
		if !strings.Contains(panics[0], want) {
			t.Errorf("panic line lacks %q: %s", want, panics[0])
		}
	}
}

// TestFaultMaxConnections: past WithMaxConnections, new connections are
// closed at once and counted, the log has about one line a second, and a
// freed slot is usable again.
func TestFaultMaxConnections(t *testing.T) {
	checkNoFDLeak(t)
	logs := captureLogs(t)
	resetLimiter(rejectLog)
	const limit, extra = 16, 300
	ln := newLocalListener(t, "tcp")
	loop := startServer(t, ln, echoHandler, WithMaxConnections(limit))
	s := loop.(*server)
	held := make([]net.Conn, limit)
	for i := range held {
		held[i] = dialStd(t, ln)
		if err := echoOnce(held[i], []byte("held"), 5*time.Second); err != nil {
			t.Fatalf("connection %d within the limit: %v", i, err)
		}
	}
	start := time.Now()
	var latencies []time.Duration
	for i := range extra {
		c := dialStd(t, ln)
		t0 := time.Now()
		at, err := readUntilClosed(c, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d past the limit not closed: %v", i, err)
		}
		latencies = append(latencies, at.Sub(t0))
		_ = c.Close()
	}
	elapsed := time.Since(start)
	waitFor(t, 5*time.Second, "rejections counted", func() bool { return s.rejected.Load() == extra })
	lines := logs.lines("connection limit reached")
	t.Logf("%d refused in %v, counted %d, %d log lines; close latency %s",
		extra, elapsed.Round(time.Millisecond), s.rejected.Load(), len(lines), latencySummary(latencies))
	if len(lines) < 1 || len(lines) > 2+int(elapsed/time.Second) {
		t.Errorf("%d log lines in %v; want 1 to about one a second:\n%s", len(lines), elapsed, strings.Join(lines, ""))
	}
	for _, c := range held {
		if err := echoOnce(c, []byte("still"), 5*time.Second); err != nil {
			t.Fatalf("connection within the limit after the refusals: %v", err)
		}
	}
	_ = held[0].Close()
	waitFor(t, 10*time.Second, "a freed slot to be reused", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		return echoOnce(c, []byte("again"), 2*time.Second) == nil
	})
}

// faultHelperEnv selects a helper mode when the test binary runs itself.
const faultHelperEnv = "NETPOLL_FAULT_HELPER"

// TestFaultHelperProcess is not a test: run by TestFaultOutOfFDs in a child
// process, it lowers RLIMIT_NOFILE, serves echo, prints its address, and
// shuts down when its stdin closes.
func TestFaultHelperProcess(t *testing.T) {
	if os.Getenv(faultHelperEnv) != "rlimit" {
		t.Skip("helper process for TestFaultOutOfFDs")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 512
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	SetLoggerOutput(os.Stderr)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	fmt.Printf("addr %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// cpuTicks returns the user plus system CPU time of process pid, in clock
// ticks, from /proc/<pid>/stat.
func cpuTicks(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("read stat: %v", err)
	}
	// The command name may hold spaces; the fields after it do not.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// TestFaultOutOfFDs: a server limited to 512 fds meets 1,000 clients. It
// must not crash or spin while it cannot accept, and must serve again once
// the clients leave.
func TestFaultOutOfFDs(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	const clients = 1000
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), faultHelperEnv+"=rlimit")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr logCapture
	cmd.Stderr = lockedWriter{&stderr.mu, &stderr.buf}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	childOut := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "addr "); ok {
				childOut <- addr
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("helper exited with %v; stderr:\n%s", err, strings.Join(stderr.lines(""), ""))
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("helper did not exit after its stdin closed")
		}
	})
	addr := recvTimeout(t, childOut, 30*time.Second, "the helper's address")
	pid := cmd.Process.Pid

	conns := make(chan net.Conn, clients)
	var wg sync.WaitGroup
	var dialErrs atomic.Int64
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < clients; i += 20 {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				conns <- c
			}
		})
	}
	wg.Wait()
	close(conns)
	var held []net.Conn
	for c := range conns {
		held = append(held, c)
	}
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	waitFor(t, 30*time.Second, "the helper to run out of fds", func() bool {
		return len(stderr.lines("accept paused")) > 0
	})
	const window = 3 * time.Second
	ticks0, t0 := cpuTicks(t, pid), time.Now()
	deadline := t0.Add(window)
	for time.Now().Before(deadline) {
		// Keep the helper's process alive and observable while the window runs.
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			t.Fatalf("helper died while out of fds: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cpu := time.Duration(cpuTicks(t, pid)-ticks0) * clockTick
	share := float64(cpu) / float64(time.Since(t0))
	paused := len(stderr.lines("accept paused"))
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	t.Logf("%d clients connected (%d dials failed), helper holds %d fds; its CPU while out of fds: %v in %v = %.1f%% of a core; %d 'accept paused' log lines",
		len(held), dialErrs.Load(), len(fds), cpu, window, 100*share, paused)
	if share > 0.30 {
		t.Errorf("helper used %.1f%% of a core while out of fds; want < 30%%", 100*share)
	}
	for _, c := range held {
		_ = c.Close()
	}
	resumeStart := time.Now()
	waitFor(t, 60*time.Second, "service to resume", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		return echoOnce(c, []byte("back"), 2*time.Second) == nil
	})
	t.Logf("service resumed %v after the clients left; %d 'accept paused' lines in total",
		time.Since(resumeStart).Round(time.Millisecond), len(stderr.lines("accept paused")))
	if n, limit := len(stderr.lines("accept paused")), 2+int(time.Since(t0)/time.Second); n > limit {
		t.Errorf("%d 'accept paused' lines; want about one a second (at most %d)", n, limit)
	}
}
