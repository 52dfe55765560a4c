package sys

import "net"

// NewTCPAddr makes a *net.TCPAddr whose IP shares its allocation, so an
// accepted connection's address costs one object, not two. A 4-byte ip is
// an IPv4 address, which net reports as 4 bytes too.
func NewTCPAddr(ip []byte, port int, zone string) *net.TCPAddr {
	box := new(struct {
		addr net.TCPAddr
		ip   [16]byte
	})
	n := copy(box.ip[:], ip)
	box.addr = net.TCPAddr{IP: box.ip[:n:n], Port: port, Zone: zone}
	return &box.addr
}
