// Package conformance checks that netpoll connections keep the net.Conn
// contract, with golang.org/x/net/nettest and with focused tests of the
// points frameworks rely on (issue #11). It is its own module so that the
// library's go.mod never requires x/net.
package conformance

import (
	"net"
	"testing"
	"time"

	"github.com/ccb70390/netpoll"
	"golang.org/x/net/nettest"
)

// TestConn runs the nettest suite on pairs whose ends are both netpoll
// connections: one accepted by an EventLoop without OnRequest (so the
// application reads it through net.Conn) and one dialed with DialConnection.
// The suite writes from c1 and reads from c2 in most subtests, so the order
// of the pair matters and both orders are run.
func TestConn(t *testing.T) {
	tests := []struct {
		name        string
		network     string
		serverFirst bool // c1 is the accepted side, c2 the dialed one
	}{
		{name: "tcp/server-client", network: "tcp", serverFirst: true},
		{name: "tcp/client-server", network: "tcp", serverFirst: false},
		{name: "unix/server-client", network: "unix", serverFirst: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.network, nil)
			nettest.TestConn(t, s.makePipe(tt.serverFirst))
		})
	}
}

// makePipe returns a nettest.MakePipe that dials s and pairs the dialed
// connection with the one the EventLoop accepted for it.
func (s *server) makePipe(serverFirst bool) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		client, err := netpoll.DialConnection(s.network, s.addr, time.Second)
		if err != nil {
			return nil, nil, nil, err
		}
		srv, err := s.accept(client.LocalAddr())
		if err != nil {
			client.Close()
			return nil, nil, nil, err
		}
		// Either end may already be closed by the subtest; stop only has to
		// make sure both are.
		stop = func() {
			client.Close()
			srv.Close()
		}
		if serverFirst {
			return srv, client, stop, nil
		}
		return client, srv, stop, nil
	}
}
