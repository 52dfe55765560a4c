package poller

import (
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
