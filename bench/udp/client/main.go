// Command client drives a UDP echo server for bench/udp/run.sh: -peers
// connected sockets, each keeping -window datagrams of -size bytes in flight
// (closed loop: every echo sends the next one). After 20 ms of silence the
// window counts as lost (to a full buffer) and is sent again. After -warmup it counts echoes
// for -duration and prints "echoed N in D".
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "", "server address")
	peers := flag.Int("peers", 16, "client sockets (server sessions)")
	window := flag.Int("window", 8, "datagrams in flight per socket")
	size := flag.Int("size", 64, "datagram size in bytes")
	warmup := flag.Duration("warmup", time.Second, "time before counting")
	duration := flag.Duration("duration", 5*time.Second, "time counted")
	flag.Parse()

	ua, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	var counting atomic.Bool
	var echoed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range *peers {
		c, err := net.DialUDP("udp", nil, ua)
		if err != nil {
			log.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			msg := make([]byte, *size)
			buf := make([]byte, 65535)
			// inflight is what this socket believes is unanswered. A silence
			// counts the window as lost and sends a new one; late echoes of
			// the old one then send nothing, so a hiccup of the server never
			// leaves more than the window in flight.
			inflight := 0
			fill := func() {
				for ; inflight < *window; inflight++ {
					_, _ = c.Write(msg)
				}
			}
			fill()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				if _, err := c.Read(buf); err != nil {
					inflight = 0
					fill()
					continue
				}
				if counting.Load() {
					echoed.Add(1)
				}
				inflight = max(inflight-1, 0)
				fill()
			}
		})
	}
	time.Sleep(*warmup)
	counting.Store(true)
	start := time.Now()
	time.Sleep(*duration)
	n := echoed.Load()
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	fmt.Printf("echoed %d in %.3f\n", n, elapsed.Seconds())
}
