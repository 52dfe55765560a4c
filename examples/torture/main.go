//go:build unix

// Command torture runs the lifecycle torture of issue #15 for as long as
// you like: a netpoll server and many package net clients in one process,
// every byte carrying its connection's canary, while handlers hold Next and
// Peek slices and Malloc buffers across idle timeouts, failed Flushes, read
// timeouts, peer resets and closes from other goroutines. It prints the
// operations it survived and exits 1 if any connection or handler ever saw
// a byte that was not its own.
//
//	go run ./examples/torture -duration 5m -conns 400
//	go run -race ./examples/torture -duration 2m -conns 200 -seed 42
//	go run -race ./examples/torture -duration 2m -network unix
//
// The root package's TestLifecycleTorture runs the same for a few seconds.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ccb70390/netpoll/internal/torture"
)

func main() {
	duration := flag.Duration("duration", time.Minute, "how long clients keep connecting")
	conns := flag.Int("conns", 300, "client connections open at once (the process holds about twice as many fds)")
	seed := flag.Uint64("seed", 0, "seed of every random choice (0: from the clock)")
	idle := flag.Duration("idle", 300*time.Millisecond, "the server's idle timeout; handlers hold memory up to twice as long")
	report := flag.Duration("report", 10*time.Second, "print progress this often (0: never)")
	network := flag.String("network", "tcp", "the clients' transport: tcp (loopback) or unix")
	flag.Parse()
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	fmt.Printf("torture: seed %d, %d %s connections at once for %v, idle timeout %v\n", *seed, *conns, *network, *duration, *idle)

	// Runs of report's length, so a long run shows progress and stops at
	// the first run that saw a failure.
	slice := *duration
	if *report > 0 && *report < slice {
		slice = *report
	}
	var total torture.Ops
	start := time.Now()
	for run := uint64(0); time.Since(start) < *duration; run++ {
		d := min(slice, *duration-time.Since(start))
		res, err := torture.Run(torture.Config{Conns: *conns, Duration: d, Seed: *seed + run, IdleTimeout: *idle, Network: *network})
		total = total.Add(res.Ops)
		if err != nil {
			fmt.Fprintf(os.Stderr, "torture: %v\n", err)
			os.Exit(2)
		}
		if res.Failed() {
			fmt.Printf("torture: FAILED after %v (seed %d, run seed %d)\n%s\n", time.Since(start).Round(time.Second), *seed, *seed+run, res)
			fmt.Printf("survived %d operations before the failure\n", total.Total())
			os.Exit(1)
		}
		if *report > 0 {
			fmt.Printf("%v: %d operations, %d conns, %d bytes checked, no foreign byte\n",
				time.Since(start).Round(time.Second), total.Total(), total.Get("conns"), total.Get("bytes-checked"))
		}
	}
	fmt.Printf("torture: passed: %d operations survived in %v\n%s\n", total.Total(), time.Since(start).Round(time.Second), total)
}
