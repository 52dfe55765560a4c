package netpoll

import (
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
)

// BenchmarkIdleTouch is what activity costs a connection with an idle
// timeout: one atomic store of the coarse clock.
func BenchmarkIdleTouch(b *testing.B) {
	c := &connection{}
	c.init(-1, "tcp", nil)
	c.idleClose.Store(int64(time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		c.touch()
	}
}

// BenchmarkIdleWheelTick turns a poller's wheel over 10,000 connections
// none of which expires, so each tick re-files the slot it empties; it
// reports the cost per connection re-filed.
func BenchmarkIdleWheelTick(b *testing.B) {
	const conns = 10000
	p, err := poller.New() // never waits: the benchmark turns the wheel itself
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	w := wheelOf(p)
	now := time.Now().UnixNano()
	all := make([]*connection, conns)
	for i := range all {
		c := &connection{}
		c.init(-1, "tcp", nil)
		// Timeouts spread over the wheel, so every slot holds some.
		c.idleClose.Store(int64(time.Duration(i%200+2) * idleTick))
		c.lastActive.Store(now)
		all[i] = c
		w.incoming = append(w.incoming, c)
	}
	tickIdleWheel(p, now) // files them all
	filed := 0
	b.ReportAllocs()
	for b.Loop() {
		// The clock stands still at now, so nothing expires.
		filed += len(w.slots[w.cursor])
		tickIdleWheel(p, now)
	}
	if filed > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(filed), "ns/refiled")
	}
}
