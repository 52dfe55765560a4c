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
	cur := timerSetting(t, lingerTickerOf(p).fd)
	return cur.Value.Nano() != 0 || cur.Interval.Nano() != 0
}

// timerSetting returns what the timerfd fd is set to.
func timerSetting(t *testing.T, fd int) unix.ItimerSpec {
	t.Helper()
	var cur unix.ItimerSpec
	if err := unix.TimerfdGettime(fd, &cur); err != nil {
		t.Fatalf("timerfd_gettime: %v", err)
	}
	return cur
}

// readSignal registers one end of a new socket pair with p, reading
// whatever comes and signalling got for each read that brought bytes; it
// returns the other end to write to.
func readSignal(t *testing.T, p *Poller) (b int, got chan struct{}) {
	t.Helper()
	a, b := newSocketPair(t)
	got = make(chan struct{}, 1)
	register(t, p, a, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error {
			var buf [16]byte
			if n, _ := sys.Read(a, buf[:]); n > 0 {
				signal(got, struct{}{})
			}
			return nil
		}
	})
	return b, got
}

// A poller that saw traffic lingers with its timer ticking; once a whole tick
// passes without events it must stop the timer and park, so that an idle
// poller is woken by nothing. A linger the ticks did not end would block in
// epoll_wait forever with the timer running.
func TestLingerTimerStopsWhenThePollerIdles(t *testing.T) {
	var waits atomic.Int64
	t.Cleanup(SetBeforeWaitHook(func(Poll) { waits.Add(1) })) // runs after the poller stopped
	p := startPoller(t)
	b, got := readSignal(t, p)
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

// timerPeriod returns the interval the timerfd fd ticks at, 0 when stopped.
func timerPeriod(t *testing.T, fd int) time.Duration {
	t.Helper()
	cur := timerSetting(t, fd)
	return time.Duration(cur.Interval.Nano())
}

// While ticks keep finding events, the timer slows down: the events end the
// lingers themselves and a tick costs CPU. A stop (the park) and a new start
// bring it back to the fast period, and a slow tick that finds the poller
// idle still ends the linger.
func TestLingerTickerSlowsDownWhileTheTicksFindEvents(t *testing.T) {
	var lt lingerTicker
	if err := lt.create(); err != nil {
		t.Fatal(err)
	}
	defer sys.Close(lt.fd)
	period := func() time.Duration { return timerPeriod(t, lt.fd) }
	fast, slow := lingerMsec*time.Millisecond, lingerSlowMsec*time.Millisecond
	for round := range 2 {
		if err := lt.start(); err != nil {
			t.Fatal(err)
		}
		if got := period(); got != fast {
			t.Fatalf("round %d: a started timer ticks every %v, want %v", round, got, fast)
		}
		for i := range lingerBusyTicks {
			if got := period(); got != fast {
				t.Fatalf("round %d: after %d busy ticks the timer ticks every %v, want %v", round, i, got, fast)
			}
			if lt.expired(false) || lt.expired(true) {
				t.Fatalf("round %d: a tick after events expired the linger", round)
			}
		}
		if got := period(); got != slow {
			t.Fatalf("round %d: after %d busy ticks in a row the timer ticks every %v, want %v", round, lingerBusyTicks, got, slow)
		}
		if !lt.expired(true) {
			t.Fatalf("round %d: a slow tick with no events since the last did not expire the linger", round)
		}
		if err := lt.stop(); err != nil {
			t.Fatal(err)
		}
		if got := period(); got != 0 {
			t.Fatalf("round %d: a stopped timer ticks every %v", round, got)
		}
	}
	// A tick that comes with events (not alone) is not counted either way.
	if err := lt.start(); err != nil {
		t.Fatal(err)
	}
	for range 2 * lingerBusyTicks {
		lt.expired(false)
	}
	if got := period(); got != fast {
		t.Fatalf("waits with events but no tick alone slowed the timer to %v", got)
	}
	if err := lt.stop(); err != nil {
		t.Fatal(err)
	}
}

// A poller under steady traffic, an event every fifth of a tick, ends up
// ticking at the slow period; when the traffic stops it still parks.
func TestLingerTimerSlowsDownUnderSteadyTraffic(t *testing.T) {
	p := startPoller(t)
	b, got := readSignal(t, p)
	slowed := false
	for end := time.Now().Add(2 * time.Second); !slowed && time.Now().Before(end); {
		if _, err := sys.Write(b, []byte{1}); err != nil {
			t.Fatalf("write: %v", err)
		}
		receive(t, got, "a read")
		slowed = timerPeriod(t, lingerTickerOf(p).fd) == lingerSlowMsec*time.Millisecond
		time.Sleep(lingerMsec * time.Millisecond / 5)
	}
	if !slowed {
		t.Fatalf("2 s of steady traffic and the linger timer never slowed to %d ms", lingerSlowMsec)
	}
	waitFor(t, "the linger timer to stop", func() bool { return !tickerArmed(t, p) })
}
