package sys

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2). Go pads it to the
// alignment of Msghdr exactly as C does, on 32- and 64-bit platforms alike.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// DatagramBatch is the scratch space of one socket for receiving up to
// Cap() datagrams with one recvmmsg(2), or for sending a batch with one
// sendmmsg(2). It holds the headers, address slots and iovecs, so neither
// direction allocates. Owned by one goroutine at a time.
type DatagramBatch struct {
	hdrs  []mmsghdr
	names []unix.RawSockaddrInet6 // big enough for an IPv4 or IPv6 address
	iovs  []Iovec
	bufs  [][]byte
}

// NewDatagramBatch returns a batch of n slots. For receiving, each slot gets
// a buffer of size bytes; pass size 0 for a batch used only to send.
func NewDatagramBatch(n, size int) *DatagramBatch {
	b := &DatagramBatch{
		hdrs:  make([]mmsghdr, n),
		names: make([]unix.RawSockaddrInet6, n),
		iovs:  make([]Iovec, 0, n*4),
		bufs:  make([][]byte, n),
	}
	if size > 0 {
		// One allocation for all slots: the pages the kernel never writes
		// (short datagrams in long slots) are never touched.
		arena := make([]byte, n*size)
		for i := range b.bufs {
			b.bufs[i] = arena[i*size : (i+1)*size : (i+1)*size]
		}
	}
	return b
}

// Cap returns the number of slots.
func (b *DatagramBatch) Cap() int { return len(b.hdrs) }

// Recv receives up to max(min(limit, Cap()), 1) datagrams from the
// non-blocking socket fd with one recvmmsg(2). It returns how many arrived;
// unix.EAGAIN comes back bare when none was waiting. MSG_TRUNC makes the
// kernel report each datagram's real size, so a datagram longer than its
// slot is known to be cut: see [DatagramBatch.Size].
func (b *DatagramBatch) Recv(fd, limit int) (n int, err error) {
	limit = max(min(limit, len(b.hdrs)), 1)
	b.iovs = b.iovs[:limit]
	for i := range limit {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(len(b.bufs[i]))
		h := &b.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Flags = 0
	}
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])),
			uintptr(limit), unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, wrap("recvmmsg", e)
		}
		return int(r), nil
	}
}

// Buf returns the slot buffer of datagram i of the last Recv, cut to the
// bytes received. It aliases the batch until the next Recv.
func (b *DatagramBatch) Buf(i int) []byte {
	return b.bufs[i][:min(int(b.hdrs[i].len), len(b.bufs[i]))]
}

// Size returns the real size of datagram i of the last Recv, which exceeds
// len(Buf(i)) when the datagram did not fit its slot.
func (b *DatagramBatch) Size(i int) int { return int(b.hdrs[i].len) }

// From returns the sender of datagram i of the last Recv; an IPv4 sender on
// an IPv6 socket comes as an IPv4-mapped address, as the kernel gives it.
func (b *DatagramBatch) From(i int) netip.AddrPort {
	return rawToAddrPort(&b.names[i])
}

// Send sends the datagrams to[i] ← payload[i] (each payload given in pieces)
// from fd with one sendmmsg(2), at most Cap() of them, and returns how many
// the kernel took. unix.EAGAIN comes back bare when the send buffer is full
// before the first one.
func (b *DatagramBatch) Send(fd int, to []netip.AddrPort, payload [][][]byte) (n int, err error) {
	count := min(len(to), len(payload), len(b.hdrs))
	if count == 0 {
		return 0, nil
	}
	// Two passes: appending may move iovs, so the headers point into it
	// only once it is complete.
	b.iovs = b.iovs[:0]
	for i := range count {
		start := len(b.iovs)
		for _, p := range payload[i] {
			if len(p) > 0 {
				var v Iovec
				v.Base = &p[0]
				v.SetLen(len(p))
				b.iovs = append(b.iovs, v)
			}
		}
		h := &b.hdrs[i].hdr
		h.Namelen = addrPortToRaw(to[i], &b.names[i])
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.SetIovlen(len(b.iovs) - start)
		h.Flags = 0
	}
	next := 0
	for i := range count {
		h := &b.hdrs[i].hdr
		h.Iov = nil
		if h.Iovlen > 0 {
			h.Iov = &b.iovs[next]
			next += int(h.Iovlen)
		}
	}
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])),
			uintptr(count), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		clear(b.iovs)
		b.iovs = b.iovs[:0]
		if e != 0 {
			return 0, wrap("sendmmsg", e)
		}
		return int(r), nil
	}
}

// SendTo sends payload, given in pieces, as one datagram to to from the
// non-blocking socket fd with one sendmsg(2). iovs is the caller's scratch
// space, as in [Writev]; a payload in more pieces than it holds fails with
// EMSGSIZE rather than go out cut. It does not allocate. unix.EAGAIN comes back bare when the send buffer is full.
func SendTo(fd int, payload [][]byte, to netip.AddrPort, iovs []Iovec) (n int, err error) {
	var name unix.RawSockaddrInet6
	var h unix.Msghdr
	h.Namelen = addrPortToRaw(to, &name)
	h.Name = (*byte)(unsafe.Pointer(&name))
	pieces := 0
	for _, p := range payload {
		if len(p) > 0 {
			pieces++
		}
	}
	if pieces > min(len(iovs), IOVMax) {
		return 0, wrap("sendmsg", unix.EMSGSIZE)
	}
	if cnt := fillIovecs(payload, iovs); cnt > 0 {
		h.Iov = &iovs[0]
		h.SetIovlen(cnt)
		defer clear(iovs[:cnt])
	}
	for {
		r, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), unix.MSG_DONTWAIT)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, wrap("sendmsg", e)
		}
		return int(r), nil
	}
}

// rawToAddrPort decodes a sockaddr_in or sockaddr_in6 without allocating
// (an IPv6 zone, rare on a server, is named by its interface index).
func rawToAddrPort(raw *unix.RawSockaddrInet6) netip.AddrPort {
	switch raw.Family {
	case unix.AF_INET:
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		return netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), ntohs(in4.Port))
	case unix.AF_INET6:
		addr := netip.AddrFrom16(raw.Addr)
		if raw.Scope_id != 0 {
			addr = addr.WithZone(strconv.FormatUint(uint64(raw.Scope_id), 10))
		}
		return netip.AddrPortFrom(addr, ntohs(raw.Port))
	}
	return netip.AddrPort{}
}

// addrPortToRaw encodes ap into raw and returns the length of the encoding:
// a sockaddr_in for an IPv4 address, else a sockaddr_in6.
func addrPortToRaw(ap netip.AddrPort, raw *unix.RawSockaddrInet6) uint32 {
	*raw = unix.RawSockaddrInet6{}
	addr := ap.Addr()
	if addr.Is4() {
		in4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		in4.Family = unix.AF_INET
		in4.Port = htons(ap.Port())
		in4.Addr = addr.As4()
		return unix.SizeofSockaddrInet4
	}
	raw.Family = unix.AF_INET6
	raw.Port = htons(ap.Port())
	raw.Addr = addr.As16()
	if zone := addr.Zone(); zone != "" {
		raw.Scope_id = zoneIndex(zone)
	}
	return unix.SizeofSockaddrInet6
}

// ntohs and htons convert a port between network and host byte order: the
// raw sockaddr's port field holds the network-order bytes.
func ntohs(port uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&port))
	return binary.BigEndian.Uint16(b[:])
}

func htons(port uint16) uint16 {
	var v uint16
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&v))[:], port)
	return v
}

// SetIPv6Only sets IPV6_V6ONLY on the AF_INET6 socket fd: off lets one socket
// serve IPv4 peers too (as IPv4-mapped addresses), as package net does for
// "udp" and "tcp" on a wildcard address.
func SetIPv6Only(fd int, on bool) error {
	return wrap("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(on)))
}
