//go:build unix

package torture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccb70390/netpoll"
)

// Config sets the size and the randomness of a run.
type Config struct {
	// Conns is the number of client connections open at once; each
	// worker opens one after another until Duration passes. Both ends live
	// in this process, so a run holds about 2×Conns fds.
	Conns int
	// Duration is how long clients keep opening connections.
	Duration time.Duration
	// Seed drives every random choice of the clients and the handlers.
	// The interleaving still depends on the scheduler, so a seed narrows a
	// failure down rather than replaying it.
	Seed uint64
	// IdleTimeout is the server's idle timeout; handlers hold their memory
	// for up to twice as long. Zero means 300 ms.
	IdleTimeout time.Duration
	// Network is "tcp" (loopback; the default) or "unix" (a socket in a
	// temporary directory). The kernels treat the two differently where it
	// matters here: a unix peer's close is a hang-up, not a FIN, and the
	// io_uring engine polls unix sockets where it receives from TCP ones.
	Network string
}

// Result is what a run survived and what it saw.
type Result struct {
	Ops Ops
	// Failures are the first foreign bytes seen; Count is all of them.
	Failures []string
	Count    int64
	// CallbackFailures are the first close callbacks that ran while
	// OnRequest was still running; CallbackCount is all of them.
	CallbackFailures []string
	CallbackCount    int64
	// Unclosed counts the connections OnConnect saw whose close callbacks
	// had not run a while after Shutdown returned: a connection leaked.
	Unclosed int64
}

// Failed reports whether the run saw any failure.
func (res Result) Failed() bool { return res.Count > 0 || res.CallbackCount > 0 || res.Unclosed > 0 }

// maxFailures and maxCallbackFailures bound the failures a Result keeps.
const (
	maxFailures         = 20
	maxCallbackFailures = 5
)

// run is the state of one Run.
type run struct {
	cfg   Config
	addr  string
	stats Stats
	stop  chan struct{} // closed when clients must stop and handlers wake up
	tasks sync.WaitGroup

	nextID atomic.Uint32

	mu               sync.Mutex
	failures         []string
	count            int64
	callbackFailures []string
	callbackCount    int64
}

// fail records a foreign byte. Safe for concurrent use.
func (r *run) fail(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	if len(r.failures) < maxFailures {
		r.failures = append(r.failures, err.Error())
	}
}

// failCallback records a close callback run while OnRequest was running.
// They are kept apart from foreign bytes, so that they do not crowd out the
// worse failure. Safe for concurrent use.
func (r *run) failCallback(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.callbackCount++
	if len(r.callbackFailures) < maxCallbackFailures {
		r.callbackFailures = append(r.callbackFailures, err.Error())
	}
}

// pause sleeps for d, or less if the run stops: the sleeps are the
// scenario (a handler at work, a client that does not read), never
// synchronisation.
func (r *run) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.stop:
	}
}

func (r *run) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// Run serves a netpoll EventLoop on a loopback port and drives it with
// cfg.Conns clients for cfg.Duration, then shuts everything down and waits
// for every goroutine it started. It returns an error only if the run
// could not start or stop; what the run saw is in the Result.
func Run(cfg Config) (Result, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 100
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 300 * time.Millisecond
	}
	if cfg.Network == "" {
		cfg.Network = "tcp"
	}
	r := &run{cfg: cfg, stop: make(chan struct{})}
	ln, err := listen(cfg.Network)
	if err != nil {
		return Result{}, err
	}
	defer ln.Close()
	r.addr = ln.Addr().String()
	s := &server{run: r}
	loop, err := netpoll.NewEventLoop(s.onRequest,
		netpoll.WithOnConnect(s.onConnect),
		netpoll.WithIdleCloseTimeout(cfg.IdleTimeout))
	if err != nil {
		return Result{}, err
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()

	var clients sync.WaitGroup
	for worker := range cfg.Conns {
		clients.Go(func() { r.clientWorker(worker) })
	}
	timer := time.NewTimer(cfg.Duration)
	<-timer.C
	close(r.stop)
	clients.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stopErr error
	if err := loop.Shutdown(ctx); err != nil {
		stopErr = fmt.Errorf("torture: Shutdown: %w", err)
	}
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		stopErr = errors.Join(stopErr, errors.New("torture: Serve did not return after Shutdown"))
	}
	r.tasks.Wait()
	// Shutdown closes every connection, but a close callback runs on the
	// runner once the last holder lets go, so give them a moment.
	unclosed := func() int64 { return r.stats.Accepted.Load() - r.stats.CloseCallbacks.Load() }
	for deadline := time.Now().Add(5 * time.Second); unclosed() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	return Result{
		Unclosed: unclosed(),
		Ops:      r.stats.ops(),
		Failures: r.failures, Count: r.count,
		CallbackFailures: r.callbackFailures, CallbackCount: r.callbackCount,
	}, stopErr
}

// String reports a result in a few lines: the operations, then the failures.
func (res Result) String() string {
	var b strings.Builder
	b.WriteString(res.Ops.String())
	writeFailures(&b, "foreign bytes", res.Failures, res.Count)
	writeFailures(&b, "close callbacks during OnRequest", res.CallbackFailures, res.CallbackCount)
	if res.Unclosed > 0 {
		fmt.Fprintf(&b, "\n%d accepted connections never ran their close callbacks", res.Unclosed)
	}
	return b.String()
}

// writeFailures lists the kept failures of one kind and how many more.
func writeFailures(b *strings.Builder, kind string, kept []string, count int64) {
	if count == 0 {
		return
	}
	fmt.Fprintf(b, "\n%d %s:", count, kind)
	for _, f := range kept {
		b.WriteString("\n  " + f)
	}
	if count > int64(len(kept)) {
		fmt.Fprintf(b, "\n  ... and %d more", count-int64(len(kept)))
	}
}

// listen makes the run's listener: loopback TCP on a free port, or a unix
// socket in a fresh temporary directory, which its Close removes.
func listen(network string) (netpoll.Listener, error) {
	switch network {
	case "tcp":
		return netpoll.CreateListener("tcp", "127.0.0.1:0")
	case "unix":
		dir, err := os.MkdirTemp("", "netpoll-torture-")
		if err != nil {
			return nil, err
		}
		ln, err := netpoll.CreateListener("unix", filepath.Join(dir, "s"))
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		return &tempListener{Listener: ln, dir: dir}, nil
	}
	return nil, fmt.Errorf("torture: network %q: want tcp or unix", network)
}

// tempListener removes its socket's directory when it closes.
type tempListener struct {
	netpoll.Listener
	dir string
}

func (l *tempListener) Close() error {
	return errors.Join(l.Listener.Close(), os.RemoveAll(l.dir))
}
