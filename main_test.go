package netpoll

import (
	"fmt"
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain starts the pollers and the runtime's network poller before the
// tests, so their fds count as the baseline of every fd-leak check, and
// after the tests stops the pollers and the idle handler goroutines, so that
// goleak sees only what a test left behind.
func TestMain(m *testing.M) {
	prepareEngineChild() // before the pollers start: see engine_linux_test.go
	Initialize()
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		_ = ln.Close()
	}
	code := m.Run()
	_ = pollers.Close()
	defaultPool.drain()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
