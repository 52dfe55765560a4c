package measure

import (
	"log"
	"sync"
	"sync/atomic"
	"time"
)

// Load describes one bounded run of concurrent callers.
type Load struct {
	Callers   int           // goroutines making calls
	Warmup    time.Duration // calls before the window are made but not counted
	Duration  time.Duration // the measured window
	Rate      float64       // total calls/s in open loop; 0 is closed loop
	ServerPID int           // whose CPU the window charges; <= 0 for none
}

// Call makes one call from caller w, its seq-th; a non-nil error counts as
// one error (a failed call or a reply that did not match).
type Call func(w int, seq uint64) error

// Run drives call under l and returns what the window measured. It stops by
// itself once the warm-up and the window are over: every caller checks the
// clock (or the pacer) before each call, so the run lasts at most Warmup +
// Duration plus one call's time-out.
//
// Closed loop: each caller calls again as soon as its reply is checked.
// Open loop: a pacer (pacer.go) releases a call slot every 1/Rate from the
// start, and each free caller takes the next released slot. A call's latency
// counts from when its slot was released, so a slot that waited because every
// caller was busy counts its wait (queueing behind a slow server is measured:
// wrk2's correction for coordinated omission), while the pacer's own lateness
// is the generator's, not the server's.
func Run(l Load, call Call) Result {
	var (
		phase atomic.Int32 // 0 warm-up, 1 window, 2 over
		errs  atomic.Int64
		wg    sync.WaitGroup
		lats  = make([][]time.Duration, l.Callers)
		calls = make([]int64, l.Callers)
		start = time.Now()
		end   = start.Add(l.Warmup + l.Duration)
		pace  *pacer
	)
	if l.Rate > 0 {
		var err error
		if pace, err = startPacer(time.Duration(float64(time.Second)/l.Rate), end); err != nil {
			log.Fatal(err)
		}
	}
	for w := range l.Callers {
		wg.Go(func() {
			var seq uint64
			for {
				var from time.Time
				if pace != nil {
					released, ok := <-pace.slots
					if !ok || phase.Load() == 2 {
						return
					}
					from = released
				} else {
					from = time.Now()
					if !from.Before(end) {
						return
					}
				}
				seq++
				err := call(w, seq)
				done := time.Now()
				if err != nil {
					errs.Add(1)
				}
				if phase.Load() == 1 && err == nil {
					calls[w]++
					lats[w] = append(lats[w], done.Sub(from))
				}
			}
		})
	}
	time.Sleep(time.Until(start.Add(l.Warmup)))
	r := Result{Start: Take(l.ServerPID)}
	phase.Store(1)
	time.Sleep(time.Until(end))
	phase.Store(2)
	r.End = Take(l.ServerPID)
	wg.Wait()
	r.Errors = errs.Load()
	for w := range l.Callers {
		r.Calls += calls[w]
		r.Latency = append(r.Latency, lats[w]...)
	}
	return r
}
