package netpoll

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"
)

// stubLookup makes the dialer resolve host to ips for the rest of the test.
func stubLookup(t *testing.T, host string, ips []net.IP) {
	t.Helper()
	saved := lookupIP
	lookupIP = func(ctx context.Context, network, name string) ([]net.IP, error) {
		if name == host {
			return ips, nil
		}
		return saved(ctx, network, name)
	}
	t.Cleanup(func() { lookupIP = saved })
}

// TestDialTriesEachAddress checks a suspicion of #15: a name that resolves
// to several addresses is dialed at each in turn, as net.Dial does, not
// only at the first. Here, as with "localhost" resolving to ::1 and then
// 127.0.0.1, the server listens on the last address only.
func TestDialTriesEachAddress(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	stubLookup(t, "several.test", []net.IP{net.IPv6loopback, net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 1)})
	address := net.JoinHostPort("several.test", port)
	dials := []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"DialConnection", func() (net.Conn, error) { return DialConnection("tcp", address, 5*time.Second) }},
		{"Dialer.DialTimeout", func() (net.Conn, error) { return NewDialer().DialTimeout("tcp", address, 5*time.Second) }},
		{"no timeout", func() (net.Conn, error) { return DialConnection("tcp", address, 0) }},
	}
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			c, err := d.dial()
			if err != nil {
				t.Fatalf("dial %s (::1, 127.0.0.2, 127.0.0.1; a server on the last) = %v", address, err)
			}
			defer c.Close()
			if got, want := c.RemoteAddr().String(), ln.Addr().String(); got != want {
				t.Errorf("RemoteAddr = %s; want %s", got, want)
			}
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo = %q, %v", buf, err)
			}
		})
	}
}

// TestDialAllAddressesFail: when every address fails, the error is the first
// address's, as net.Dial reports it.
func TestDialAllAddressesFail(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close() // nothing listens on port now
	stubLookup(t, "none.test", []net.IP{net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 1)})
	_, err := DialConnection("tcp", net.JoinHostPort("none.test", port), 5*time.Second)
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Addr == nil || opErr.Addr.String() != net.JoinHostPort("127.0.0.2", port) {
		t.Fatalf("dial with every address refusing = %v; want the first address's error", err)
	}
}
