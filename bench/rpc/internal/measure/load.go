package measure

import (
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
// clock before each call, so the run lasts at most Warmup + Duration plus
// one call's time-out.
//
// Closed loop: each caller calls again as soon as its reply is checked.
// Open loop: call slots fall due at fixed intervals from the start (1/Rate
// apart); each free caller takes the next slot. A caller that takes a slot
// already due (every caller was busy when it fell due) counts its latency
// from the due time, so queueing behind a slow server is measured (wrk2's
// correction for coordinated omission). A caller that takes a slot early
// sleeps until it is due and counts from when it woke: the oversleep of the
// Go timer is the generator's, not the server's.
func Run(l Load, call Call) Result {
	var (
		phase   atomic.Int32 // 0 warm-up, 1 window, 2 over
		errs    atomic.Int64
		slot    atomic.Int64 // open loop: the next slot to take
		wg      sync.WaitGroup
		lats    = make([][]time.Duration, l.Callers)
		calls   = make([]int64, l.Callers)
		start   = time.Now()
		end     = start.Add(l.Warmup + l.Duration)
		perSlot time.Duration
	)
	if l.Rate > 0 {
		perSlot = time.Duration(float64(time.Second) / l.Rate)
	}
	for w := range l.Callers {
		wg.Go(func() {
			var seq uint64
			for {
				var from time.Time
				if perSlot > 0 {
					due := start.Add(time.Duration(slot.Add(1)-1) * perSlot)
					if !due.Before(end) {
						return
					}
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
						from = time.Now()
					} else {
						from = due
					}
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
