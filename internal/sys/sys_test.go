//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package sys

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newSocketPair returns a connected non-blocking pair closed by t.Cleanup.
func newSocketPair(t testing.TB) (a, b int) {
	t.Helper()
	a, b, err := SocketPair()
	if err != nil {
		t.Fatalf("SocketPair() = %v", err)
	}
	t.Cleanup(func() { Close(a); Close(b) })
	return a, b
}

// waitFD blocks until fd has one of events, failing the test after 5s.
func waitFD(t testing.TB, fd int, events int16) {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(fds, 5000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("poll(fd %d, %#x) = %d, %v; want ready", fd, events, n, err)
		}
		return
	}
}

// newTCPPair connects two sockets over 127.0.0.1 with Socket, Connect and
// Accept, and returns (client, server).
func newTCPPair(t testing.TB) (client, server int) {
	t.Helper()
	ln, err := Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("Socket() = %v", err)
	}
	t.Cleanup(func() { Close(ln) })
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind = %v", err)
	}
	if err := unix.Listen(ln, 8); err != nil {
		t.Fatalf("listen = %v", err)
	}
	lsa, err := Getsockname(ln)
	if err != nil {
		t.Fatalf("Getsockname() = %v", err)
	}
	client, err = Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("Socket() = %v", err)
	}
	t.Cleanup(func() { Close(client) })
	if err := Connect(client, lsa); err != nil && err != unix.EINPROGRESS {
		t.Fatalf("Connect() = %v; want nil or EINPROGRESS", err)
	}
	waitFD(t, ln, unix.POLLIN)
	server, _, err = Accept(ln)
	if err != nil {
		t.Fatalf("Accept() = %v", err)
	}
	t.Cleanup(func() { Close(server) })
	waitFD(t, client, unix.POLLOUT)
	if err := SocketError(client); err != nil {
		t.Fatalf("SocketError() = %v; want nil", err)
	}
	return client, server
}

func TestTransfer(t *testing.T) {
	tests := []struct {
		name string
		pair func(testing.TB) (int, int)
	}{
		{"tcp", newTCPPair},
		{"socketpair", newSocketPair},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.pair(t)
			iovs := make([]Iovec, 4)
			if n, err := Read(b, make([]byte, 4)); err != unix.EAGAIN {
				t.Fatalf("Read(empty) = %d, %v; want EAGAIN bare", n, err)
			}
			if n, err := Write(a, []byte("hello ")); n != 6 || err != nil {
				t.Fatalf("Write() = %d, %v; want 6, nil", n, err)
			}
			if n, err := Writev(a, [][]byte{[]byte("wor"), nil, []byte("ld")}, iovs); n != 5 || err != nil {
				t.Fatalf("Writev() = %d, %v; want 5, nil", n, err)
			}
			got := readFull(t, b, 11, iovs)
			if string(got) != "hello world" {
				t.Fatalf("read %q; want %q", got, "hello world")
			}
			if err := Shutdown(a, unix.SHUT_WR); err != nil {
				t.Fatalf("Shutdown() = %v", err)
			}
			waitFD(t, b, unix.POLLIN)
			if n, err := Read(b, make([]byte, 4)); n != 0 || err != nil {
				t.Fatalf("Read(after shutdown) = %d, %v; want 0, nil (EOF)", n, err)
			}
		})
	}
}

// readFull reads n bytes from fd with Readv into two halves.
func readFull(t testing.TB, fd, n int, iovs []Iovec) []byte {
	t.Helper()
	buf := make([]byte, n)
	got := 0
	for got < n {
		waitFD(t, fd, unix.POLLIN)
		half := got + (n-got)/2
		m, err := Readv(fd, [][]byte{buf[got:half], buf[half:]}, iovs)
		if err == unix.EAGAIN {
			continue
		}
		if err != nil || m == 0 {
			t.Fatalf("Readv() = %d, %v after %d of %d bytes", m, err, got, n)
		}
		got += m
	}
	for i := range iovs {
		if iovs[i].Base != nil {
			t.Fatalf("iovs[%d] still points at a buffer after Readv", i)
		}
	}
	return buf
}

func TestWritevClamps(t *testing.T) {
	a, b := newSocketPair(t)
	var want []byte
	bufs := make([][]byte, 0, 2000)
	for i := range 2000 {
		if i%10 == 5 {
			bufs = append(bufs, nil) // skipped, not counted against IOV_MAX
		}
		bufs = append(bufs, []byte{byte(i)})
		want = append(want, byte(i))
	}
	iovs := make([]Iovec, 2000)
	n, err := Writev(a, bufs, iovs)
	if n != IOVMax || err != nil {
		t.Fatalf("Writev(2000 one-byte slices) = %d, %v; want %d, nil", n, err, IOVMax)
	}
	got := readFull(t, b, n, iovs)
	if !bytes.Equal(got, want[:n]) {
		t.Fatalf("read back %d bytes that differ from the first %d written", len(got), n)
	}
	if n, err := Writev(a, bufs[:3], iovs[:2]); n != 2 || err != nil {
		t.Fatalf("Writev(3 slices, 2 iovecs) = %d, %v; want 2, nil", n, err)
	}
}

func TestHooks(t *testing.T) {
	tests := []struct {
		name    string
		results []error // what the hook returns, call by call
		wantIs  error
		wantRaw bool // the error must come back bare (==)
	}{
		{"emfile wrapped", []error{unix.EMFILE}, unix.EMFILE, false},
		{"eagain bare", []error{unix.EAGAIN}, unix.EAGAIN, true},
		{"eintr retried", []error{unix.EINTR, unix.EINTR, unix.ECONNABORTED}, unix.ECONNABORTED, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			saved := AcceptHook
			t.Cleanup(func() { AcceptHook = saved })
			AcceptHook = func(int) (int, Peer, error) {
				err := tt.results[min(calls, len(tt.results)-1)]
				calls++
				return -1, Peer{}, err
			}
			_, _, err := Accept(3)
			if !errors.Is(err, tt.wantIs) || (err == tt.wantIs) != tt.wantRaw {
				t.Fatalf("Accept() = %#v; want %v (bare: %v)", err, tt.wantIs, tt.wantRaw)
			}
			var se *os.SyscallError
			if !tt.wantRaw && (!errors.As(err, &se) || se.Syscall != acceptName) {
				t.Fatalf("Accept() = %v; want an *os.SyscallError from %s", err, acceptName)
			}
			if calls != len(tt.results) {
				t.Fatalf("hook called %d times; want %d", calls, len(tt.results))
			}
		})
	}
}

func TestReadHookReset(t *testing.T) {
	saved := ReadvHook
	t.Cleanup(func() { ReadvHook = saved })
	ReadvHook = func(int, []Iovec) (int, error) { return 0, unix.ECONNRESET }
	a, _ := newSocketPair(t)
	_, err := Readv(a, [][]byte{make([]byte, 8)}, make([]Iovec, 1))
	if !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("Readv() = %v; want ECONNRESET", err)
	}
}

func TestSockaddrRoundTrip(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	tests := []struct {
		name       string
		addr       net.Addr
		wantFamily int
		want       net.Addr // nil: addr itself
	}{
		{"tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1).To4(), Port: 80}, unix.AF_INET, nil},
		{"tcp6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}, unix.AF_INET6, nil},
		{"tcp v4-mapped", &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 1}, unix.AF_INET,
			&net.TCPAddr{IP: net.IP{10, 0, 0, 1}, Port: 1}},
		{"tcp wildcard", &net.TCPAddr{Port: 8080}, unix.AF_INET,
			&net.TCPAddr{IP: net.IP{0, 0, 0, 0}, Port: 8080}},
		{"udp4", &net.UDPAddr{IP: net.IP{192, 168, 1, 2}, Port: 53}, unix.AF_INET, nil},
		{"unix", &net.UnixAddr{Name: sock, Net: "unix"}, unix.AF_UNIX, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			family, sa, err := SockaddrFromAddr(tt.addr)
			if err != nil || family != tt.wantFamily {
				t.Fatalf("SockaddrFromAddr(%v) = %d, %v; want %d, nil", tt.addr, family, err, tt.wantFamily)
			}
			want := tt.want
			if want == nil {
				want = tt.addr
			}
			got := SockaddrToAddr(tt.addr.Network(), sa)
			if got == nil || got.String() != want.String() || got.Network() != want.Network() {
				t.Fatalf("SockaddrToAddr(%q, %#v) = %v; want %v", tt.addr.Network(), sa, got, want)
			}
		})
	}
	if _, _, err := SockaddrFromAddr(&net.IPAddr{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("SockaddrFromAddr(*net.IPAddr) = %v; want ErrUnsupported", err)
	}
	if got := SockaddrToAddr("tcp", nil); got != nil {
		t.Fatalf("SockaddrToAddr(tcp, nil) = %#v; want nil", got)
	}
}

func TestSocketOptions(t *testing.T) {
	client, _ := newTCPPair(t)
	if err := SetKeepAlive(client, 7); err != nil {
		t.Fatalf("SetKeepAlive(7) = %v", err)
	}
	if v, err := unix.GetsockoptInt(client, unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil || v == 0 {
		t.Fatalf("SO_KEEPALIVE = %d, %v; want on", v, err)
	}
	checkKeepAlivePeriod(t, client, 7)
	if err := SetKeepAlive(client, 0); err != nil {
		t.Fatalf("SetKeepAlive(0) = %v", err)
	}
	if v, _ := unix.GetsockoptInt(client, unix.SOL_SOCKET, unix.SO_KEEPALIVE); v != 0 {
		t.Fatalf("SO_KEEPALIVE = %d after SetKeepAlive(0); want 0", v)
	}
	if err := SetNoDelay(client, true); err != nil {
		t.Fatalf("SetNoDelay() = %v", err)
	}
	if v, _ := unix.GetsockoptInt(client, unix.IPPROTO_TCP, unix.TCP_NODELAY); v == 0 {
		t.Fatalf("TCP_NODELAY = 0 after SetNoDelay(true)")
	}
	for name, set := range map[string]func(int) error{"SetReuseAddr": SetReuseAddr, "SetReusePort": SetReusePort, "SetNonblock": SetNonblock} {
		if err := set(client); err != nil {
			t.Fatalf("%s() = %v", name, err)
		}
	}
	if _, err := Getpeername(client); err != nil {
		t.Fatalf("Getpeername() = %v", err)
	}
}

func TestConnectRefused(t *testing.T) {
	// Bind a port and close it so nothing listens there.
	fd, err := Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	sa, _ := Getsockname(fd)
	Close(fd)
	c, err := Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(c)
	err = Connect(c, sa)
	if err == unix.EINPROGRESS {
		waitFD(t, c, unix.POLLOUT)
		err = SocketError(c)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("connect to a closed port: %v; want ECONNREFUSED", err)
	}
}

func TestReadvWritevNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a, b := newSocketPair(t)
	out := [][]byte{[]byte("ping"), []byte("pong")}
	in := [][]byte{make([]byte, 4), make([]byte, 4)}
	iovs := make([]Iovec, 2)
	allocs := testing.AllocsPerRun(100, func() {
		Writev(a, out, iovs)
		Readv(b, in, iovs)
	})
	if allocs != 0 {
		t.Fatalf("Writev+Readv allocate %v times per run; want 0", allocs)
	}
}
