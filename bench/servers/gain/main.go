// Command gain is the echo server on github.com/pawelgaczynski/gain
// (v0.4.0-alpha), an io_uring framework: reads, writes and accepts are
// submitted to a ring and completed in batches, with no epoll at all. It
// runs the socket-sharding architecture with one worker, so that one
// goroutine owns one ring, the listening socket and every connection, as the
// other servers have one event loop under GOMAXPROCS=1; handlers run on that
// worker (no async handler).
//
// gain reaches syscall.anyToSockaddr through go:linkname, which Go 1.23 and
// later refuse to link by default; run.sh builds it with
// -ldflags=-checklinkname=0 (see bench/README.md).
package main

import (
	"fmt"
	"os"

	"github.com/pawelgaczynski/gain"
	"github.com/rs/zerolog"

	"github.com/ccb70390/netpoll/bench/internal/harness"
)

type echoServer struct {
	gain.DefaultEventHandler
	addr string
}

// OnStart prints the listening line once the worker accepts.
func (s *echoServer) OnStart(gain.Server) {
	harness.Listening("gain", s.addr)
}

// OnRead writes back the n bytes just read; Write copies them into the
// connection's outbound buffer, which gain sends after the handler returns.
func (s *echoServer) OnRead(c gain.Conn, n int) {
	msg, err := c.Next(n)
	if err != nil {
		_ = c.Close()
		return
	}
	if _, err := c.Write(msg); err != nil {
		_ = c.Close()
		return
	}
	harness.Echoed(len(msg))
}

func main() {
	flags := harness.Parse()
	s := &echoServer{addr: flags.Addr}
	err := gain.ListenAndServe("tcp://"+flags.Addr, s,
		gain.WithArchitecture(gain.SocketSharding),
		gain.WithWorkers(1),
		// gain logs every ECONNRESET at error level, one line for each of the
		// load generator's connections as it closes them; the other servers
		// are silent there too.
		gain.WithLoggerLevel(zerolog.Disabled))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
