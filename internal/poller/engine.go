package poller

import (
	"sync"
	"sync/atomic"
)

// Engine names the kernel interface a poller is built on.
type Engine int32

// The engines. A platform file that has no io_uring (every one but Linux)
// defines openRing to fail, so asking for EngineIOURing there falls back to
// EngineReadiness through the same path as a kernel that refuses it.
const (
	// EngineReadiness is the readiness loop: epoll on Linux, kqueue on BSD
	// and macOS. It is the default.
	EngineReadiness Engine = 0
	// EngineIOURing is the io_uring engine (Linux; see uring_linux.go).
	EngineIOURing Engine = 1
)

// String returns "io_uring", or the readiness interface of this platform
// ("epoll", "kqueue").
func (e Engine) String() string {
	if e == EngineIOURing {
		return "io_uring"
	}
	return readinessName
}

// requested is the engine new pollers are built on. Atomic; written by SetEngine.
var requested atomic.Int32

// SetEngine sets the engine of the pollers started from now on; pollers
// already running keep theirs. Safe for concurrent use.
func SetEngine(e Engine) { requested.Store(int32(e)) }

// RequestedEngine returns the engine set by SetEngine.
func RequestedEngine() Engine { return Engine(requested.Load()) }

// fallback records the first failure to build an io_uring poller.
var fallback struct {
	once   sync.Once
	err    atomic.Pointer[error]
	report atomic.Pointer[func(error)]
}

// OnFallback sets the function told, once per process, that an io_uring
// poller could not be built and the readiness engine serves instead; the
// root package logs it. Set it before the first poller starts.
func OnFallback(report func(error)) { fallback.report.Store(&report) }

// FallbackError returns why io_uring was refused, or nil if it never was.
func FallbackError() error {
	if err := fallback.err.Load(); err != nil {
		return *err
	}
	return nil
}

// noteFallback records err and reports it, the first time only.
func noteFallback(err error) {
	fallback.once.Do(func() {
		fallback.err.Store(&err)
		if report := fallback.report.Load(); report != nil {
			(*report)(err)
		}
	})
}

// openEngine builds the kernel state of the requested engine, falling back
// to the readiness engine when io_uring cannot be set up.
func (p *Poller) openEngine() error {
	if RequestedEngine() == EngineIOURing {
		err := p.openRing()
		if err == nil {
			p.engine = EngineIOURing
			return nil
		}
		noteFallback(err)
	}
	p.engine = EngineReadiness
	return p.open()
}

// Engine returns the engine p runs on.
func (p *Poller) Engine() Engine { return p.engine }
