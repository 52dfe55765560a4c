package bufpool

import (
	"strconv"
	"sync"
	"testing"
)

func TestGetSizes(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		wantCap int
	}{
		{"zero", 0, 0},
		{"negative", -5, 0},
		{"one", 1, 64},
		{"smallest class", 64, 64},
		{"just above", 65, 128},
		{"4KiB", 4096, 4096},
		{"4KiB+1", 4097, 8192},
		{"largest class", MaxSize, MaxSize},
		{"oversize", MaxSize + 1, MaxSize + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Get(tt.size)
			wantLen := max(tt.size, 0)
			if len(b) != wantLen || cap(b) != tt.wantCap {
				t.Fatalf("Get(%d): len %d cap %d; want len %d cap %d", tt.size, len(b), cap(b), wantLen, tt.wantCap)
			}
			Put(b)
		})
	}
}

func TestHeldAccounting(t *testing.T) {
	t.Cleanup(Track())
	start := Held()
	a := Get(100)
	b := Get(5000)
	big := Get(MaxSize + 1)
	if got, want := Held()-start, int64(128+8192); got != want {
		t.Fatalf("Held grew by %d after Get(100), Get(5000), oversize Get; want %d", got, want)
	}
	Put(a)
	Forget(b)
	Put(big)
	Put(make([]byte, 100))  // foreign capacity: ignored
	Put(make([]byte, 0, 7)) // below the smallest class: ignored
	if got := Held() - start; got != 0 {
		t.Fatalf("Held is %d above start after Put/Forget; want 0", got)
	}
}

// TestTrackNests pins that Held counts only while a Track is on, that nested
// Tracks keep it on until the last one stops, and that stopping twice is
// harmless.
func TestTrackNests(t *testing.T) {
	counts := func() bool {
		start := Held()
		b := Get(64)
		grew := Held() != start
		Put(b)
		return grew
	}
	if counts() {
		t.Fatalf("Held counted a Get with no Track on")
	}
	outer := Track()
	inner := Track()
	inner()
	inner()
	if !counts() {
		t.Fatalf("Held did not count with the outer Track still on")
	}
	outer()
	if counts() {
		t.Fatalf("Held counted after every Track stopped")
	}
}

func TestReuseKeepsCapacity(t *testing.T) {
	for range 100 {
		b := Get(300)
		if cap(b) != 512 || len(b) != 300 {
			t.Fatalf("Get(300): len %d cap %d; want 300, 512", len(b), cap(b))
		}
		b[len(b)-1] = 1
		Put(b[:10])
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, size := range []int{64, 4096, 1 << 20} {
		Put(Get(size))
		allocs := testing.AllocsPerRun(1000, func() { Put(Get(size)) })
		if allocs != 0 {
			t.Errorf("Get(%d)/Put: %v allocs per run; want 0", size, allocs)
		}
	}
}

func TestConcurrent(t *testing.T) {
	t.Cleanup(Track())
	start := Held()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				size := 64 << ((g + i) % 8)
				b := Get(size)
				for j := range b {
					b[j] = byte(g)
				}
				for j := range b {
					if b[j] != byte(g) {
						t.Errorf("goroutine %d: byte %d changed under it", g, j)
						return
					}
				}
				Put(b)
			}
		})
	}
	wg.Wait()
	if got := Held() - start; got != 0 {
		t.Fatalf("Held is %d above start after balanced Get/Put; want 0", got)
	}
}

func BenchmarkGetPut(b *testing.B) {
	for _, size := range []int{64, 4096, 65536} {
		b.Run(sizeName(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				Put(Get(size))
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
