package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/examples/internal/extest"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOptions...)
}

// clientTimeout bounds every client program and every socket wait.
const clientTimeout = 30 * time.Second

// startProxy runs the proxy in-process in front of upstream.
func startProxy(tb testing.TB, upstream string) string {
	tb.Helper()
	return extest.StartServer(tb, func(ctx context.Context, addr string, ready chan<- string) error {
		return run(ctx, addr, upstream, ready)
	})
}

// startHTTPExample builds examples/http and runs it on a free port, as a
// user would, and returns its address. Cleanup sends SIGINT and wants a clean
// exit within the shutdown timeout.
func startHTTPExample(tb testing.TB) string {
	tb.Helper()
	goTool := extest.Client(tb, "go")
	bin := filepath.Join(tb.TempDir(), "http-example")
	extest.Command(tb, 2*time.Minute, nil, goTool, "build", "-o", bin, "../http")
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				tb.Errorf("http example exited with %v after SIGINT; want 0", err)
			}
		case <-time.After(clientTimeout):
			_ = cmd.Process.Kill()
			tb.Errorf("http example still running %v after SIGINT", clientTimeout)
		}
	})
	select {
	case line := <-lines:
		m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(line)
		if m == nil {
			tb.Fatalf("http example printed %q; want its address", line)
		}
		return m[1]
	case <-time.After(clientTimeout):
		tb.Fatalf("http example printed nothing in %v", clientTimeout)
	}
	return ""
}

// TestThroughProxy drives the HTTP example with curl and wrk, directly and
// through the proxy, and wants the same answers both ways.
func TestThroughProxy(t *testing.T) {
	curl := extest.Client(t, "curl")
	upstream := startHTTPExample(t)
	proxied := startProxy(t, upstream)
	body := filepath.Join(t.TempDir(), "body")
	payload := bytes.Repeat([]byte("proxied bytes\n"), 60_000)
	if err := os.WriteFile(body, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"get", []string{"/"}},
		{"echo", []string{"/echo", "--data-binary", "@" + body}},
		{"echo chunked", []string{"/echo", "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + body}},
		{"too large", []string{"/echo", "--data-binary", "@" + body, "--data-binary", "@" + body}},
		{"two on one connection", []string{"/", "http://" + proxied + "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := func(addr string) string {
				args := append([]string{"-s", "-S", "-w", " %{http_code}", "http://" + addr + tt.args[0]}, tt.args[1:]...)
				return extest.Command(t, clientTimeout, nil, curl, args...)
			}
			direct, viaProxy := answer(upstream), answer(proxied)
			if direct != viaProxy {
				t.Errorf("through the proxy: %d bytes %.60q; direct: %d bytes %.60q", len(viaProxy), viaProxy, len(direct), direct)
			}
		})
	}
	t.Run("wrk", func(t *testing.T) {
		wrk := extest.Client(t, "wrk")
		out := extest.Command(t, clientTimeout, nil, wrk, "-t", "1", "-c", "16", "-d", "2s", "http://"+proxied+"/")
		m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(out)
		if m == nil || m[1] == "0" || strings.Contains(out, "Socket errors") || strings.Contains(out, "Non-2xx") {
			t.Errorf("wrk through the proxy:\n%s", out)
		}
	})
}

// listenUpstream starts a plain net.Listener on loopback whose connections
// are served by handle, one goroutine each; Cleanup closes it and waits.
func listenUpstream(tb testing.TB, handle func(c *net.TCPConn) error) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(clientTimeout))
				if err := handle(c.(*net.TCPConn)); err != nil {
					errs <- err
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		close(errs)
		for err := range errs {
			tb.Errorf("upstream: %v", err)
		}
	})
	return ln.Addr().String()
}

// dial connects to addr with a deadline on every later call.
func dial(tb testing.TB, addr string) *net.TCPConn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, clientTimeout)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(clientTimeout))
	return c.(*net.TCPConn)
}

// TestHalfClose checks that each side's end of stream reaches the other side
// while the other direction stays open: the client sends and shuts its write
// side; the upstream reads to end of stream, then answers and closes.
func TestHalfClose(t *testing.T) {
	upstream := listenUpstream(t, func(c *net.TCPConn) error {
		got, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		if _, err := c.Write(bytes.ToUpper(got)); err != nil {
			return err
		}
		return c.CloseWrite()
	})
	c := dial(t, startProxy(t, upstream))
	if _, err := c.Write([]byte("half closed")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "HALF CLOSED" {
		t.Errorf("read %q, %v through the proxy; want \"HALF CLOSED\", <nil>", got, err)
	}
}

// TestLargeStream sends 16 MiB through the proxy to an echo upstream while
// reading the echo back, and wants every byte back in order.
func TestLargeStream(t *testing.T) {
	upstream := listenUpstream(t, func(c *net.TCPConn) error {
		if _, err := io.Copy(c, c); err != nil {
			return err
		}
		return c.CloseWrite()
	})
	c := dial(t, startProxy(t, upstream))
	payload := make([]byte, 16<<20)
	for i := range payload {
		payload[i] = byte(i * 7 / 5)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.CloseWrite()
		}
		wrote <- err
	}()
	got, err := io.ReadAll(c)
	if werr := <-wrote; werr != nil {
		t.Fatalf("write: %v", werr)
	}
	if err != nil || !bytes.Equal(got, payload) {
		t.Errorf("read back %d bytes, %v; want the %d bytes sent", len(got), err, len(payload))
	}
}

// TestUpstreamDown checks that a client is disconnected when the upstream
// cannot be reached.
func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	c := dial(t, startProxy(t, closed))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || err == nil {
		t.Errorf("Read = %v; want end of stream or reset", err)
	}
}
