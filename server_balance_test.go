package netpoll

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
)

// Under SourceAddrHash every connection from one source IP goes to the same
// poller, and different sources spread over the pollers.
func TestSourceAddrHashSpreadsSources(t *testing.T) {
	loops := pollers.NumLoops()
	if err := SetNumLoops(4); err != nil {
		t.Fatal(err)
	}
	if err := SetLoadBalance(SourceAddrHash); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = SetLoadBalance(RoundRobin) // the default, which the other tests assume
		_ = SetNumLoops(loops)
	}()
	ln := newLocalListener(t, "tcp")
	accepted := make(chan Connection, 64)
	startServer(t, ln, echoHandler, WithOnConnect(func(ctx context.Context, c Connection) context.Context {
		accepted <- c
		return ctx
	}))
	pollerOf := func(source string) poller.Poll {
		t.Helper()
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
		client, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Skipf("cannot dial from %s: %v", source, err)
		}
		t.Cleanup(func() { client.Close() })
		select {
		case c := <-accepted:
			return c.(*connection).operator.Poller()
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
			return nil
		}
	}
	seen := map[poller.Poll]bool{}
	for _, source := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"} {
		first := pollerOf(source)
		for range 3 {
			if again := pollerOf(source); again != first {
				t.Fatalf("connections from %s went to pollers %p and %p; want one", source, first, again)
			}
		}
		seen[first] = true
	}
	if len(seen) < 2 {
		t.Fatalf("8 source addresses all went to one poller of 4")
	}
}
