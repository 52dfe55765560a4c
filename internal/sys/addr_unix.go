//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package sys

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// SockaddrToAddr converts sa to the net.Addr that package net would report for
// network: a *net.TCPAddr for "tcp*", a *net.UDPAddr for "udp*", a *net.UnixAddr
// for "unix*". It returns nil for a nil sa, for an unnamed unix socket's address
// when network is not a unix one, and for a family that does not fit network.
// The result does not alias sa.
func SockaddrToAddr(network string, sa unix.Sockaddr) net.Addr {
	switch {
	case strings.HasPrefix(network, "tcp"):
		if ip, port, zone, ok := inetAddr(sa); ok {
			return &net.TCPAddr{IP: ip, Port: port, Zone: zone}
		}
	case strings.HasPrefix(network, "udp"):
		if ip, port, zone, ok := inetAddr(sa); ok {
			return &net.UDPAddr{IP: ip, Port: port, Zone: zone}
		}
	case strings.HasPrefix(network, "unix"):
		if s, ok := sa.(*unix.SockaddrUnix); ok {
			return &net.UnixAddr{Name: s.Name, Net: network}
		}
	}
	return nil
}

// inetAddr returns the IP (4 bytes for IPv4, as net reports it), port and zone
// of an internet socket address.
func inetAddr(sa unix.Sockaddr) (ip net.IP, port int, zone string, ok bool) {
	switch s := sa.(type) {
	case *unix.SockaddrInet4:
		return net.IP(append([]byte(nil), s.Addr[:]...)), s.Port, "", true
	case *unix.SockaddrInet6:
		return net.IP(append([]byte(nil), s.Addr[:]...)), s.Port, zoneName(s.ZoneId), true
	}
	return nil, 0, "", false
}

// SockaddrFromAddr converts a *net.TCPAddr, *net.UDPAddr or *net.UnixAddr to the
// socket family and address to bind or connect to. As package net does, an IPv4
// address (including an IPv4-mapped IPv6 one) and a nil or IPv4 wildcard IP give
// AF_INET; any other IP gives AF_INET6 with its zone resolved to an interface
// index. Any other address type gives an error matching errors.ErrUnsupported.
func SockaddrFromAddr(addr net.Addr) (family int, sa unix.Sockaddr, err error) {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return inetSockaddr(a.IP, a.Port, a.Zone)
	case *net.UDPAddr:
		return inetSockaddr(a.IP, a.Port, a.Zone)
	case *net.UnixAddr:
		return unix.AF_UNIX, &unix.SockaddrUnix{Name: a.Name}, nil
	}
	return 0, nil, fmt.Errorf("netpoll: address type %T: %w", addr, errors.ErrUnsupported)
}

func inetSockaddr(ip net.IP, port int, zone string) (int, unix.Sockaddr, error) {
	if port < 0 || port > 0xffff {
		return 0, nil, fmt.Errorf("netpoll: port %d out of range: %w", port, unix.EINVAL)
	}
	if len(ip) == 0 {
		return unix.AF_INET, &unix.SockaddrInet4{Port: port}, nil
	}
	if ip4 := ip.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip4)
		return unix.AF_INET, sa, nil
	}
	if len(ip) != net.IPv6len {
		return 0, nil, fmt.Errorf("netpoll: invalid IP %v: %w", ip, unix.EINVAL)
	}
	sa := &unix.SockaddrInet6{Port: port, ZoneId: zoneIndex(zone)}
	copy(sa.Addr[:], ip)
	return unix.AF_INET6, sa, nil
}

// zoneName names the interface of an IPv6 zone index, or spells the index in
// decimal when no interface has it, as net does.
func zoneName(index uint32) string {
	if index == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(index), 10)
}

// zoneIndex is the inverse of zoneName.
func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	n, _ := strconv.ParseUint(zone, 10, 32)
	return uint32(n)
}
