package poller

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// lingerTickerOf returns the linger timer of p's engine.
func lingerTickerOf(p *Poller) *lingerTicker {
	if p.ring != nil {
		return &p.ring.ticker
	}
	return &p.ticker
}

// tickerArmed reports whether p's linger timer is set to expire.
func tickerArmed(t *testing.T, p *Poller) bool {
	t.Helper()
	var cur unix.ItimerSpec
	if err := unix.TimerfdGettime(lingerTickerOf(p).fd, &cur); err != nil {
		t.Fatalf("timerfd_gettime: %v", err)
	}
	return cur.Value.Nano() != 0 || cur.Interval.Nano() != 0
}

// A poller that saw traffic lingers with its timer ticking; once a whole tick
// passes without events it must stop the timer and park, so that an idle
// poller is woken by nothing. A linger the ticks did not end would block in
// epoll_wait forever with the timer running.
func TestLingerTimerStopsWhenThePollerIdles(t *testing.T) {
	var waits atomic.Int64
	t.Cleanup(SetBeforeWaitHook(func(Poll) { waits.Add(1) })) // runs after the poller stopped
	p := startPoller(t)
	a, b := newSocketPair(t)
	got := make(chan struct{}, 1)
	register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error {
			var buf [16]byte
			if n, _ := sys.Read(a, buf[:]); n > 0 {
				signal(got, struct{}{})
			}
			return nil
		}
	})
	// Traffic over several ticks, so that ticks come while the poller is
	// busy and the linger must go on past them.
	for i := 0; i < 50; i++ {
		if _, err := sys.Write(b, []byte{1}); err != nil {
			t.Fatalf("write: %v", err)
		}
		receive(t, got, "a read")
		time.Sleep(lingerMsec * time.Millisecond / 5)
	}
	waitFor(t, "the linger timer to stop", func() bool { return !tickerArmed(t, p) })
	// Parked now: a tick would end the park and show as another wait.
	before := waits.Load()
	time.Sleep(20 * lingerMsec * time.Millisecond)
	if after := waits.Load(); after != before {
		t.Errorf("an idle poller waited %d more times in %d ms", after-before, 20*lingerMsec)
	}
	if tickerArmed(t, p) {
		t.Error("the linger timer runs while the poller is idle")
	}
	// And traffic after the park is served as before.
	if _, err := sys.Write(b, []byte{1}); err != nil {
		t.Fatalf("write: %v", err)
	}
	receive(t, got, "a read after the park")
}

func TestLingerTickerExpiresOnlyAfterAnIdlePeriod(t *testing.T) {
	tick := tickOnly([]sys.EpollEvent{{Fd: tickIndex}})
	other := tickOnly([]sys.EpollEvent{{Fd: 3}, {Fd: tickIndex}})
	if !tick || other || tickOnly(nil) {
		t.Fatalf("tickOnly: tick %v, tick with an event %v, nothing %v", tick, other, tickOnly(nil))
	}
	var lt lingerTicker
	if !lt.expired(tick) {
		t.Error("a tick with no events since the start did not expire the linger")
	}
	if lt.expired(other) {
		t.Error("a wait with events expired the linger")
	}
	if lt.expired(tick) {
		t.Error("the first tick after events expired the linger")
	}
	if !lt.expired(tick) {
		t.Error("a second tick with no events between did not expire the linger")
	}
	if lt.expired(tickOnly(nil)) || lt.expired(tick) {
		t.Error("an interrupted wait (no events) counted as idle")
	}
}
