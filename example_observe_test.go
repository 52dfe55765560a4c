package netpoll_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/ccb70390/netpoll"
)

// lineChannel is an io.Writer that hands each log line to a channel, so the
// example prints the line from its own goroutine.
type lineChannel chan string

func (ch lineChannel) Write(p []byte) (int, error) {
	select {
	case ch <- string(p):
	default: // nobody is listening: drop the line
	}
	return len(p), nil
}

// The library logs through log/slog: by default through slog.Default(), or
// through the logger given to SetLogger. Here a server with a limit of one
// connection refuses a second, and logs it. Lines a peer can trigger are
// rate-limited to one per kind per second, so the example dials until one
// comes through.
func ExampleSetLogger() {
	lines := make(lineChannel, 1)
	netpoll.SetLogger(slog.New(slog.NewTextHandler(lines, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "refused_total" || a.Key == "suppressed" {
				return slog.Attr{} // keep the example's output the same at every run
			}
			return a
		},
	})))
	defer netpoll.SetLogger(nil) // back to slog.Default()

	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	loop, _ := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		return c.Reader().Skip(c.Reader().Len())
	}, netpoll.WithMaxConnections(1))
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	defer func() {
		_ = loop.Shutdown(context.Background())
		<-served
	}()

	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	defer first.Close()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if extra, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			_ = extra.Close()
		}
		select {
		case line := <-lines:
			fmt.Print(line)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	fmt.Println("no line logged")
	// Output:
	// level=WARN msg="netpoll: connection limit reached, connection refused" limit=1
}

// WriteMetricsText writes every counter in the Prometheus text format, for
// a /metrics endpoint without a dependency (net/http's HandlerFunc can call
// it with its ResponseWriter). The netpollprom module exports the same
// metrics through the Prometheus client instead.
func ExampleWriteMetricsText() {
	accepted := func() string {
		var text bytes.Buffer
		_ = netpoll.WriteMetricsText(&text)
		sc := bufio.NewScanner(&text)
		for sc.Scan() {
			if value, ok := strings.CutPrefix(sc.Text(), "netpoll_connections_accepted_total "); ok {
				return value
			}
		}
		return ""
	}
	before := accepted()

	addr, stop := startEchoServer()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		panic(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("x"))
	_, _ = c.Read(make([]byte, 1)) // the echo proves the server accepted it
	_ = c.Close()
	stop()

	fmt.Println("accepted before and after one connection differ:", before != accepted())

	var text bytes.Buffer
	_ = netpoll.WriteMetricsText(&text)
	head, _, _ := strings.Cut(text.String(), "\nnetpoll_connections_active ")
	fmt.Println(head)
	// Output:
	// accepted before and after one connection differ: true
	// # HELP netpoll_connections_active Connections open now.
	// # TYPE netpoll_connections_active gauge
}
