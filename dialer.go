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
	// "tcp6" or "unix") within timeout (zero means none). A host name
	// with several addresses is dialed at each in turn until one answers,
	// as net.Dial does, each given a share of the timeout.
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
		raddrs, err := resolveTCPAddrs(ctx, network, address)
		if err != nil {
			return nil, dialError(network, address, err)
		}
		return dialSerial(ctx, network, address, raddrs)
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

// resolveTCPAddrs resolves address within ctx to every address of its
// host, in the resolver's order; a literal IP needs no lookup.
func resolveTCPAddrs(ctx context.Context, network, address string) ([]*TCPAddr, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, network, portText)
	if err != nil {
		return nil, err
	}
	if host == "" {
		return []*TCPAddr{{net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}}, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return []*TCPAddr{{net.TCPAddr{IP: ip, Port: port}}}, nil
	}
	ips, err := lookupIP(ctx, map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network], host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	addrs := make([]*TCPAddr, len(ips))
	for i, ip := range ips {
		addrs[i] = &TCPAddr{net.TCPAddr{IP: ip, Port: port}}
	}
	return addrs, nil
}

// dialMinShare is the least time an address is given when several share a
// dial's timeout, as in package net's dialSerial.
const dialMinShare = 2 * time.Second

// dialSerial connects to each address in turn until one answers, as
// net.Dialer does (#15): a host whose first address refuses, like
// "localhost" resolving to ::1 with a server on 127.0.0.1 only, is still
// reached. With a deadline, each address but the last gets an equal share
// of the time left (at least dialMinShare), so one that never answers
// leaves time for the rest. When all fail it returns the first address's
// error, as net does, or ErrDialTimeout once the whole timeout has passed.
func dialSerial(ctx context.Context, network, address string, raddrs []*TCPAddr) (Connection, error) {
	var first error
	for i, raddr := range raddrs {
		if ctx.Err() != nil {
			return nil, Exception(ErrDialTimeout, "dial "+address)
		}
		conn, err := dialShare(ctx, network, raddr, len(raddrs)-i)
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// dialShare dials raddr within its share of ctx's time left, remaining
// addresses counting this one.
func dialShare(ctx context.Context, network string, raddr *TCPAddr, remaining int) (*TCPConnection, error) {
	if deadline, ok := ctx.Deadline(); ok && remaining > 1 {
		left := time.Until(deadline)
		share := left / time.Duration(remaining)
		if share < dialMinShare {
			share = min(left, dialMinShare)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, share)
		defer cancel()
	}
	return DialTCP(ctx, network, nil, raddr)
}

// lookupIP resolves a host name for the dialer; a variable so that tests
// can give a name several addresses.
var lookupIP = func(ctx context.Context, network, host string) ([]net.IP, error) {
	return net.DefaultResolver.LookupIP(ctx, network, host)
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
