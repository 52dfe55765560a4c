package netpoll

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll/internal/sys"
)

// Dialer makes client connections that the library's pollers serve.
type Dialer interface {
	// DialConnection connects to address on network ("tcp", "tcp4",
	// "tcp6" or "unix") within timeout (zero means none).
	DialConnection(network, address string, timeout time.Duration) (connection Connection, err error)
	// DialTimeout is DialConnection returning a net.Conn.
	DialTimeout(network, address string, timeout time.Duration) (conn net.Conn, err error)
}

// NewDialer returns a Dialer for TCP and unix sockets.
func NewDialer() Dialer { return &dialer{} }

type dialer struct{}

// DialConnection connects to address with the default Dialer.
func DialConnection(network, address string, timeout time.Duration) (connection Connection, err error) {
	return (&dialer{}).DialConnection(network, address, timeout)
}

func (d *dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	return d.DialConnection(network, address, timeout)
}

func (d *dialer) DialConnection(network, address string, timeout time.Duration) (Connection, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		raddr, err := resolveTCPAddr(ctx, network, address)
		if err != nil {
			return nil, dialError(network, address, err)
		}
		return DialTCP(ctx, network, nil, raddr)
	case "unix":
		raddr, err := ResolveUnixAddr(network, address)
		if err != nil {
			return nil, err
		}
		return DialUnix(network, nil, raddr)
	}
	return nil, net.UnknownNetworkError(network)
}

// TCPAddr is the address of a TCP end point.
type TCPAddr struct {
	net.TCPAddr
}

// ResolveTCPAddr returns the address of a TCP end point, as
// net.ResolveTCPAddr does.
func ResolveTCPAddr(network, address string) (*TCPAddr, error) {
	addr, err := net.ResolveTCPAddr(network, address)
	if err != nil {
		return nil, err
	}
	return &TCPAddr{TCPAddr: *addr}, nil
}

// resolveTCPAddr resolves address within ctx; a literal IP needs no lookup.
func resolveTCPAddr(ctx context.Context, network, address string) (*TCPAddr, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, network, portText)
	if err != nil {
		return nil, err
	}
	if host == "" {
		return &TCPAddr{net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return &TCPAddr{net.TCPAddr{IP: ip, Port: port}}, nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network], host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return &TCPAddr{net.TCPAddr{IP: ips[0], Port: port}}, nil
}

// UnixAddr is the address of a unix domain socket end point.
type UnixAddr struct {
	net.UnixAddr
}

// ResolveUnixAddr returns the address of a unix domain socket end point, as
// net.ResolveUnixAddr does.
func ResolveUnixAddr(network, address string) (*UnixAddr, error) {
	addr, err := net.ResolveUnixAddr(network, address)
	if err != nil {
		return nil, err
	}
	return &UnixAddr{UnixAddr: *addr}, nil
}

// TCPConnection is a dialed TCP Connection.
type TCPConnection struct {
	connection
}

// UnixConnection is a dialed unix socket Connection.
type UnixConnection struct {
	connection
}

// DialTCP connects to raddr, from laddr if it is not nil, within ctx.
func DialTCP(ctx context.Context, network string, laddr, raddr *TCPAddr) (*TCPConnection, error) {
	if raddr == nil {
		return nil, dialError(network, "", errors.New("missing address"))
	}
	tc := &TCPConnection{}
	var local net.Addr
	if laddr != nil {
		local = &laddr.TCPAddr
	}
	if err := dialSocket(ctx, &tc.connection, tc, network, local, &raddr.TCPAddr); err != nil {
		return nil, err
	}
	return tc, nil
}

// DialUnix connects to the unix socket raddr, from laddr if it is not nil.
func DialUnix(network string, laddr, raddr *UnixAddr) (*UnixConnection, error) {
	if raddr == nil {
		return nil, dialError(network, "", errors.New("missing address"))
	}
	uc := &UnixConnection{}
	var local net.Addr
	if laddr != nil {
		local = &laddr.UnixAddr
	}
	if err := dialSocket(context.Background(), &uc.connection, uc, network, local, &raddr.UnixAddr); err != nil {
		return nil, err
	}
	return uc, nil
}

// dialSocket opens a non-blocking socket, binds it to local if given, and
// connects it to remote, waiting for the connect on a poller within ctx.
func dialSocket(ctx context.Context, c *connection, owner Connection, network string, local, remote net.Addr) error {
	family, sa, err := sys.SockaddrFromAddr(remote)
	if err != nil {
		return dialError(network, remote.String(), err)
	}
	sotype := syscall.SOCK_STREAM
	fd, err := sys.Socket(family, sotype, 0)
	if err != nil {
		return dialError(network, remote.String(), err)
	}
	if local != nil {
		if err = sys.Bind(fd, local); err != nil {
			_ = sys.Close(fd)
			return dialError(network, remote.String(), err)
		}
	}
	if family != syscall.AF_UNIX {
		_ = sys.SetNoDelay(fd, true)
		network = "tcp"
	} else {
		network = "unix"
	}
	c.init(fd, network, owner)
	c.setRemoteAddr(remote)
	if err = c.connect(ctx, sa); err != nil {
		if !c.close() {
			_ = sys.Close(fd)
		}
		if errors.Is(err, ErrDialTimeout) {
			return err
		}
		return dialError(network, remote.String(), err)
	}
	c.stats.dialed.Add(1)
	return nil
}

func dialError(network, address string, err error) error {
	return &net.OpError{Op: "dial", Net: network, Addr: stringAddr{network, address}, Err: err}
}

// stringAddr names a dial target that has no net.Addr yet.
type stringAddr struct{ network, address string }

func (a stringAddr) Network() string { return a.network }
func (a stringAddr) String() string  { return a.address }
