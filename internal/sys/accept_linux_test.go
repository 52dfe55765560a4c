package sys

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// listenFD opens a non-blocking listening socket for network on addr and
// returns it with the address it got.
func listenFD(t *testing.T, network, addr string) (int, net.Addr) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	bound := ln.Addr()
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false) // the socket file must outlive ln
	}
	ln.Close() // f holds a dup of the socket, which keeps listening
	t.Cleanup(func() { f.Close() })
	fd := int(f.Fd())
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	return fd, bound
}

func TestAcceptReportsPeerAddress(t *testing.T) {
	for _, tt := range []struct{ network, addr string }{
		{"tcp", "127.0.0.1:0"},
		{"tcp", "[::1]:0"},
		{"unix", filepath.Join(t.TempDir(), "s")},
	} {
		t.Run(tt.network+" "+tt.addr, func(t *testing.T) {
			if tt.addr == "[::1]:0" {
				if ln, err := net.Listen("tcp", tt.addr); err != nil {
					t.Skip("no IPv6 loopback:", err)
				} else {
					ln.Close()
				}
			}
			fd, bound := listenFD(t, tt.network, tt.addr)
			client, err := net.Dial(tt.network, bound.String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			nfd, peer, err := acceptWithin(t, fd)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(nfd)
			got := peer.Addr(tt.network)
			want := client.LocalAddr()
			if tt.network == "unix" {
				want = &net.UnixAddr{Name: "@", Net: "unix"} // an unnamed client, as package net reports it
			}
			if got == nil || got.String() != want.String() || got.Network() != want.Network() {
				t.Fatalf("peer address %v (%T); want %v", got, got, want)
			}
			flags, err := unix.FcntlInt(uintptr(nfd), unix.F_GETFL, 0)
			if err != nil || flags&unix.O_NONBLOCK == 0 {
				t.Fatalf("accepted fd flags %#x, %v; want O_NONBLOCK", flags, err)
			}
		})
	}
}

// Accepting must not allocate: a burst of accepts would otherwise leave
// garbage that becomes resident memory before the collector runs.
func TestAcceptDoesNotAllocate(t *testing.T) {
	fd, bound := listenFD(t, "tcp", "127.0.0.1:0")
	const conns = 50
	for range conns + 1 {
		c, err := net.Dial("tcp", bound.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	allocs := testing.AllocsPerRun(conns, func() {
		nfd, _, err := acceptWithin(t, fd)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(nfd)
	})
	if allocs != 0 {
		t.Fatalf("accept allocated %.1f times per call; want none", allocs)
	}
}

// acceptWithin accepts one connection, retrying while none is queued yet.
func acceptWithin(t *testing.T, fd int) (int, Peer, error) {
	t.Helper()
	for range 2000 {
		nfd, peer, err := Accept(fd)
		if err != unix.EAGAIN {
			return nfd, peer, err
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 1e6}, nil)
	}
	return -1, Peer{}, unix.EAGAIN
}
