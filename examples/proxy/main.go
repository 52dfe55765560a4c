// Command proxy is a TCP proxy built on netpoll's zero-copy API: it accepts
// connections on -addr and connects each to -upstream. The bytes of each side
// are spliced into the other side's output buffer (Slice, then Append), so no
// payload byte is copied in user space, and a half-close on either side is
// passed on to the other.
//
// Usage:
//
//	go run ./examples/proxy -addr 127.0.0.1:8081 -upstream 127.0.0.1:8080
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll"
)

// shutdownTimeout bounds how long a signal waits for busy connections.
const shutdownTimeout = 5 * time.Second

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "host:port to listen on")
	upstream := flag.String("upstream", "127.0.0.1:8080", "host:port to connect each client to")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ready := make(chan string, 1)
	go func() {
		if a, ok := <-ready; ok {
			fmt.Printf("proxy: listening on %s, upstream %s\n", a, *upstream)
		}
	}()
	if err := run(ctx, *addr, *upstream, ready); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// run proxies connections from addr to upstream until ctx ends, then shuts
// the event loop down, waiting up to shutdownTimeout for busy connections. It
// sends the address it listens on to ready once connections are accepted
// (ready may be nil).
func run(ctx context.Context, addr, upstream string, ready chan<- string) error {
	ln, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		return fmt.Errorf("proxy: listen: %w", err)
	}
	p := &proxy{upstream: upstream}
	loop, err := netpoll.NewEventLoop(p.onRequest,
		netpoll.WithOnConnect(p.onConnect),
		netpoll.WithOnDisconnect(p.onDisconnect),
	)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("proxy: event loop: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-served:
		return fmt.Errorf("proxy: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = loop.Shutdown(sctx)
	if serr := <-served; err == nil && serr != nil {
		err = fmt.Errorf("proxy: serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("proxy: shutdown: %w", err)
	}
	return nil
}
