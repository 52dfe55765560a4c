// Command timerlate shows why the RPC clients' open loop is paced by a
// timerfd (internal/measure/pacer.go) and not by Go timers: in a process with
// nothing else to do, a short time.Sleep lasts about a millisecond, because
// the idle runtime waits in epoll_wait with a time-out in whole milliseconds.
// It prints how long -n sleeps of -d lasted, and the same waits on a timerfd
// read through Go's poller:
//
//	cd bench/rpc && GOWORK=off GOMAXPROCS=1 go run ./timerlate
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	d := flag.Duration("d", 100*time.Microsecond, "wait to ask for")
	n := flag.Int("n", 300, "waits of each kind")
	flag.Parse()

	sleeps := make([]time.Duration, 0, *n)
	for range *n {
		t := time.Now()
		time.Sleep(*d)
		sleeps = append(sleeps, time.Since(t))
	}
	report("time.Sleep", *d, sleeps)

	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "timerfd") // non-blocking: read through Go's poller
	defer f.Close()
	waits := make([]time.Duration, 0, *n)
	var buf [8]byte
	for range *n {
		t := time.Now()
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(*d))}
		if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
			log.Fatal(err)
		}
		if _, err := f.Read(buf[:]); err != nil {
			log.Fatal(err)
		}
		waits = append(waits, time.Since(t))
	}
	report("timerfd", *d, waits)
}

// report prints the 10th, 50th and 90th percentiles of ds.
func report(what string, d time.Duration, ds []time.Duration) {
	slices.Sort(ds)
	at := func(p float64) time.Duration { return ds[int(float64(len(ds)-1)*p)] }
	fmt.Printf("%-10s asked %v: p10 %v, p50 %v, p90 %v\n", what, d, at(0.1), at(0.5), at(0.9))
}
