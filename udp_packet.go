package netpoll

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/ccb70390/netpoll/internal/bufpool"
	"github.com/ccb70390/netpoll/internal/sys"
)

// The net.PacketConn side of a UDPListener: the pollers queue each datagram
// (copied once out of their receive batch), and ReadFrom takes them one at a
// time. WriteTo sends from the caller's goroutine with sendmsg.

// ReadFrom reads one datagram into p, as net.PacketConn requires. It blocks
// until a datagram arrives, the read deadline passes, or the listener
// closes. A datagram larger than p, or than the listener's maximum size, is
// returned cut with an error matching [ErrDatagramTruncated] (and counted);
// unlike package net, which cuts it silently.
func (l *UDPListener) ReadFrom(p []byte) (n int, addr net.Addr, err error) {
	n, from, err := l.ReadFromUDPAddrPort(p)
	if from.IsValid() {
		addr = net.UDPAddrFromAddrPort(from)
	}
	return n, addr, err
}

// ReadFromUDPAddrPort is ReadFrom returning the sender as a netip.AddrPort,
// which costs no allocation.
func (l *UDPListener) ReadFromUDPAddrPort(p []byte) (n int, from netip.AddrPort, err error) {
	if err = l.enter(udpModePackets, nil); err != nil {
		return 0, from, l.opError("read", nil, err)
	}
	var pkt udpPacket
	select {
	case pkt = <-l.packets:
	default:
		if pkt, err = l.waitPacket(); err != nil {
			return 0, from, l.opError("read", nil, err)
		}
	}
	n = copy(p, pkt.buf)
	bufpool.Put(pkt.buf)
	if pkt.size > n {
		if n < len(pkt.buf) { // cut here, not already on arrival
			l.truncated.Add(1)
		}
		err = fmt.Errorf("%w: %d-byte datagram, %d bytes read", ErrDatagramTruncated, pkt.size, n)
		return n, pkt.from, l.opError("read", net.UDPAddrFromAddrPort(pkt.from), err)
	}
	return n, pkt.from, nil
}

// waitPacket blocks for the next datagram.
func (l *UDPListener) waitPacket() (udpPacket, error) {
	if l.readDeadline.exceeded() {
		return udpPacket{}, Exception(ErrReadTimeout, "")
	}
	deadlineC := l.readDeadline.wait() // always: a deadline set later must wake this wait
	select {
	case pkt := <-l.packets:
		return pkt, nil
	case <-l.closed:
		return udpPacket{}, Exception(ErrConnClosed, "")
	case <-deadlineC:
		return udpPacket{}, Exception(ErrReadTimeout, "")
	}
}

// WriteTo sends p as one datagram to addr, a *net.UDPAddr, as
// net.PacketConn requires. It blocks only while the socket's send buffer is
// full, until the write deadline. Safe for concurrent use; it may be called
// in any mode, so a session server can also send unsolicited datagrams.
func (l *UDPListener) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, l.opError("write", addr, fmt.Errorf("netpoll: WriteTo needs a *net.UDPAddr, not %T", addr))
	}
	return l.WriteToUDPAddrPort(p, ua.AddrPort())
}

// WriteToUDPAddrPort is WriteTo with a netip.AddrPort, which costs no
// allocation.
func (l *UDPListener) WriteToUDPAddrPort(p []byte, to netip.AddrPort) (int, error) {
	if l.writeDeadline.exceeded() {
		return 0, l.opError("write", net.UDPAddrFromAddrPort(to), Exception(ErrWriteTimeout, ""))
	}
	var iovs [1]sys.Iovec
	n, err := l.sockets[0].sendTo([][]byte{p}, to, iovs[:], nil)
	if err != nil {
		return n, l.opError("write", net.UDPAddrFromAddrPort(to), err)
	}
	return n, nil
}

// SetDeadline sets the read and write deadlines, as net.PacketConn does.
func (l *UDPListener) SetDeadline(t time.Time) error {
	l.readDeadline.set(t)
	l.writeDeadline.set(t)
	return nil
}

// SetReadDeadline sets the deadline for ReadFrom, including calls already
// blocked. A zero t clears it.
func (l *UDPListener) SetReadDeadline(t time.Time) error {
	l.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for WriteTo. A zero t clears it.
func (l *UDPListener) SetWriteDeadline(t time.Time) error {
	l.writeDeadline.set(t)
	return nil
}

// opError wraps err as package net does for a packet connection.
func (l *UDPListener) opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: l.network, Source: l.localAddr, Addr: addr, Err: err}
}
