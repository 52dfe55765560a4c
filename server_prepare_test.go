package netpoll

import (
	"context"
	"net"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestOnPreparePanicClosesOffThePoller checks a suspicion of #15: OnPrepare
// runs on the poller goroutine, so a panic there must not run the close,
// and the close callbacks (user code that may block), on it too. The panic
// costs that connection (or UDP session) only.
func TestOnPreparePanicClosesOffThePoller(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			checkNoFDLeak(t)
			logs := captureLogs(t)
			resetLimiter(panicLog)
			type closeInfo struct {
				onPoller bool
				stack    string
			}
			closes := make(chan closeInfo, 1)
			var prepared atomic.Int32
			onPrepare := WithOnPrepare(func(c Connection) context.Context {
				if prepared.Add(1) > 1 {
					return nil
				}
				_ = c.AddCloseCallback(func(Connection) error {
					stack := string(debug.Stack())
					closes <- closeInfo{strings.Contains(stack, "internal/poller.(*Poller)"), stack}
					return nil
				})
				panic("OnPrepare panic")
			})
			panics := ReadMetrics().Panics
			var next func() error
			if network == "tcp" {
				ln := newLocalListener(t, "tcp")
				startServer(t, ln, echoHandler, onPrepare)
				if _, err := readUntilClosed(dialStd(t, ln), 10*time.Second); err != nil {
					t.Fatalf("the connection whose OnPrepare panicked was not closed: %v", err)
				}
				next = func() error { return echoOnce(dialStd(t, ln), []byte("next connection"), 5*time.Second) }
			} else {
				l := newUDPListener(t)
				startServer(t, l, echoHandler, onPrepare)
				if _, err := dialUDP(t, l).Write([]byte("first")); err != nil {
					t.Fatal(err)
				}
				next = func() error {
					c := dialUDP(t, l)
					var err error
					for range 3 {
						var got []byte
						if got, err = udpRoundTrip(c, []byte("next peer")); err == nil && string(got) != "next peer" {
							err = &net.AddrError{Err: "wrong echo " + string(got)}
						}
						if err == nil {
							break
						}
					}
					return err
				}
			}
			if info := recvTimeout(t, closes, 5*time.Second, "the close callback"); info.onPoller {
				t.Fatalf("the close callbacks after a panic in OnPrepare ran on the poller goroutine:\n%s", info.stack)
			}
			if err := next(); err != nil {
				t.Fatalf("the next peer after the panic: %v", err)
			}
			if got := ReadMetrics().Panics - panics; got != 1 {
				t.Errorf("Panics went up by %d; want 1", got)
			}
			if got := len(logs.lines("panic in OnPrepare")); got != 1 {
				t.Errorf("%d log lines about the OnPrepare panic; want 1", got)
			}
		})
	}
}
