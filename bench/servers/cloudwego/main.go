// Command cloudwego is the echo server on github.com/cloudwego/netpoll v0.7.2
// in its default configuration (handlers on its goroutine pool). It is the
// reference: servers/ours is this file with only the import path changed.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ccb70390/netpoll/bench/internal/harness"
	"github.com/cloudwego/netpoll"
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
	harness.Listening("cloudwego", ln.Addr().String())
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
