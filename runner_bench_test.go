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

// BenchmarkRunnerSingle measures one task at a time, the light-load case in
// which each wake-up of a poller finds one request: the caller hands the
// task over and waits for it, so each op is a wake-up of a worker, the
// switch to it and back, as between a poller and the handler of a quiet
// connection. "channel" hands it to one goroutine parked on a channel, the
// least any hand-off to another goroutine costs; "inline" calls it
// directly, as the inline runner does. Run it with -cpu 1.
func BenchmarkRunnerSingle(b *testing.B) {
	tasks := make(chan func())
	defer close(tasks)
	go func() {
		for f := range tasks {
			f()
		}
	}()
	runners := []struct {
		name string
		run  func(f func())
	}{
		{"pool", func(f func()) { defaultPool.run(context.Background(), f) }},
		{"channel", func(f func()) { tasks <- f }},
		{"inline", func(f func()) { f() }},
	}
	for _, r := range runners {
		b.Run(r.name, func(b *testing.B) {
			done := make(chan struct{}, 1)
			task := func() { done <- struct{}{} }
			b.ReportAllocs()
			for b.Loop() {
				r.run(task)
				<-done
			}
		})
	}
}
