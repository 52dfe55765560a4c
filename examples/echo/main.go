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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll"
)

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
	ln, err := netpoll.CreateListener(*network, *addr)
	if err != nil {
		log.Fatal(err)
	}
	loop, err := netpoll.NewEventLoop(echo,
		netpoll.WithReadTimeout(*readTimeout),
		netpoll.WithWriteTimeout(*writeTimeout),
		netpoll.WithIdleTimeout(*idleTimeout),
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("echo: listening on %s %s\n", ln.Addr().Network(), ln.Addr())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = loop.Shutdown(ctx)
	}()
	if err := loop.Serve(ln); err != nil {
		log.Fatal(err)
	}
	fmt.Println("echo: stopped")
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
