// Command redis is a RESP2 server built on netpoll's zero-copy API, holding
// an in-memory map.
//
// It answers PING, ECHO, SET, GET, DEL, EXISTS, INCR, MGET and MSET, sent as
// RESP arrays or as inline commands, pipelined or not; unknown commands and
// wrong arities get error replies, and a malformed frame gets a protocol
// error and a closed connection, as Redis does.
//
// Usage:
//
//	go run ./examples/redis -addr 127.0.0.1:6380
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
	addr := flag.String("addr", "127.0.0.1:6380", "host:port to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ready := make(chan string, 1)
	go func() {
		if a, ok := <-ready; ok {
			fmt.Printf("redis: listening on %s\n", a)
		}
	}()
	if err := run(ctx, *addr, ready); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// run serves RESP on addr until ctx ends, then shuts the event loop down,
// waiting up to shutdownTimeout for busy connections. It sends the address it
// listens on to ready once connections are accepted (ready may be nil).
func run(ctx context.Context, addr string, ready chan<- string) error {
	ln, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		return fmt.Errorf("redis: listen: %w", err)
	}
	s := newServer()
	loop, err := netpoll.NewEventLoop(s.onRequest, netpoll.WithOnConnect(s.onConnect))
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("redis: event loop: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-served:
		return fmt.Errorf("redis: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = loop.Shutdown(sctx)
	if serr := <-served; err == nil && serr != nil {
		err = fmt.Errorf("redis: serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("redis: shutdown: %w", err)
	}
	return nil
}
