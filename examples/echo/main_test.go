package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/examples/internal/extest"
	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines, ignoring the library's pollers and
// idle handler goroutines, which live as long as the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ccb70390/netpoll/internal/poller.(*Poller).loop"),
		goleak.IgnoreTopFunction("github.com/ccb70390/netpoll.(*workerPool).serve"),
	)
}

var testConfig = config{network: "tcp", writeTimeout: 5 * time.Second, idleTimeout: time.Minute}

// startEcho runs the example's run on a free port (or a unix socket when
// cfg.network is "unix") until the test ends.
func startEcho(t *testing.T, cfg config, addr string) string {
	t.Helper()
	return extest.StartServer(t, func(ctx context.Context, _ string, ready chan<- string) error {
		return run(ctx, cfg, addr, ready)
	})
}

// roundTrip sends msg on c and checks that exactly msg comes back.
func roundTrip(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }() // large messages: write while reading
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo of %d bytes: %v", len(msg), err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writing %d bytes: %v", len(msg), err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes differs", len(msg))
	}
}

// TestEchoSizes drives the server with a net.Conn client: messages from one
// byte to 4 MiB come back whole, on one connection, in order.
func TestEchoSizes(t *testing.T) {
	addr := startEcho(t, testConfig, "127.0.0.1:0")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int{1, 64, 4096, 64 << 10, 4 << 20} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		for i := range msg {
			msg[i] += byte(i)
		}
		roundTrip(t, c, msg)
	}
}

// TestEchoManyClients runs 50 clients at once, each checking its own echoes.
func TestEchoManyClients(t *testing.T) {
	addr := startEcho(t, testConfig, "127.0.0.1:0")
	const clients, rounds = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			msg := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
			got := make([]byte, len(msg))
			for range rounds {
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- io.ErrUnexpectedEOF
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestEchoUnixSocket serves on a unix socket, as -network unix does.
func TestEchoUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.sock")
	cfg := testConfig
	cfg.network = "unix"
	addr := startEcho(t, cfg, path)
	c, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("over a unix socket"))
}
