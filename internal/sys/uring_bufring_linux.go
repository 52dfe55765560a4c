package sys

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// uringBufReg is struct io_uring_buf_reg, the argument of
// IORING_REGISTER_PBUF_RING.
type uringBufReg struct {
	RingAddr    uint64
	RingEntries uint32
	Bgid        uint16
	Flags       uint16
	_           [3]uint64
}

// iouPbufRingInc is IOU_PBUF_RING_INC, in uringBufReg.Flags: the buffers
// are consumed incrementally (6.12).
const iouPbufRingInc = 2

// uringBuf is struct io_uring_buf, one slot of a provided-buffer ring. The
// ring's tail (a uint16) overlays the last two bytes of slot 0, its resv.
type uringBuf struct {
	Addr uint64
	Len  uint32
	Bid  uint16
	_    uint16
}

// BufRing is a provided-buffer ring (5.19): the kernel takes a buffer from
// it for each completion of a receive with IOSQE_BUFFER_SELECT, and the
// application gives each buffer back when done with its bytes. The ring and
// the buffers are mapped outside the Go heap: the kernel writes into them at
// any time. Only one goroutine may call Take and Provide.
//
// An incremental ring (IOU_PBUF_RING_INC, 6.12) lets each receive take only
// the part of the buffer at the ring's head that its bytes fill: one large
// buffer holds many small receives, and one receive may take a whole large
// buffer, so a ring of a few large buffers serves both many quiet
// connections and a few streaming ones. A completion then names its buffer
// but not where in it its bytes are: they follow the bytes of the buffer's
// earlier completions, which the kernel posts in the order it filled the
// buffer. Take keeps that offset per buffer. Its completions say
// IORING_CQE_F_BUF_MORE while the kernel keeps filling the buffer; the one
// without it ends the buffer's turn, and only then is it given back.
type BufRing struct {
	group       uint16
	size        int // bytes per buffer
	mask        uint16
	tail        uint16 // ours; published with every Provide
	incremental bool
	filled      []uint32 // incremental: bytes of each buffer its completions took so far
	slots       []uringBuf
	ringMem     []byte
	bufMem      []byte
}

// RegisterBufRing maps entries (a power of two up to 32768) buffers of size
// bytes each, registers them with r as buffer group group, and provides
// them all. It fails with EINVAL on kernels before 5.19, and, incremental,
// before 6.12.
func (r *Ring) RegisterBufRing(group uint16, entries, size int, incremental bool) (*BufRing, error) {
	ringMem, err := unix.Mmap(-1, 0, entries*int(unsafe.Sizeof(uringBuf{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	bufMem, err := unix.Mmap(-1, 0, entries*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		unix.Munmap(ringMem)
		return nil, os.NewSyscallError("mmap", err)
	}
	b := &BufRing{group: group, size: size, mask: uint16(entries - 1), ringMem: ringMem, bufMem: bufMem,
		slots: unsafe.Slice((*uringBuf)(unsafe.Pointer(&ringMem[0])), entries)}
	reg := uringBufReg{RingAddr: uint64(uintptr(unsafe.Pointer(&ringMem[0]))), RingEntries: uint32(entries), Bgid: group}
	if incremental {
		reg.Flags = iouPbufRingInc
		b.incremental = true
		b.filled = make([]uint32, entries)
	}
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.Fd), uringRegisterPbufRing, uintptr(unsafe.Pointer(&reg)), 1, 0, 0)
	if e != 0 {
		b.Unmap()
		return nil, os.NewSyscallError("io_uring_register pbuf ring", e)
	}
	for bid := range entries {
		b.put(uint16(bid))
	}
	b.publish()
	return b, nil
}

// Group returns the buffer group id receives name in buf_group.
func (b *BufRing) Group() uint16 { return b.group }

// Incremental reports whether the ring's buffers are consumed incrementally.
func (b *BufRing) Incremental() bool { return b.incremental }

// Buffers returns the number of buffers.
func (b *BufRing) Buffers() int { return int(b.mask) + 1 }

// Size returns the bytes of one buffer.
func (b *BufRing) Size() int { return b.size }

// Take returns the n bytes that a completion with flags (it has
// IORING_CQE_F_BUFFER) received, and whether its buffer's turn ended, so
// that the caller gives it back (Provide) once done with the bytes. Every
// such completion must be taken, in completion order, whether or not its
// bytes are wanted: on an incremental ring each one moves its buffer's
// offset. The slice is valid until the buffer is provided again. A count
// that does not fit the buffer (which the kernel never reports) yields no
// bytes.
func (b *BufRing) Take(flags uint32, n int) (data []byte, bid uint16, done bool) {
	bid = uint16(flags >> UringCQEBufferShift)
	off := 0
	done = true
	if b.incremental {
		off = int(b.filled[bid&b.mask])
		done = flags&UringCQEFBufMore == 0
		if done {
			b.filled[bid&b.mask] = 0
		} else {
			b.filled[bid&b.mask] += uint32(max(n, 0))
		}
	}
	if n <= 0 || int(bid) > int(b.mask) || off+n > b.size {
		return nil, bid, done
	}
	start := int(bid)*b.size + off
	return b.bufMem[start : start+n : start+n], bid, done
}

// Provide gives buffer bid back to the kernel. An id the ring does not
// have (which the kernel never reports) is ignored.
func (b *BufRing) Provide(bid uint16) {
	if int(bid) > int(b.mask) {
		return
	}
	b.put(bid)
	b.publish()
}

// put writes bid into the slot at the tail and advances our tail.
func (b *BufRing) put(bid uint16) {
	slot := &b.slots[b.tail&b.mask]
	slot.Addr = uint64(uintptr(unsafe.Pointer(&b.bufMem[int(bid)*b.size])))
	slot.Len = uint32(b.size)
	slot.Bid = bid
	b.tail++
}

// publish stores the tail where the kernel reads it: the high half of the
// 32-bit word at offset 12 of slot 0, whose low half is slot 0's bid. Go
// has no 16-bit atomic store, so the whole word is stored, atomically (a
// release: the slot writes before it are visible first), with slot 0's bid
// as we last wrote it; the kernel never writes the word.
func (b *BufRing) publish() {
	word := (*uint32)(unsafe.Pointer(&b.ringMem[12]))
	atomic.StoreUint32(word, uint32(b.slots[0].Bid)|uint32(b.tail)<<16)
}

// Unmap releases the memory; the ring must be closed (or the group
// unregistered) first.
func (b *BufRing) Unmap() {
	unix.Munmap(b.ringMem)
	unix.Munmap(b.bufMem)
}
