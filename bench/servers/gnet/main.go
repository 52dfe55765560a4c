// Command gnet is the echo server on github.com/panjf2000/gnet/v2 as its own
// echo example configures it: multicore on (one event loop per P, so one here
// under GOMAXPROCS=1), handlers on the event loop.
package main

import (
	"fmt"
	"os"

	"github.com/ccb70390/netpoll/bench/internal/harness"
	"github.com/panjf2000/gnet/v2"
)

type echoServer struct {
	gnet.BuiltinEventEngine
	addr string
}

// OnBoot prints the listening line once the engine is bound.
func (s *echoServer) OnBoot(gnet.Engine) gnet.Action {
	harness.Listening("gnet", s.addr)
	return gnet.None
}

// OnTraffic writes back everything buffered.
func (s *echoServer) OnTraffic(c gnet.Conn) gnet.Action {
	msg, _ := c.Next(-1)
	if _, err := c.Write(msg); err != nil {
		return gnet.Close
	}
	harness.Echoed(len(msg))
	return gnet.None
}

func main() {
	flags := harness.Parse()
	s := &echoServer{addr: flags.Addr}
	if err := gnet.Run(s, "tcp://"+flags.Addr, gnet.WithMulticore(true)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
