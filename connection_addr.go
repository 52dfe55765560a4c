package netpoll

import (
	"hash/maphash"
	"net"

	"github.com/ccb70390/netpoll/internal/sys"
)

// A connection's addresses. An accepted IPv4 peer is packed into the
// connection (peer4) and its net.Addr made on the first RemoteAddr; any other
// address lives in the connection's cold part. Most idle connections are
// never asked for either, so they hold no address object.

// setRemoteAddr records the peer's address before c is published: an IPv4
// TCP address in the connection itself, any other in c.cold, made for it.
func (c *connection) setRemoteAddr(addr net.Addr) {
	if ta, ok := addr.(*net.TCPAddr); ok && ta.Zone == "" {
		if ip4 := ta.IP.To4(); ip4 != nil && ta.Port >= 0 && ta.Port <= 0xffff {
			c.peer4 = packIPv4([4]byte(ip4), uint16(ta.Port))
			return
		}
	}
	if addr != nil {
		c.mu.Lock()
		c.coldLocked().remoteAddr = addr
		c.mu.Unlock()
	}
}

// packIPv4 packs an IPv4 address and port with a set top bit, so that no
// address packs to 0.
func packIPv4(ip [4]byte, port uint16) uint64 {
	return 1<<63 | uint64(ip[0])<<40 | uint64(ip[1])<<32 | uint64(ip[2])<<24 | uint64(ip[3])<<16 | uint64(port)
}

// unpackIPv4 is the inverse of packIPv4.
func unpackIPv4(p uint64) (ip [4]byte, port uint16) {
	return [4]byte{byte(p >> 40), byte(p >> 32), byte(p >> 24), byte(p >> 16)}, uint16(p)
}

// remoteAddrLocked returns the peer's address if it is known, making the
// net.Addr of a packed IPv4 peer on first use. c.mu must be held.
func (c *connection) remoteAddrLocked() net.Addr {
	if c.cold != nil && c.cold.remoteAddr != nil {
		return c.cold.remoteAddr
	}
	if c.peer4 == 0 {
		return nil
	}
	ip, port := unpackIPv4(c.peer4)
	addr := sys.NewTCPAddr(ip[:], int(port), "")
	c.coldLocked().remoteAddr = addr
	return addr
}

// knownNetworks are the network names a connection points at, so that it
// holds a pointer rather than a string header.
var knownNetworks = [...]string{"tcp", "tcp4", "tcp6", "unix", "unixpacket", "udp", "udp4", "udp6"}

// internNetwork returns a pointer to a shared copy of network when it is a
// known name; any other name gets its own.
func internNetwork(network string) *string {
	for i := range knownNetworks {
		if knownNetworks[i] == network {
			return &knownNetworks[i]
		}
	}
	own := network // a copy, so that only this path puts a string on the heap
	return &own
}

// LocalAddr returns the local network address.
func (c *connection) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	cold := c.coldLocked()
	if cold.localAddr == nil && c.acquireFD() {
		if sa, err := sys.Getsockname(c.fd); err == nil {
			cold.localAddr = sys.SockaddrToAddr(*c.network, sa)
		}
		c.releaseFD()
	}
	return cold.localAddr
}

// RemoteAddr returns the remote network address.
func (c *connection) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if addr := c.remoteAddrLocked(); addr != nil {
		return addr
	}
	var addr net.Addr
	if c.acquireFD() {
		if sa, err := sys.Getpeername(c.fd); err == nil {
			addr = sys.SockaddrToAddr(*c.network, sa)
			c.coldLocked().remoteAddr = addr
		}
		c.releaseFD()
	}
	return addr
}

// hashSeed seeds sourceHash for the life of the process.
var hashSeed = maphash.MakeSeed()

// sourceHash keys the SourceAddrHash load balance: the peer's IP, packed or
// not. Called before c is published.
func (c *connection) sourceHash() uint64 {
	if c.peer4 != 0 {
		ip, _ := unpackIPv4(c.peer4)
		return maphash.Bytes(hashSeed, ip[:])
	}
	if c.cold != nil {
		if tcp, ok := c.cold.remoteAddr.(*net.TCPAddr); ok {
			return maphash.Bytes(hashSeed, tcp.IP)
		}
	}
	return 0
}
