// Command ours is the echo server on github.com/ccb70390/netpoll in its default
// configuration. It is servers/cloudwego with only the import path changed,
// so the two measure the same program.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ccb70390/netpoll"
	"github.com/ccb70390/netpoll/bench/internal/harness"
)

func main() {
	flags := harness.Parse()
	ln, err := netpoll.CreateListener("tcp", flags.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	loop, err := netpoll.NewEventLoop(echo)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The listener started the pollers: say which engine they run on, so a
	// run with NETPOLL_ENGINE=io_uring (ours-uring in run.sh) shows in the
	// server's log whether it got io_uring or fell back.
	fmt.Fprintln(os.Stderr, "engine", netpoll.ReadMetrics().Engine)
	harness.Listening("ours", ln.Addr().String())
	if err := loop.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// echo writes back everything buffered. Release comes after Flush because a
// large WriteBinary references the input instead of copying it.
func echo(_ context.Context, conn netpoll.Connection) error {
	r, w := conn.Reader(), conn.Writer()
	msg, err := r.Next(r.Len())
	if err != nil {
		return err
	}
	if _, err := w.WriteBinary(msg); err != nil {
		return err
	}
	err = w.Flush()
	harness.Echoed(len(msg))
	r.Release()
	return err
}
