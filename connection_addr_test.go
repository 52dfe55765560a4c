package netpoll

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// An accepted connection reports its peer as the peer sees itself, keeps
// reporting the same address after Close, and hands out one net.Addr (the
// IPv4 case keeps it packed until the first call).
func TestAcceptedConnectionRemoteAddr(t *testing.T) {
	for _, tt := range []struct{ network, addr string }{
		{"tcp", "127.0.0.1:0"},
		{"tcp", "[::1]:0"},
		{"unix", "sock"},
	} {
		t.Run(tt.network+" "+tt.addr, func(t *testing.T) {
			addr := tt.addr
			if tt.network == "unix" {
				addr = filepath.Join(t.TempDir(), tt.addr)
			}
			ln, err := CreateListener(tt.network, addr)
			if err != nil {
				if tt.addr == "[::1]:0" {
					t.Skip("no IPv6 loopback:", err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ln.Close() })
			accepted := make(chan Connection, 1)
			startServer(t, ln, echoHandler, WithOnConnect(func(ctx context.Context, c Connection) context.Context {
				accepted <- c
				return ctx
			}))
			client, err := net.DialTimeout(tt.network, ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			var c Connection
			select {
			case c = <-accepted:
			case <-time.After(5 * time.Second):
				t.Fatal("no connection accepted")
			}
			want := client.LocalAddr().String()
			if tt.network == "unix" {
				want = "@" // an unnamed client, as package net reports it
			}
			first := c.RemoteAddr()
			if first == nil || first.String() != want || first.Network() != tt.network {
				t.Fatalf("RemoteAddr() = %v (%T); want %s %s", first, first, tt.network, want)
			}
			if again := c.RemoteAddr(); again != first {
				t.Fatalf("second RemoteAddr() = %p; want the same address %p", again, first)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if after := c.RemoteAddr(); after == nil || after.String() != want {
				t.Fatalf("RemoteAddr() after Close = %v; want %s", after, want)
			}
		})
	}
}

// The packed form must round-trip every byte of the address and the port.
func TestPackIPv4RoundTrip(t *testing.T) {
	for _, tt := range []struct {
		ip   [4]byte
		port uint16
	}{
		{[4]byte{127, 0, 0, 1}, 8080},
		{[4]byte{0, 0, 0, 0}, 0},
		{[4]byte{255, 254, 253, 252}, 65535},
		{[4]byte{10, 1, 200, 3}, 1},
	} {
		c := &connection{}
		c.init(-1, "tcp", nil)
		c.setRemoteAddr(&net.TCPAddr{IP: net.IP(tt.ip[:]), Port: int(tt.port)})
		if c.peer4 == 0 {
			t.Fatalf("%v:%d was not packed", tt.ip, tt.port)
		}
		got, ok := c.RemoteAddr().(*net.TCPAddr)
		want := &net.TCPAddr{IP: net.IP(tt.ip[:]), Port: int(tt.port)}
		if !ok || got.String() != want.String() || len(got.IP) != 4 {
			t.Fatalf("RemoteAddr() = %#v; want %v as 4 bytes", got, want)
		}
	}
}
