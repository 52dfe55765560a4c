package poller

import (
	"runtime"
	"testing"
	"time"
)

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
	if l.suppressed != 1 {
		t.Fatalf("suppressed = %d, want 1", l.suppressed)
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
	if !l.mayLinger(now) || l.suppressed != 0 {
		t.Fatalf("mayLinger = %v, suppressed = %d; want true, 0", l.mayLinger(now), l.suppressed)
	}
}

func TestLingerSlotsLeaveOnePFree(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	refreshLingerSlots()
	defer refreshLingerSlots() // after GOMAXPROCS is restored (defers run last first)
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
