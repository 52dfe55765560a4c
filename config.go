package netpoll

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/ccb70390/netpoll/internal/poller"
)

// LoadBalance selects how new connections are spread over the pollers.
type LoadBalance int

const (
	// RoundRobin hands connections to the pollers in turn. It is the default.
	RoundRobin LoadBalance = iota
	// Random hands each connection to a poller chosen at random.
	Random
	// SourceAddrHash hands every connection from one source address to the
	// same poller, so one client's connections share a poller's caches.
	SourceAddrHash
)

// Feature holds behaviours that are off by default.
type Feature struct {
	// AlwaysNoCopyRead lets ReadBinary and ReadString return the buffer's own
	// memory instead of a copy when the bytes sit in one node; that node's
	// memory is then never reused, so the result stays valid. It pays off
	// for codecs that read large strings or byte slices.
	AlwaysNoCopyRead bool
}

// Config tunes the library's global behaviour. A zero field keeps the
// default. Apply it with [Configure], before the first connection if it
// changes PollerNum.
type Config struct {
	PollerNum    int                                 // number of pollers; default max(1, GOMAXPROCS/20)
	BufferSize   int                                 // first read size of a new connection; default 8 KiB
	Runner       func(ctx context.Context, f func()) // runs OnConnect/OnRequest; default a pool of reused goroutines (see SetRunner: inline is not cheaper)
	LoggerOutput io.Writer                           // where the library logs, as text; default slog.Default()
	LoadBalance  LoadBalance                         // how connections are spread over pollers
	Engine       Engine                              // EngineEpoll or EngineIOURing for pollers started later; zero keeps NETPOLL_ENGINE's choice, else epoll
	Feature                                          // features that are off by default
}

// defaultBufferSize is the first read size of a connection; reads adapt from it.
const defaultBufferSize = 8 << 10

// pollers is the process-wide set of pollers that every connection and
// listener registers with. They start on first use.
var pollers = poller.NewManager()

// readBufferSize is the first read size of new connections (Config.BufferSize).
var readBufferSize atomic.Int64

func init() { readBufferSize.Store(defaultBufferSize) }

// Configure applies config. Fields left zero keep their current value.
func Configure(config Config) error {
	if config.PollerNum < 0 || config.BufferSize < 0 {
		return errors.New("netpoll: negative PollerNum or BufferSize in Config")
	}
	if config.Engine != 0 {
		// Before SetNumLoops, which may start pollers.
		if err := setEngine(config.Engine); err != nil {
			return err
		}
	}
	if config.PollerNum > 0 {
		if err := SetNumLoops(config.PollerNum); err != nil {
			return err
		}
	}
	if config.BufferSize > 0 {
		readBufferSize.Store(int64(config.BufferSize))
	}
	if config.Runner != nil {
		SetRunner(config.Runner)
	}
	if config.LoggerOutput != nil {
		SetLoggerOutput(config.LoggerOutput)
	}
	if err := SetLoadBalance(config.LoadBalance); err != nil {
		return err
	}
	alwaysNoCopyRead.Store(config.AlwaysNoCopyRead)
	return nil
}

// SetNumLoops sets the number of pollers. Growing starts new pollers at
// once; shrinking stops handing new connections to the extra pollers, which
// keep serving the connections they have. One poller per 20 cores is usually
// enough.
//
// Deprecated: use [Configure] with Config.PollerNum.
func SetNumLoops(numLoops int) error {
	return pollers.SetNumLoops(numLoops)
}

// SetLoadBalance sets how new connections are spread over the pollers.
//
// Deprecated: use [Configure] with Config.LoadBalance.
func SetLoadBalance(lb LoadBalance) error {
	switch lb {
	case RoundRobin, Random, SourceAddrHash:
		return pollers.SetLoadBalance(poller.LoadBalance(lb))
	}
	return errors.New("netpoll: unknown load balance")
}

// Initialize starts the pollers now instead of on first use.
func Initialize() {
	pollers.Pick()
}
