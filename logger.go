package netpoll

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// logger is where the library logs. Nothing on the hot path logs; every line
// a peer can trigger goes through a logLimiter.
var logger atomic.Pointer[slog.Logger]

func init() { SetLoggerOutput(os.Stderr) }

// SetLoggerOutput sends the library's log lines, as text, to w.
//
// Deprecated: use [Configure] with Config.LoggerOutput, or [SetLogger].
func SetLoggerOutput(w io.Writer) {
	logger.Store(slog.New(slog.NewTextHandler(w, nil)))
}

// SetLogger makes the library log through l, for structured logs with levels.
// A nil l restores the default text logger on os.Stderr.
func SetLogger(l *slog.Logger) {
	if l == nil {
		SetLoggerOutput(os.Stderr)
		return
	}
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
func (l *logLimiter) log(level slog.Level, msg string, args ...any) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(l.interval) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		args = append(args, slog.Int64("suppressed", n))
	}
	logger.Load().Log(context.Background(), level, msg, args...)
}
