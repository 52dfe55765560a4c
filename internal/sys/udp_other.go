//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package sys

import "net/netip"

// DatagramBatch stands for the datagram scratch space on platforms without
// a poller backend.
type DatagramBatch struct{}

// NewDatagramBatch returns an empty batch on this platform.
func NewDatagramBatch(n, size int) *DatagramBatch { return &DatagramBatch{} }

// Cap returns 0 on this platform.
func (b *DatagramBatch) Cap() int { return 0 }

// Recv is not supported on this platform.
func (b *DatagramBatch) Recv(fd, limit int) (n int, err error) { return 0, errUnsupported }

// Buf returns nil on this platform.
func (b *DatagramBatch) Buf(i int) []byte { return nil }

// Size returns 0 on this platform.
func (b *DatagramBatch) Size(i int) int { return 0 }

// From returns the zero address on this platform.
func (b *DatagramBatch) From(i int) netip.AddrPort { return netip.AddrPort{} }

// Send is not supported on this platform.
func (b *DatagramBatch) Send(fd int, to []netip.AddrPort, payload [][][]byte) (n int, err error) {
	return 0, errUnsupported
}

// SendTo is not supported on this platform.
func SendTo(fd int, payload [][]byte, to netip.AddrPort, iovs []Iovec) (n int, err error) {
	return 0, errUnsupported
}

// SetIPv6Only is not supported on this platform.
func SetIPv6Only(fd int, on bool) error { return errUnsupported }
