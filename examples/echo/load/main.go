// Command load drives an echo server with a bounded closed-loop load: each
// of -conns connections sends a -size message, waits for the whole echo,
// checks every byte, and repeats, for -duration. It prints requests per
// second and exits non-zero on any mismatch or error.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "echo server address")
	conns := flag.Int("conns", 50, "connections")
	size := flag.Int("size", 64, "message size in bytes")
	duration := flag.Duration("duration", 3*time.Second, "how long to run (bounded)")
	flag.Parse()

	var requests, failures atomic.Int64
	var firstErr atomic.Value
	stopAt := time.Now().Add(*duration)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := drive(*addr, i, *size, stopAt, &requests); err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := requests.Load()
	fmt.Printf("load: %d connections, %d-byte messages, %d requests in %.2fs: %.0f requests/s, every byte checked\n",
		*conns, *size, n, elapsed.Seconds(), float64(n)/elapsed.Seconds())
	if f := failures.Load(); f > 0 || n == 0 {
		fmt.Fprintf(os.Stderr, "load: %d connections failed, first error: %v\n", f, firstErr.Load())
		os.Exit(1)
	}
}

// drive runs one connection's loop. Each message carries the connection
// number and a sequence number, so a reply from the wrong request is caught.
func drive(addr string, id, size int, stopAt time.Time, requests *atomic.Int64) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := make([]byte, size)
	got := make([]byte, size)
	for seq := 0; time.Now().Before(stopAt); seq++ {
		for i := range msg {
			msg[i] = byte(id*31 + seq*7 + i)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("connection %d request %d: echo differs", id, seq)
		}
		requests.Add(1)
	}
	return nil
}
