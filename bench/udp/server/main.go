// Command server is the UDP echo server of bench/udp/run.sh, in one of three
// implementations: netpoll sessions (EventLoop.Serve, the TCP echo handler),
// netpoll packets (ReadFrom/WriteTo on the UDPListener), or package net (one
// goroutine looping on ReadFromUDPAddrPort/WriteToUDPAddrPort, the usual Go
// UDP server). It prints its pid and serves until SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "UDP address to listen on")
	impl := flag.String("impl", "session", "session, packet (netpoll) or std (package net)")
	batch := flag.Int("batch", 0, "netpoll: datagrams per receive system call (1: no batching)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *impl {
	case "std":
		err = serveStd(ctx, *addr)
	case "session", "packet":
		err = serveNetpoll(ctx, *addr, *impl, *batch)
	default:
		err = fmt.Errorf("unknown -impl %q", *impl)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func ready(a net.Addr) { fmt.Printf("listening %v\n", a) }

func serveStd(ctx context.Context, addr string) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); _ = c.Close() }()
	ready(c.LocalAddr())
	buf := make([]byte, 65535)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil
		}
		_, _ = c.WriteToUDPAddrPort(buf[:n], from)
	}
}

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

func serveNetpoll(ctx context.Context, addr, impl string, batch int) error {
	ln, err := netpoll.ListenUDP("udp", addr, netpoll.WithDatagramBatch(batch))
	if err != nil {
		return err
	}
	ready(ln.Addr())
	if impl == "packet" {
		go func() { <-ctx.Done(); _ = ln.Close() }()
		buf := make([]byte, 65535)
		for {
			n, from, err := ln.ReadFromUDPAddrPort(buf)
			if err != nil {
				return nil
			}
			_, _ = ln.WriteToUDPAddrPort(buf[:n], from)
		}
	}
	loop, err := netpoll.NewEventLoop(echo)
	if err != nil {
		return err
	}
	go func() { _ = loop.Serve(ln) }()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return loop.Shutdown(sctx)
}
