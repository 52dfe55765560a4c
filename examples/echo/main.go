// Command echo is an echo server built on netpoll: every byte a client sends
// comes back. It is the smallest complete program of the library, and the
// server that the README's demo drives with examples/echo/load.
//
//	go run ./examples/echo -addr 127.0.0.1:7000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll"
)

// config is what the flags set.
type config struct {
	network      string
	readTimeout  time.Duration
	writeTimeout time.Duration
	idleTimeout  time.Duration
}

// shutdownTimeout bounds how long a signal waits for busy connections.
const shutdownTimeout = 5 * time.Second

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "address to listen on (host:port, or a unix socket path with -network unix)")
	network := flag.String("network", "tcp", "tcp, tcp4, tcp6 or unix")
	pollers := flag.Int("pollers", 0, "number of pollers (0: the library's default)")
	readTimeout := flag.Duration("read-timeout", 0, "read timeout per blocking read (0: none)")
	writeTimeout := flag.Duration("write-timeout", 5*time.Second, "write timeout per flush")
	idleTimeout := flag.Duration("idle-timeout", time.Minute, "close connections idle this long (0: never)")
	flag.Parse()

	if *pollers > 0 {
		if err := netpoll.Configure(netpoll.Config{PollerNum: *pollers}); err != nil {
			log.Fatal(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ready := make(chan string, 1)
	go func() {
		if a, ok := <-ready; ok {
			fmt.Printf("echo: listening on %s %s\n", *network, a)
		}
	}()
	cfg := config{network: *network, readTimeout: *readTimeout, writeTimeout: *writeTimeout, idleTimeout: *idleTimeout}
	if err := run(ctx, cfg, *addr, ready); err != nil {
		log.Fatal(err)
	}
	fmt.Println("echo: stopped")
}

// run serves the echo handler on addr until ctx ends, then shuts the event
// loop down. It sends the address it listens on to ready (which may be nil).
func run(ctx context.Context, cfg config, addr string, ready chan<- string) error {
	ln, err := netpoll.CreateListener(cfg.network, addr)
	if err != nil {
		return err
	}
	loop, err := netpoll.NewEventLoop(echo,
		netpoll.WithReadTimeout(cfg.readTimeout),
		netpoll.WithWriteTimeout(cfg.writeTimeout),
		netpoll.WithIdleCloseTimeout(cfg.idleTimeout),
	)
	if err != nil {
		_ = ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = loop.Shutdown(sctx)
	if serr := <-served; err == nil {
		err = serr
	}
	return err
}

// echo writes back everything buffered. It flushes before it releases the
// input, because WriteBinary may reference the input's memory until Flush.
func echo(_ context.Context, c netpoll.Connection) error {
	r, w := c.Reader(), c.Writer()
	b, err := r.Next(r.Len())
	if err != nil {
		return err
	}
	if _, err = w.WriteBinary(b); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	return r.Release()
}
