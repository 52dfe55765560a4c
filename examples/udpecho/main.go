// Command udpecho is a UDP echo server built on netpoll, in either of the
// two ways a UDP listener can be used:
//
//   - -mode session (default): EventLoop.Serve gives each peer address a
//     Connection, served by the same OnRequest handler a TCP echo server
//     uses. OnRequest sees one datagram at a time, and each Flush sends what
//     was written as one datagram, so every datagram comes back whole to its
//     sender. A peer silent for -idle-timeout loses its session.
//   - -mode packet: the listener as a net.PacketConn, one datagram per
//     ReadFrom, answered with WriteTo.
//
// With -reuseport the listener opens one socket per poller on the same port
// and the kernel spreads peers across them. Try it with
//
//	go run ./examples/udpecho -addr 127.0.0.1:7001 &
//	echo hello | nc -u -q1 127.0.0.1 7001
package main

import (
	"context"
	"errors"
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
	addr := flag.String("addr", "127.0.0.1:7001", "UDP address to listen on")
	mode := flag.String("mode", "session", "session (EventLoop, one Connection per peer) or packet (ReadFrom/WriteTo)")
	reusePort := flag.Bool("reuseport", false, "one socket per poller on the same port (SO_REUSEPORT)")
	pollers := flag.Int("pollers", 0, "number of pollers (0: the library's default)")
	idleTimeout := flag.Duration("idle-timeout", time.Minute, "end sessions silent this long")
	maxDatagram := flag.Int("max-datagram", 0, "largest datagram received whole (0: 65535)")
	batch := flag.Int("batch", 0, "datagrams per receive system call (0: the default, 1: no batching)")
	flag.Parse()

	if *pollers > 0 {
		if err := netpoll.Configure(netpoll.Config{PollerNum: *pollers}); err != nil {
			log.Fatal(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config{mode: *mode, reusePort: *reusePort, idleTimeout: *idleTimeout, maxDatagram: *maxDatagram, batch: *batch}
	ready := make(chan string, 1)
	go func() {
		if a, ok := <-ready; ok {
			log.Printf("udpecho (%s mode) listening on %v", *mode, a)
		}
	}()
	if err := run(ctx, cfg, *addr, ready); err != nil {
		log.Fatal(err)
	}
}

// config is what the flags set.
type config struct {
	mode        string // "session" or "packet"
	reusePort   bool
	idleTimeout time.Duration
	maxDatagram int
	batch       int
}

// run serves UDP echo on addr in cfg.mode until ctx ends. It sends the
// address it listens on to ready (which may be nil).
func run(ctx context.Context, cfg config, addr string, ready chan<- string) error {
	if cfg.mode != "session" && cfg.mode != "packet" {
		return fmt.Errorf("unknown -mode %q", cfg.mode)
	}
	ln, err := netpoll.ListenUDP("udp", addr,
		netpoll.WithSocketReusePort(cfg.reusePort),
		netpoll.WithMaxDatagramSize(cfg.maxDatagram),
		netpoll.WithDatagramBatch(cfg.batch))
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	if cfg.mode == "session" {
		err = serveSessions(ctx, ln, cfg.idleTimeout)
	} else {
		err = servePackets(ctx, ln)
	}
	log.Printf("truncated %d, dropped %d datagrams", ln.Truncated(), ln.Dropped())
	return err
}

// echo is a TCP echo handler, unchanged: on a UDP session the input holds one
// datagram, and Flush sends the reply as one datagram.
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

func serveSessions(ctx context.Context, ln *netpoll.UDPListener, idle time.Duration) error {
	loop, err := netpoll.NewEventLoop(echo, netpoll.WithIdleTimeout(idle))
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	select {
	case err = <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err = loop.Shutdown(shutdownCtx); err != nil {
		return err
	}
	return <-served
}

func servePackets(ctx context.Context, pc *netpoll.UDPListener) error {
	go func() {
		<-ctx.Done()
		_ = pc.Close()
	}()
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		switch {
		case errors.Is(err, netpoll.ErrDatagramTruncated):
			log.Printf("dropping a cut datagram from %v: %v", from, err)
			continue
		case errors.Is(err, net.ErrClosed):
			return nil
		case err != nil:
			return err
		}
		if _, err = pc.WriteToUDPAddrPort(buf[:n], from); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Printf("reply to %v: %v", from, err)
		}
	}
}
