// Command http is an HTTP/1.1 server built on netpoll's zero-copy API.
//
// GET / answers 200 with a short body and POST /echo answers 200 with the
// request body. Connections are kept alive and may pipeline requests; bodies
// come with Content-Length or chunked; malformed requests get 400, bodies
// over 1 MiB get 413, header sections over 8 KiB get 431.
//
// Usage:
//
//	go run ./examples/http -addr 127.0.0.1:8080
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

// idleTimeout closes keep-alive connections that stay silent this long.
const idleTimeout = 2 * time.Minute

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "host:port to listen on")
	impl := flag.String("impl", "netpoll", "server to run: netpoll, or nethttp for the net/http baseline")
	flag.Parse()
	serve := run
	switch *impl {
	case "netpoll":
	case "nethttp":
		serve = runNetHTTP
	default:
		log.Fatalf("http: unknown -impl %q", *impl)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ready := make(chan string, 1)
	go func() {
		if a, ok := <-ready; ok {
			fmt.Printf("http (%s): listening on %s\n", *impl, a)
		}
	}()
	if err := serve(ctx, *addr, ready); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// run serves HTTP on addr until ctx ends, then shuts the event loop down,
// waiting up to shutdownTimeout for busy connections. It sends the address it
// listens on to ready once connections are accepted (ready may be nil).
func run(ctx context.Context, addr string, ready chan<- string) error {
	ln, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: listen: %w", err)
	}
	s := &server{limits: defaultLimits}
	loop, err := netpoll.NewEventLoop(s.onRequest,
		netpoll.WithOnConnect(s.onConnect),
		netpoll.WithIdleCloseTimeout(idleTimeout),
	)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("http: event loop: %w", err)
	}
	return serve(ctx, loop, ln, ready)
}

// serve runs loop on ln until ctx ends or Serve fails.
func serve(ctx context.Context, loop netpoll.EventLoop, ln netpoll.Listener, ready chan<- string) error {
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-served:
		return fmt.Errorf("http: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := loop.Shutdown(sctx)
	if serr := <-served; err == nil && serr != nil {
		err = fmt.Errorf("http: serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("http: shutdown: %w", err)
	}
	return nil
}
