package poller

import "runtime"

// A poller hands the handlers of a batch to other goroutines (the root
// package's worker pool) and yields so that they run before its next wait.
// That wait may begin with a linger, a blocking system call that keeps the
// poller's P. At GOMAXPROCS=1 one yield is not always enough: every 61st
// schedule the runtime takes the global run queue, where the yield put the
// poller, before the local one that holds the woken worker, and the poller
// then lingers while the worker it woke waits for the P. The reply it would
// have written waits with it, until sysmon takes the P (20 µs or more), and
// every such take keeps sysmon waking every 20 µs: in the 1-connection echo
// that cost 0.5 extra wake-ups and context switches per request, on a
// second thread. So the poller yields until the handoff has been taken.

// HandoffPending, when set, reports whether a goroutine the pollers woke (a
// worker to run handlers, a goroutine blocked in a read) may not have run
// yet. Set it once, in an init function, before
// any poller runs; it must be cheap (one atomic load) and must not block.
var HandoffPending func() bool

// maxHandoffYields bounds the extra yields: with more than one P the woken
// goroutine may be starting on another one, and the poller must not spin on it.
const maxHandoffYields = 4

// yieldToHandoffs lets the goroutines the last batch woke run before the
// poller waits again.
func (p *Poller) yieldToHandoffs() {
	runtime.Gosched()
	pending := HandoffPending
	if pending == nil {
		return
	}
	for i := 0; i < maxHandoffYields && pending(); i++ {
		runtime.Gosched()
	}
}
