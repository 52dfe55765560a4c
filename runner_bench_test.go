package netpoll

import (
	"context"
	"sync"
	"testing"
)

// BenchmarkRunnerBurst measures what handing a burst of small tasks to the
// runner costs per task, as the poller does with the handlers of one batch:
// the shared-queue pool against a goroutine per task. Run it with -cpu 1 to
// see the one-core case the echo benchmarks use.
func BenchmarkRunnerBurst(b *testing.B) {
	const burst = 64
	runners := []struct {
		name string
		run  func(f func())
	}{
		{"pool", func(f func()) { defaultPool.run(context.Background(), f) }},
		{"go", func(f func()) { go f() }},
	}
	for _, r := range runners {
		b.Run(r.name, func(b *testing.B) {
			var wg sync.WaitGroup
			task := wg.Done
			b.ReportAllocs()
			for b.Loop() {
				wg.Add(burst)
				for range burst {
					r.run(task)
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/task")
		})
	}
}
