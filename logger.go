package netpoll

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
)

// logger is where the library logs when SetLogger or SetLoggerOutput chose a
// logger; nil means slog.Default(), looked up at each line, so a program's
// slog.SetDefault takes effect whenever it runs. Nothing on the hot path
// logs; every line a peer can trigger goes through a logLimiter.
var logger atomic.Pointer[slog.Logger]

// currentLogger returns the logger the next line goes to.
func currentLogger() *slog.Logger {
	if l := logger.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// SetLoggerOutput sends the library's log lines, as text, to w, instead of
// to slog.Default().
//
// Deprecated: use [Configure] with Config.LoggerOutput, or [SetLogger].
func SetLoggerOutput(w io.Writer) {
	logger.Store(slog.New(slog.NewTextHandler(w, nil)))
}

// SetLogger makes the library log through l, for structured logs with levels.
// By default, and again after SetLogger(nil), the library logs through
// slog.Default(), whatever it is at the time of each line.
//
// Lines about one connection are logged with that connection's context (the
// one OnPrepare or OnConnect returned), so a handler that reads trace or
// request attributes from the context can add them. Every line a peer can
// trigger is rate-limited to one per kind per second and reports how many
// it held back in a "suppressed" attribute.
func SetLogger(l *slog.Logger) {
	logger.Store(l)
}

// logLimiter lets at most one line of its kind through per interval and
// counts the lines it held back, which the next line reports as "suppressed".
// Safe for concurrent use.
type logLimiter struct {
	interval   time.Duration
	last       atomic.Int64 // unix nanoseconds of the last line let through
	suppressed atomic.Int64 // lines held back since then
}

func newLogLimiter(interval time.Duration) *logLimiter {
	return &logLimiter{interval: interval}
}

// log writes the line at level unless one went out less than interval ago.
// Lines tied to a connection use logContext instead.
func (l *logLimiter) log(level slog.Level, msg string, args ...any) {
	l.logContext(context.Background(), level, msg, args...)
}

// logContext is log with the context the line belongs to, such as the
// connection's, which the logger's handler receives. A line the logger
// would drop at its level is neither written nor counted, and does not use
// up the interval.
func (l *logLimiter) logContext(ctx context.Context, level slog.Level, msg string, args ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	out := currentLogger()
	if !out.Enabled(ctx, level) {
		return
	}
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(l.interval) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		args = append(args, slog.Int64("suppressed", n))
	}
	out.Log(ctx, level, msg, args...)
}
