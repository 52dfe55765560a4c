package poller

import (
	"runtime"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/sys"
)

// mayLingerNow, the form the wait uses, reads the clock only while
// lingering is off, and must still keep it off until offUntil.
func TestLingerPolicyNowKeepsLingeringOffUntilItsTime(t *testing.T) {
	var l lingerPolicy
	if !l.mayLingerNow() {
		t.Fatal("a new poller must linger")
	}
	now := monoNow()
	l.expired(now)
	l.parked(now+int64(20*time.Microsecond), 1) // turns lingering off for lingerOffFor
	if l.offUntil == 0 || l.mayLingerNow() {
		t.Fatalf("offUntil = %d, mayLingerNow = true right after lingering was turned off; want it off", l.offUntil)
	}
	l.offUntil = monoNow() - 1 // its time has passed
	if !l.mayLingerNow() {
		t.Fatal("mayLingerNow = false after offUntil passed")
	}
	if l.offUntil != 0 {
		t.Fatalf("offUntil = %d after it passed; want 0, so that the next wait reads no clock", l.offUntil)
	}
}

func TestLingerPolicyTurnsOffWhenTheParkEndsAtOnce(t *testing.T) {
	var l lingerPolicy
	now := int64(time.Second)
	if !l.mayLinger(now) {
		t.Fatal("a new poller must linger")
	}
	// The linger expired; the park that followed ended with events 20 µs
	// later: the events were waiting for the P the linger held.
	l.expired(now)
	now += int64(20 * time.Microsecond)
	l.parked(now, 1)
	if l.mayLinger(now) || l.mayLinger(now+int64(lingerOffFor)-1) {
		t.Fatal("lingering must stay off for lingerOffFor after it held the P from its own events")
	}
	if !l.mayLinger(now + int64(lingerOffFor)) {
		t.Fatal("lingering must be tried again after lingerOffFor")
	}
	if l.suppressed.Load() != 1 {
		t.Fatalf("suppressed = %d, want 1", l.suppressed.Load())
	}
}

func TestLingerPolicyKeepsLingeringOnOrdinaryGaps(t *testing.T) {
	var l lingerPolicy
	now := int64(time.Second)
	// A quiet spell: the linger expired and the next event came 5 ms later.
	l.expired(now)
	now += int64(5 * time.Millisecond)
	l.parked(now, 3)
	// A park that timed out (a ticker deadline) says nothing.
	l.expired(now)
	now += int64(10 * time.Microsecond)
	l.parked(now, 0)
	// A park that did not follow an expired linger says nothing either.
	now += int64(time.Millisecond)
	l.parked(now, 1)
	if !l.mayLinger(now) || l.suppressed.Load() != 0 {
		t.Fatalf("mayLinger = %v, suppressed = %d; want true, 0", l.mayLinger(now), l.suppressed.Load())
	}
}

func TestLingerSlotsLeaveOnePFree(t *testing.T) {
	defer restoreGOMAXPROCS(runtime.GOMAXPROCS(3))
	refreshLingerSlots()
	if got := lingerSlots.Load(); got != 2 {
		t.Fatalf("at GOMAXPROCS=3 lingerSlots = %d, want 2", got)
	}
	base := lingering.Load() // pollers of other tests may be lingering
	if base != 0 {
		t.Skipf("%d pollers linger right now", base)
	}
	for i := range 2 {
		if !takeLingerSlot() {
			t.Fatalf("poller %d of 2 may not linger at GOMAXPROCS=3", i+1)
		}
	}
	if takeLingerSlot() {
		t.Fatal("a third poller lingers at GOMAXPROCS=3: no P would be left")
	}
	releaseLingerSlot()
	if !takeLingerSlot() {
		t.Fatal("a slot given back was not taken again")
	}
	releaseLingerSlot()
	releaseLingerSlot()
	runtime.GOMAXPROCS(1)
	refreshLingerSlots()
	if !takeLingerSlot() {
		t.Fatal("at GOMAXPROCS=1 the one poller may linger")
	}
	releaseLingerSlot()
}

// Yields after lingers in which another goroutine ran, close together,
// turn lingering off, for twice as long each time it happens again right
// after, up to lingerOffMax; a run of lingers that hold nobody up resets that.
func TestLingerPolicyBacksOffWhileLingersHoldGoroutinesUp(t *testing.T) {
	var l lingerPolicy
	now := int64(time.Second)
	held := int64(lingerHeldGap)
	l.yielded(now, held)
	if !l.mayLinger(now) {
		t.Fatal("one hold-up alone turned lingering off")
	}
	want := int64(lingerOffFor)
	for i := range 8 {
		l.yielded(now, held)
		if l.mayLinger(now+want-1) || !l.mayLinger(now+want) {
			t.Fatalf("hold-up %d: lingering must stay off for exactly %v", i+2, time.Duration(want))
		}
		now += want
		want = min(2*want, int64(lingerOffMax))
	}
	if l.suppressed.Load() != 8 {
		t.Fatalf("suppressed = %d, want 8", l.suppressed.Load())
	}
	for range lingerHeldWeight + 1 {
		l.yielded(now, held-1) // nothing ran: the doubling starts over
	}
	l.yielded(now, held)
	if !l.mayLinger(now) {
		t.Fatal("after a run of lingers that held nobody up, one hold-up turned lingering off")
	}
	l.yielded(now, held)
	if l.mayLinger(now) || !l.mayLinger(now+int64(lingerOffFor)) {
		t.Fatal("after a run of lingers that held nobody up, two hold-ups must turn lingering off for lingerOffFor only")
	}
}

// A slow yield now and then (the vCPU was away, or a goroutine ran once)
// must not turn lingering off: parking instead costs every request after
// it. Only one that follows another within lingerHeldWeight lingers does.
func TestLingerPolicyIgnoresSlowYieldsFarApart(t *testing.T) {
	var l lingerPolicy
	now := int64(time.Second)
	held := int64(lingerHeldGap)
	for i := range 100 {
		l.yielded(now, held)
		for range lingerHeldWeight {
			now += int64(100 * time.Microsecond)
			l.yielded(now, held/2)
		}
		if !l.mayLinger(now) || l.suppressed.Load() != 0 {
			t.Fatalf("hold-up %d, %d lingers after the last: lingering turned off", i+1, lingerHeldWeight)
		}
	}
	l.yielded(now, held)
	for range lingerHeldWeight - 1 {
		l.yielded(now, held/2)
	}
	l.yielded(now, held)
	if l.mayLinger(now) || l.suppressed.Load() != 1 {
		t.Fatalf("a hold-up %d lingers after the last left lingering on", lingerHeldWeight)
	}
}

// At GOMAXPROCS=1 a lingering poller holds the only P, so a goroutine
// whose timer fires meanwhile waits for the linger to end. The poller must
// notice that it held one up (it ran in the yield after the linger) and
// stop lingering for a while.
func TestALingerThatHeldATimerUpTurnsLingeringOff(t *testing.T) {
	defer restoreGOMAXPROCS(runtime.GOMAXPROCS(1))
	refreshLingerSlots()
	p := startPoller(t)
	a, b := newSocketPair(t)
	fired := make(chan struct{}, 1)
	register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error {
			var buf [16]byte
			sys.Read(a, buf[:])
			signal(fired, struct{}{})
			return nil
		}
	})
	// Each round: an event, after which the poller lingers, and a timer
	// that fires during that linger and then keeps the P 50 µs (so that
	// the yield after the linger cannot miss it).
	for round := 0; round < 20 && suppressedOf(t, p, a, b, fired) == 0; round++ {
		done := make(chan struct{})
		go func() {
			time.Sleep(200 * time.Microsecond)
			for end := time.Now().Add(50 * time.Microsecond); time.Now().Before(end); {
			}
			close(done)
		}()
		sys.Write(b, []byte{1})
		receive(t, fired, "the event")
		<-done
	}
	if n := suppressedOf(t, p, a, b, fired); n == 0 {
		t.Fatal("lingers held a timer's goroutine up 20 times and lingering was never turned off")
	}
}

// restoreGOMAXPROCS sets GOMAXPROCS back to procs and the linger's view of
// it with it.
func restoreGOMAXPROCS(procs int) {
	runtime.GOMAXPROCS(procs)
	refreshLingerSlots()
}

// suppressedOf reads p's count of lingers turned off, after an event that
// orders the read after the poller's writes.
func suppressedOf(t *testing.T, p *Poller, a, b int, fired chan struct{}) uint64 {
	t.Helper()
	sys.Write(b, []byte{1})
	receive(t, fired, "the event")
	return p.linger.suppressed.Load()
}
