package netpoll

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// jsonLogBuffer is a bytes.Buffer that the poller goroutines may log into while
// the test reads it.
type jsonLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *jsonLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *jsonLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureJSONLogs sends the library's logs, as JSON from Debug up, to a buffer
// until the test ends.
func captureJSONLogs(t testing.TB) *jsonLogBuffer {
	t.Helper()
	out := &jsonLogBuffer{}
	previous := logger.Load()
	SetLogger(slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { logger.Store(previous) })
	return out
}

// resetConn connects to addr with a raw socket and closes it at once with
// SO_LINGER 0, so the kernel sends RST instead of FIN.
func resetConn(t testing.TB, addr *net.TCPAddr) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	defer syscall.Close(fd)
	sa := &syscall.SockaddrInet4{Port: addr.Port, Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Connect(fd, sa); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0}); err != nil {
		t.Fatalf("SO_LINGER: %v", err)
	}
}

// resetLine is the part of a reset log line the test checks.
type resetLine struct {
	Level      string `json:"level"`
	Msg        string `json:"msg"`
	FD         *int   `json:"fd"`
	Peer       string `json:"peer"`
	Error      string `json:"error"`
	Suppressed int64  `json:"suppressed"`
}

// TestPeerResetLogsAreBounded makes 5,000 peers reset their connections and
// checks that the server logs a few lines, not 5,000, each with the fd, the
// peer and the error as fields, and that the lines held back are all
// accounted for in their "suppressed" counts.
func TestPeerResetLogsAreBounded(t *testing.T) {
	const resets, batch = 5000, 500 // batches keep the server's fds well under the limit
	out := captureJSONLogs(t)
	ln := newLocalListener(t, "tcp")
	var accepted, closed atomic.Int64
	startServer(t, ln, echoHandler, WithOnPrepare(func(c Connection) context.Context {
		accepted.Add(1)
		_ = c.AddCloseCallback(func(Connection) error { closed.Add(1); return nil })
		return context.Background()
	}))
	addr := ln.Addr().(*net.TCPAddr)
	// The limiter is global: wait out a line an earlier test made, so this
	// test's first reset is logged.
	intervalPassed := func() bool { return time.Now().UnixNano()-resetLog.last.Load() > int64(resetLog.interval) }
	waitFor(t, 5*time.Second, "the log interval to pass", intervalPassed)
	pendingBefore := resetLog.suppressed.Load()
	start := time.Now()

	var sent int64
	play := func(n int) {
		for n > 0 {
			k := min(batch, n)
			for range k {
				resetConn(t, addr)
			}
			n -= k
			sent += int64(k)
			waitFor(t, 10*time.Second, "the server to accept and close the reset connections", func() bool {
				return accepted.Load() == sent && closed.Load() == sent
			})
		}
	}
	play(resets)
	// One more reset once the limiter's interval has surely passed, so its
	// line reports what was held back.
	waitFor(t, 5*time.Second, "the log interval to pass", intervalPassed)
	play(1)
	elapsed := time.Since(start)

	var lines []resetLine
	var suppressed int64
	scanner := bufio.NewScanner(strings.NewReader(out.String()))
	for scanner.Scan() {
		var l resetLine
		if err := json.Unmarshal(scanner.Bytes(), &l); err != nil {
			t.Fatalf("log line %q is not JSON: %v", scanner.Text(), err)
		}
		if l.Msg != "netpoll: read failed, input closed" {
			continue
		}
		if l.Level != "DEBUG" || l.FD == nil || !strings.HasPrefix(l.Peer, "127.0.0.1:") || !strings.Contains(l.Error, "reset") {
			t.Errorf("reset line %s lacks level DEBUG, fd, peer or error", scanner.Text())
		}
		lines = append(lines, l)
		suppressed += l.Suppressed
	}
	t.Logf("%d resets in %v: %d log lines, suppressed counts summing to %d", resets+1, elapsed, len(lines), suppressed)
	maxLines := int(elapsed/time.Second) + 2
	if len(lines) < 2 || len(lines) > maxLines {
		t.Fatalf("%d resets in %v made %d log lines; want 2 to %d (one a second)", resets+1, elapsed, len(lines), maxLines)
	}
	if last := lines[len(lines)-1]; last.Suppressed == 0 {
		t.Errorf("the last line carries no suppressed count: %+v", last)
	}
	pendingAfter := resetLog.suppressed.Load()
	if got := int64(len(lines)) + suppressed + pendingAfter - pendingBefore; got != resets+1 {
		t.Errorf("lines %d + suppressed %d + still pending %d - pending before %d = %d; want %d, one per reset",
			len(lines), suppressed, pendingAfter, pendingBefore, got, resets+1)
	}
}

// ctxKey marks the context a test passes to the logger.
type ctxKey struct{}

// recordingHandler keeps the records it gets and the value of ctxKey in
// each record's context, as a tracing handler would read a span. It ignores
// the library's own lines ("netpoll: ..."), which connections that earlier
// tests left closing may still make.
type recordingHandler struct {
	mu    sync.Mutex
	lines []string // "msg ctx=value"
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "netpoll: ") {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	v, _ := ctx.Value(ctxKey{}).(string)
	h.lines = append(h.lines, r.Message+" ctx="+v)
	return nil
}

func (h *recordingHandler) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.lines, "\n")
}

// TestLoggerFollowsSlogDefault: with no SetLogger, lines go to whatever
// slog.Default() is when they are logged; SetLogger overrides it, and
// SetLogger(nil) goes back to it.
func TestLoggerFollowsSlogDefault(t *testing.T) {
	previous, previousDefault := logger.Load(), slog.Default()
	t.Cleanup(func() { logger.Store(previous); slog.SetDefault(previousDefault) })

	viaDefault, viaSet := &recordingHandler{}, &recordingHandler{}
	SetLogger(nil)
	slog.SetDefault(slog.New(viaDefault))
	newLogLimiter(0).log(slog.LevelWarn, "to the default")
	SetLogger(slog.New(viaSet))
	newLogLimiter(0).log(slog.LevelWarn, "to the set logger")
	SetLogger(nil)
	newLogLimiter(0).log(slog.LevelWarn, "to the default again")

	if got, want := viaDefault.String(), "to the default ctx=\nto the default again ctx="; got != want {
		t.Errorf("slog.Default() got %q; want %q", got, want)
	}
	if got, want := viaSet.String(), "to the set logger ctx="; got != want {
		t.Errorf("SetLogger's logger got %q; want %q", got, want)
	}
}

// TestLogContextReachesHandler: a line logged with a connection's context
// hands that context to the handler, and the limiter still holds lines back.
func TestLogContextReachesHandler(t *testing.T) {
	previous := logger.Load()
	t.Cleanup(func() { logger.Store(previous) })
	h := &recordingHandler{}
	SetLogger(slog.New(h))

	l := newLogLimiter(time.Hour)
	ctx := context.WithValue(context.Background(), ctxKey{}, "trace-1")
	l.logContext(ctx, slog.LevelWarn, "first")
	l.logContext(ctx, slog.LevelWarn, "held back")
	if got, want := h.String(), "first ctx=trace-1"; got != want {
		t.Errorf("handler got %q; want %q", got, want)
	}
	if n := l.suppressed.Load(); n != 1 {
		t.Errorf("suppressed = %d; want 1", n)
	}
}

// TestLogLevelDisabledIsNotCounted: a line below the logger's level does not
// use up the interval, so the next enabled line still goes out.
func TestLogLevelDisabledIsNotCounted(t *testing.T) {
	previous := logger.Load()
	t.Cleanup(func() { logger.Store(previous) })
	out := &jsonLogBuffer{}
	SetLogger(slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo})))

	l := newLogLimiter(time.Hour)
	l.log(slog.LevelDebug, "dropped by level")
	l.log(slog.LevelWarn, "kept")
	if got := out.String(); strings.Contains(got, "dropped") || !strings.Contains(got, `"msg":"kept"`) || l.suppressed.Load() != 0 {
		t.Errorf("log = %q, suppressed %d; want only the Warn line and nothing suppressed", got, l.suppressed.Load())
	}
}
