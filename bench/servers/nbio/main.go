// Command nbio is the echo server on github.com/lesismal/nbio's Engine in its
// default configuration: level-triggered epoll, reads and OnData on the poller
// goroutines (one per CPU the process may use, so one here under taskset).
package main

import (
	"fmt"
	"os"

	"github.com/ccb70390/netpoll/bench/internal/harness"
	"github.com/lesismal/nbio"
)

func main() {
	flags := harness.Parse()
	engine := nbio.NewEngine(nbio.Config{
		Network: "tcp",
		Addrs:   []string{flags.Addr},
	})
	// The data slice is the poller's read buffer; Write copies whatever the
	// socket does not take at once, so passing it straight through is safe.
	engine.OnData(func(c *nbio.Conn, data []byte) {
		if _, err := c.Write(data); err != nil {
			c.Close()
			return
		}
		harness.Echoed(len(data))
	})
	if err := engine.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	harness.Listening("nbio", flags.Addr)
	select {}
}
