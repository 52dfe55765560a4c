package netpoll

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/ccb70390/netpoll/internal/poller"
)

// Engine selects the kernel interface the pollers are built on.
type Engine int

// The engines. Set one with [Configure] (Config.Engine) before the first
// connection, listener or [Initialize], or with the environment variable
// NETPOLL_ENGINE (values "io_uring" and "epoll"), read when the program
// starts, so a service built on the library can try an engine without a
// code change. Config.Engine, when set, wins over the variable.
const (
	// EngineEpoll is the readiness engine: epoll on Linux, kqueue on BSD and
	// macOS. It is the default.
	EngineEpoll Engine = 1
	// EngineIOURing is the io_uring engine, on Linux 6.0 or later. A
	// connection's input arrives by multishot receive into buffers the
	// poller provides, without read system calls; readiness (listeners,
	// connects in progress, full sockets, UDP) is a one-shot poll submitted
	// to the ring and armed again after each event; an idle poller parks on
	// an eventfd the ring signals, without holding a thread. Writes are the
	// epoll engine's. Where the kernel refuses io_uring (older than 6.0,
	// kernel.io_uring_disabled, a seccomp profile) or on another system, the
	// pollers fall back to EngineEpoll: the library logs it once, at warning
	// level, and Metrics.EngineFallback reports it.
	EngineIOURing Engine = 2
)

// String returns "epoll" or "io_uring".
func (e Engine) String() string {
	switch e {
	case EngineEpoll:
		return "epoll"
	case EngineIOURing:
		return "io_uring"
	}
	return fmt.Sprintf("Engine(%d)", int(e))
}

// engineEnv is the environment variable read at start-up.
const engineEnv = "NETPOLL_ENGINE"

func init() {
	poller.OnFallback(func(err error) {
		currentLogger().Warn("netpoll: io_uring engine unavailable, falling back",
			slog.String("engine", poller.EngineReadiness.String()), slog.Any("error", err))
	})
	switch v := os.Getenv(engineEnv); v {
	case "":
	case "io_uring":
		_ = setEngine(EngineIOURing)
	case "epoll":
		_ = setEngine(EngineEpoll)
	default:
		currentLogger().Warn("netpoll: unknown "+engineEnv+", using epoll", slog.String("value", v))
	}
}

// setEngine makes e the engine of the pollers started from now on.
func setEngine(e Engine) error {
	switch e {
	case EngineEpoll:
		poller.SetEngine(poller.EngineReadiness)
	case EngineIOURing:
		poller.SetEngine(poller.EngineIOURing)
	default:
		return fmt.Errorf("netpoll: unknown engine %d", int(e))
	}
	return nil
}

// engineInUse returns the engine of the running pollers ("epoll", "kqueue"
// or "io_uring"), or of the pollers the next start would make, and whether
// an io_uring poller was refused and fell back.
func engineInUse() (name string, fallback bool) {
	return pollers.Engine().String(), poller.FallbackError() != nil
}
