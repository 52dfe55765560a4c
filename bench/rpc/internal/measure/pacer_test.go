package measure

import (
	"testing"
	"time"
)

// The pacer releases one slot per period until the end, in order, and then
// closes its channel, even when nobody takes the slots as they come.
func TestPacerReleasesOneSlotPerPeriodUntilEnd(t *testing.T) {
	const (
		perSlot = 200 * time.Microsecond
		run     = 300 * time.Millisecond
	)
	begin := time.Now()
	end := begin.Add(run)
	p, err := startPacer(perSlot, end)
	if err != nil {
		t.Fatal(err)
	}
	var (
		got  int
		last time.Time
	)
	timeout := time.After(run + 2*time.Second)
	for done := false; !done; {
		select {
		case at, ok := <-p.slots:
			if !ok {
				done = true
				break
			}
			if at.Before(last) || at.Before(begin) || at.After(end) {
				t.Fatalf("slot %d released at %v, after one at %v (run %v to %v)", got, at, last, begin, end)
			}
			last = at
			got++
		case <-timeout:
			t.Fatalf("the pacer did not close its channel %v after the end (%d slots)", 2*time.Second, got)
		}
	}
	// Expiries that pile up while the pacer waits for the CPU are released
	// together, not lost: only the last period or two can be missing.
	want := int(run / perSlot)
	if got < want-2 || got > want {
		t.Errorf("released %d slots in %v at one per %v, want %d (at most 2 fewer)", got, run, perSlot, want)
	}
	if closedAfter := time.Since(end); closedAfter > 50*time.Millisecond {
		t.Errorf("channel closed %v after the end", closedAfter)
	}
}

// Run in open loop makes the number of calls the rate asks for, each
// counted from its slot's release.
func TestRunOpenLoopMakesTheOfferedCalls(t *testing.T) {
	const rate = 2000
	calls := make(chan struct{}, 10*rate)
	r := Run(Load{Callers: 4, Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Rate: rate},
		func(w int, seq uint64) error {
			calls <- struct{}{}
			return nil
		})
	want := int64(rate / 2) // the window's share: 0.5 s at 2,000/s
	if r.Calls < want*9/10 || r.Calls > want*11/10 {
		t.Errorf("window counted %d calls, want about %d", r.Calls, want)
	}
	if total := len(calls); total > rate*6/10+10 {
		t.Errorf("%d calls in all, more than the rate allows in 0.6 s", total)
	}
	if r.Errors != 0 || int64(len(r.Latency)) != r.Calls {
		t.Errorf("errors %d, latencies %d for %d calls", r.Errors, len(r.Latency), r.Calls)
	}
}
