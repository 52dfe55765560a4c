//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poller

import (
	"runtime"
	"testing"
	"time"
)

// newManager returns a Manager with n loops, closed by t.Cleanup.
func newManager(t testing.TB, n int) *Manager {
	t.Helper()
	m := NewManager()
	if err := m.SetNumLoops(n); err != nil {
		t.Fatalf("SetNumLoops(%d) = %v", n, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return m
}

func TestManagerLazyStart(t *testing.T) {
	m := NewManager()
	if m.cur.Load() != nil {
		t.Fatal("NewManager started pollers")
	}
	if got, want := m.NumLoops(), max(1, runtime.GOMAXPROCS(0)/20); got != want {
		t.Fatalf("NumLoops() = %d; want default %d", got, want)
	}
	if p := m.Pick(); p == nil {
		t.Fatal("Pick() = nil")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if p := m.Pick(); p == nil {
		t.Fatal("Pick() after Close = nil; want a restarted poller")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
}

func TestManagerRoundRobin(t *testing.T) {
	m := newManager(t, 4)
	counts := map[*Poller]int{}
	for range 40 {
		counts[m.Pick()]++
	}
	if len(counts) != 4 {
		t.Fatalf("40 picks used %d pollers; want 4", len(counts))
	}
	for p, n := range counts {
		if n != 10 {
			t.Fatalf("poller %p picked %d times of 40; want 10", p, n)
		}
	}
}

func TestManagerPolicies(t *testing.T) {
	m := newManager(t, 3)
	if err := m.SetLoadBalance(SourceAddrHash); err != nil {
		t.Fatalf("SetLoadBalance(SourceAddrHash) = %v", err)
	}
	for key := range uint64(10) {
		if a, b := m.PickFor(key), m.PickFor(key); a != b || a != m.cur.Load().all[key%3] {
			t.Fatalf("PickFor(%d) = %p then %p; want poller %d both times", key, a, b, key%3)
		}
	}
	if m.Pick() == nil {
		t.Fatal("Pick() under SourceAddrHash = nil; want a RoundRobin pick")
	}
	if err := m.SetLoadBalance(Random); err != nil {
		t.Fatalf("SetLoadBalance(Random) = %v", err)
	}
	for range 30 {
		if m.Pick() == nil {
			t.Fatal("Pick() under Random = nil")
		}
	}
	if err := m.SetLoadBalance(LoadBalance(9)); err == nil {
		t.Fatal("SetLoadBalance(9) = nil; want an error")
	}
	if err := m.SetNumLoops(0); err == nil {
		t.Fatal("SetNumLoops(0) = nil; want an error")
	}
}

func TestManagerResize(t *testing.T) {
	m := newManager(t, 2)
	first := m.Pick()
	if err := m.SetNumLoops(4); err != nil {
		t.Fatalf("SetNumLoops(4) = %v", err)
	}
	if got := m.NumLoops(); got != 4 || len(m.cur.Load().all) != 4 {
		t.Fatalf("after growing: NumLoops() = %d with %d pollers; want 4, 4", got, len(m.cur.Load().all))
	}
	if err := m.SetNumLoops(1); err != nil {
		t.Fatalf("SetNumLoops(1) = %v", err)
	}
	for range 5 {
		if p := m.Pick(); p != first {
			t.Fatalf("after shrinking to 1: Pick() = %p; want the first poller %p", p, first)
		}
	}
	all := m.cur.Load().all
	if len(all) != 4 {
		t.Fatalf("shrinking stopped pollers: %d left; want 4 still serving", len(all))
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	for i, p := range all {
		p.lifeMu.Lock()
		st := p.state
		p.lifeMu.Unlock()
		if st != stateClosed {
			t.Fatalf("poller %d in state %d after Close; want closed (Wait returned)", i, st)
		}
	}
}

func TestManagerTickers(t *testing.T) {
	m := newManager(t, 2)
	ticked := make(chan *Poller, 16)
	m.Pick()
	m.SetTickers(5*time.Millisecond, func(p *Poller, _ int64) { signal(ticked, p) })
	if err := m.SetNumLoops(3); err != nil {
		t.Fatal(err)
	}
	seen := map[*Poller]bool{}
	deadline := time.After(5 * time.Second)
	for len(seen) < 3 {
		select {
		case p := <-ticked:
			seen[p] = true
		case <-deadline:
			t.Fatalf("tickers fired on %d of 3 pollers", len(seen))
		}
	}
	m.SetTickers(0, nil)
}
