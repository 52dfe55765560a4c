// Command slogzap shows a zap user plugging netpoll's logs into their zap
// logger. netpoll logs through log/slog (netpoll.SetLogger), and zap ships a
// slog.Handler that writes to a zapcore.Core (go.uber.org/zap/exp/zapslog),
// so one line joins them; netpoll's fields (fd, peer, error, suppressed)
// arrive as zap fields.
//
// This directory is its own module, so zap never enters the library's
// go.mod. The server echoes lines, framed with netpoll.Delimited.
//
//	go run . -addr 127.0.0.1:7400   # then: nc 127.0.0.1 7400
//	go run . -demo                  # reset one connection, print the log line, exit
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
)

// resetMessage is the line netpoll logs, at Debug, when a peer resets.
const resetMessage = "netpoll: read failed, input closed"

func main() {
	addr := flag.String("addr", "127.0.0.1:7400", "address to listen on")
	demo := flag.Bool("demo", false, "listen on a free port, reset one connection, wait for its log line, and exit")
	flag.Parse()
	if *demo {
		*addr = "127.0.0.1:0"
	}
	if err := run(*addr, *demo); err != nil {
		fmt.Fprintln(os.Stderr, "slogzap:", err)
		os.Exit(1)
	}
}

func run(addr string, demo bool) error {
	// Debug level, because netpoll logs peer resets at Debug: they are
	// routine, and rate-limited to one line a second in any case.
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	zl, err := cfg.Build()
	if err != nil {
		return err
	}
	defer func() { _ = zl.Sync() }()

	// The hook only serves -demo: it tells main when the reset was logged.
	logged := make(chan struct{}, 1)
	core := zapcore.RegisterHooks(zl.Core(), func(e zapcore.Entry) error {
		if e.Message == resetMessage {
			select {
			case logged <- struct{}{}:
			default:
			}
		}
		return nil
	})
	netpoll.SetLogger(slog.New(zapslog.NewHandler(core, zapslog.WithName("netpoll"))))

	ln, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		return err
	}
	loop, err := netpoll.NewEventLoop(echoLine, netpoll.WithProtocol(netpoll.Delimited('\n', 4096)))
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	zl.Info("listening", zap.Stringer("addr", ln.Addr()))

	if demo {
		if err := resetOnce(ln.Addr().String()); err != nil {
			return err
		}
		select {
		case <-logged:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("no %q line within 5s", resetMessage)
		}
	} else {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		select {
		case <-stop:
		case err := <-served:
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return loop.Shutdown(ctx)
}

// echoLine sends each line back.
func echoLine(ctx context.Context, c netpoll.Connection) error {
	return netpoll.WriteMessage(ctx, c, netpoll.MessageFrom(ctx))
}

// resetOnce connects and closes with SO_LINGER 0, so the server reads a
// reset instead of an end of file.
func resetOnce(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		return err
	}
	return c.Close()
}
