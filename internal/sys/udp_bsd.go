//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package sys

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// DatagramBatch is the scratch space of one socket for receiving or sending
// datagrams. The BSDs and macOS have no recvmmsg(2) common to all, so a batch
// is a loop of recvmsg(2) or sendmsg(2) calls here. Owned by one goroutine at
// a time.
type DatagramBatch struct {
	bufs  [][]byte
	sizes []int
	from  []netip.AddrPort
}

// NewDatagramBatch returns a batch of n slots. For receiving, each slot gets
// a buffer of size bytes; pass size 0 for a batch used only to send.
func NewDatagramBatch(n, size int) *DatagramBatch {
	b := &DatagramBatch{bufs: make([][]byte, n), sizes: make([]int, n), from: make([]netip.AddrPort, n)}
	if size > 0 {
		arena := make([]byte, n*size)
		for i := range b.bufs {
			b.bufs[i] = arena[i*size : (i+1)*size : (i+1)*size]
		}
	}
	return b
}

// Cap returns the number of slots.
func (b *DatagramBatch) Cap() int { return len(b.bufs) }

// Recv receives up to max(min(limit, Cap()), 1) datagrams from the
// non-blocking socket fd. Without MSG_TRUNC on receive, a datagram cut to its
// slot reports a size one byte larger than the slot: the real size is unknown.
func (b *DatagramBatch) Recv(fd, limit int) (n int, err error) {
	limit = max(min(limit, len(b.bufs)), 1)
	for n < limit {
		got, _, flags, from, err := unix.Recvmsg(fd, b.bufs[n], nil, unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, wrap("recvmsg", err)
		}
		b.sizes[n] = got
		if flags&unix.MSG_TRUNC != 0 {
			b.sizes[n] = len(b.bufs[n]) + 1
		}
		b.from[n] = sockaddrToAddrPort(from)
		n++
	}
	return n, nil
}

// Buf returns the slot buffer of datagram i of the last Recv, cut to the
// bytes received. It aliases the batch until the next Recv.
func (b *DatagramBatch) Buf(i int) []byte { return b.bufs[i][:min(b.sizes[i], len(b.bufs[i]))] }

// Size returns the size of datagram i of the last Recv, which exceeds
// len(Buf(i)) when the datagram did not fit its slot.
func (b *DatagramBatch) Size(i int) int { return b.sizes[i] }

// From returns the sender of datagram i of the last Recv.
func (b *DatagramBatch) From(i int) netip.AddrPort { return b.from[i] }

// Send sends the datagrams to[i] ← payload[i] from fd, one sendmsg(2) each,
// and returns how many the kernel took.
func (b *DatagramBatch) Send(fd int, to []netip.AddrPort, payload [][][]byte) (n int, err error) {
	for n < min(len(to), len(payload)) {
		if _, err = SendTo(fd, payload[n], to[n], nil); err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		n++
	}
	return n, nil
}

// SendTo sends payload, given in pieces, as one datagram to to from the
// non-blocking socket fd with one sendmsg(2). iovs is unused here.
// unix.EAGAIN comes back bare when the send buffer is full.
func SendTo(fd int, payload [][]byte, to netip.AddrPort, iovs []Iovec) (n int, err error) {
	var sa unix.Sockaddr
	if addr := to.Addr(); addr.Is4() {
		sa = &unix.SockaddrInet4{Port: int(to.Port()), Addr: addr.As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(to.Port()), Addr: addr.As16(), ZoneId: zoneIndex(addr.Zone())}
	}
	for {
		n, err = unix.SendmsgBuffers(fd, payload, nil, sa, 0)
		if err != unix.EINTR {
			return n, wrap("sendmsg", err)
		}
	}
}

func sockaddrToAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch s := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(s.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(s.Addr).WithZone(zoneName(s.ZoneId)), uint16(s.Port))
	}
	return netip.AddrPort{}
}

// SetIPv6Only sets IPV6_V6ONLY on the AF_INET6 socket fd: off lets one socket
// serve IPv4 peers too (as IPv4-mapped addresses), as package net does for
// "udp" and "tcp" on a wildcard address.
func SetIPv6Only(fd int, on bool) error {
	return wrap("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(on)))
}
