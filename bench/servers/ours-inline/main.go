// Command ours-inline is the echo server on github.com/ccb70390/netpoll with
// the inline runner: OnRequest runs on the poller goroutine itself, so a burst
// of input costs no hand-off to another goroutine. Otherwise it is servers/ours.
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
	// The inline runner: the handler never blocks (echo only), so running it
	// on the poller is safe.
	if err := netpoll.Configure(netpoll.Config{Runner: func(_ context.Context, f func()) { f() }}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
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
	harness.Listening("ours-inline", ln.Addr().String())
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
