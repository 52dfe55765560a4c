package netpoll_test

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/torture"
)

var tortureSeed = flag.Uint64("torture.seed", 0, "seed of TestLifecycleTorture (0: from the clock)")

// TestLifecycleTorture runs the lifecycle torture of issue #15 (see
// internal/torture) for a few seconds: hundreds of connections whose
// handlers hold Next and Peek slices and Malloc buffers across idle
// timeouts, failed Flushes, read timeouts, peer resets and closes from
// other goroutines, every byte checked against its connection's canary.
// It runs over loopback TCP and, shorter, over a unix socket, whose peer's
// close the kernel reports differently (and which the io_uring engine
// polls rather than receives from). examples/torture runs the same for
// minutes.
func TestLifecycleTorture(t *testing.T) {
	for _, run := range []struct {
		network  string
		conns    int
		duration time.Duration
	}{
		{"tcp", 300, 8 * time.Second},
		{"unix", 200, 4 * time.Second},
	} {
		t.Run(run.network, func(t *testing.T) {
			cfg := torture.Config{Network: run.network, Conns: run.conns, Duration: run.duration, Seed: *tortureSeed}
			if testing.Short() {
				cfg.Conns, cfg.Duration = 100, 2*time.Second
			}
			tortureRun(t, cfg)
		})
	}
}

// tortureRun runs one torture and fails t on what it saw, or on an fd the
// run left open.
func tortureRun(t *testing.T, cfg torture.Config) {
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	fdsBefore := openFDs(t)
	res, err := torture.Run(cfg)
	if err != nil {
		t.Errorf("torture run (seed %d): %v", cfg.Seed, err)
	}
	t.Logf("seed %d, %d connections at once for %v: %d operations survived\n%s",
		cfg.Seed, cfg.Conns, cfg.Duration, res.Ops.Total(), res.Ops)
	if res.Failed() {
		t.Errorf("seed %d (rerun with -torture.seed=%d): %d foreign bytes, %d close callbacks during OnRequest, %d connections never closed",
			cfg.Seed, cfg.Seed, res.Count, res.CallbackCount, res.Unclosed)
		for _, f := range append(res.Failures, res.CallbackFailures...) {
			t.Error(f)
		}
	}
	if res.Ops.Get("conns") == 0 || res.Ops.Get("bytes-checked") == 0 {
		t.Errorf("the run did nothing: %s", res.Ops)
	}
	waitFDs(t, fdsBefore)
}

// openFDs counts the process's open fds.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(entries)
}

// waitFDs fails the test if the process still holds more fds than before
// after a grace period for the closes to land.
func waitFDs(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		now := openFDs(t)
		if now <= before {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("fd leak: %d open before the run, %d after", before, now)
			return
		}
		time.Sleep(10 * time.Millisecond) // polling the fd count, bounded above
	}
}
