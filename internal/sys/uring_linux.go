package sys

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The io_uring system calls and the kernel's structures, as the uapi header
// <linux/io_uring.h> lays them out. Only what the poller uses is here.

// Operation codes (enum io_uring_op).
const (
	UringOpNop         = 0
	UringOpPollAdd     = 6
	UringOpAsyncCancel = 14
	UringOpRecv        = 27
)

// SQE and CQE flags the poller uses.
const (
	UringSQEBufferSelect  = 1 << 5 // IOSQE_BUFFER_SELECT: take a buffer from buf_group
	UringRecvMultishot    = 1 << 1 // IORING_RECV_MULTISHOT, in ioprio (6.0)
	UringCQEFBuffer       = 1 << 0 // IORING_CQE_F_BUFFER: the buffer id is flags>>16
	UringCQEFMore         = 1 << 1 // IORING_CQE_F_MORE: the request stays armed
	UringCQEFSockNonempty = 1 << 2 // IORING_CQE_F_SOCK_NONEMPTY: input was left in the socket (6.0 for receives)
	UringCQEFBufMore      = 1 << 4 // IORING_CQE_F_BUF_MORE: the kernel goes on filling the buffer (6.12)
	UringCQEBufferShift   = 16
)

// Setup flags (io_uring_params.flags).
const (
	UringSetupCQSize      = 1 << 3 // cq_entries is set by the caller
	UringSetupSubmitAll   = 1 << 7 // do not stop a batch at the first failed SQE (5.18)
	UringSetupCoopTaskrun = 1 << 8 // no interrupt of a running submitter to post completions (5.19)
)

// Feature flags the kernel reports in io_uring_params.features.
const (
	UringFeatSingleMmap = 1 << 0 // SQ and CQ rings share one mapping (5.4)
	UringFeatNoDrop     = 1 << 1 // completions are never dropped on CQ overflow (5.5)
)

// io_uring_enter flags.
const (
	UringEnterGetEvents = 1 << 0
)

// io_uring_register opcodes.
const (
	uringRegisterEventfd    = 4
	uringRegisterProbe      = 8
	uringRegisterPbufRing   = 22
	uringRegisterSyncCancel = 24
)

// Ring flags the kernel and the application share.
const (
	UringSQCQOverflow            = 1 << 1 // sq flags: completions wait in the overflow list
	UringCQEventfdDisabled       = 1 << 0 // cq flags: no eventfd signal per completion
	uringOpSupported             = 1 << 0 // io_uring_probe_op.flags
	uringOffSQRing         int64 = 0
	uringOffCQRing         int64 = 0x8000000
	uringOffSQEs           int64 = 0x10000000
)

// UringSQE is a submission queue entry (struct io_uring_sqe, 64 bytes).
type UringSQE struct {
	Opcode      uint8
	Flags       uint8
	Ioprio      uint16
	Fd          int32
	Off         uint64
	Addr        uint64
	Len         uint32
	OpFlags     uint32 // poll32_events, msg_flags, cancel_flags …
	UserData    uint64
	BufIndex    uint16 // buf_index or buf_group
	Personality uint16
	SpliceFdIn  int32
	Addr3       uint64
	_           uint64
}

// UringCQE is a completion queue entry (struct io_uring_cqe, 16 bytes).
type UringCQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// uringSQOffsets is struct io_sqring_offsets.
type uringSQOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1 uint32
	UserAddr                                                        uint64
}

// uringCQOffsets is struct io_cqring_offsets.
type uringCQOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1 uint32
	UserAddr                                                        uint64
}

// uringParams is struct io_uring_params (120 bytes).
type uringParams struct {
	SQEntries, CQEntries, Flags, SQThreadCPU, SQThreadIdle, Features, WqFd uint32
	Resv                                                                   [3]uint32
	SQOff                                                                  uringSQOffsets
	CQOff                                                                  uringCQOffsets
}

// Ring is one io_uring instance, mapped into this process. Its fields point
// into memory the kernel shares; they are read and written with sync/atomic
// where the kernel may write concurrently (see package poller).
type Ring struct {
	Fd       int
	Features uint32
	// The submission ring: head is the kernel's, tail ours.
	SQHead, SQTail, SQFlags *uint32
	SQMask, SQEntries       uint32
	SQEs                    []UringSQE
	// The completion ring: tail is the kernel's, head ours.
	CQHead, CQTail, CQFlags *uint32
	CQMask                  uint32
	CQEs                    []UringCQE

	sqMem, cqMem, sqeMem []byte
}

// UringSetup creates a ring of sqEntries submissions and cqEntries
// completions and maps it. It fails with the kernel's error (ENOSYS on an old
// kernel, EPERM where kernel.io_uring_disabled or a seccomp filter refuses
// it), or ENOTSUP when the kernel lacks the single mapping of SQ and CQ
// rings (5.4) or the no-drop guarantee (5.5).
func UringSetup(sqEntries, cqEntries uint32, flags uint32) (*Ring, error) {
	params := uringParams{Flags: flags | UringSetupCQSize, CQEntries: cqEntries}
	r1, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(sqEntries), uintptr(unsafe.Pointer(&params)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	r := &Ring{Fd: int(r1), Features: params.Features}
	if params.Features&(UringFeatSingleMmap|UringFeatNoDrop) != UringFeatSingleMmap|UringFeatNoDrop {
		unix.Close(r.Fd)
		return nil, os.NewSyscallError("io_uring_setup", unix.ENOTSUP)
	}
	if err := r.mapRings(&params); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// mapRings maps the rings and the SQE array and points the fields into them.
// The SQ array is filled once with the identity, so SQE i is always slot i.
func (r *Ring) mapRings(params *uringParams) error {
	sq, cq := &params.SQOff, &params.CQOff
	ringLen := max(sq.Array+params.SQEntries*4, cq.Cqes+params.CQEntries*uint32(unsafe.Sizeof(UringCQE{})))
	mem, err := unix.Mmap(r.Fd, uringOffSQRing, int(ringLen), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	r.sqMem, r.cqMem = mem, mem // one mapping (UringFeatSingleMmap)
	sqeLen := int(params.SQEntries) * int(unsafe.Sizeof(UringSQE{}))
	sqes, err := unix.Mmap(r.Fd, uringOffSQEs, sqeLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	r.sqeMem = sqes
	word := func(off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	r.SQHead, r.SQTail, r.SQFlags = word(sq.Head), word(sq.Tail), word(sq.Flags)
	r.SQMask, r.SQEntries = *word(sq.RingMask), *word(sq.RingEntries)
	r.CQHead, r.CQTail, r.CQFlags = word(cq.Head), word(cq.Tail), word(cq.Flags)
	r.CQMask = *word(cq.RingMask)
	r.SQEs = unsafe.Slice((*UringSQE)(unsafe.Pointer(&sqes[0])), params.SQEntries)
	r.CQEs = unsafe.Slice((*UringCQE)(unsafe.Pointer(&mem[cq.Cqes])), *word(cq.RingEntries))
	array := unsafe.Slice(word(sq.Array), params.SQEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	return nil
}

// Close unmaps the ring and closes its fd; the kernel cancels what is still
// in flight.
func (r *Ring) Close() error {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
	}
	if r.sqMem != nil {
		unix.Munmap(r.sqMem)
	}
	r.sqMem, r.cqMem, r.sqeMem, r.SQEs, r.CQEs = nil, nil, nil, nil, nil
	return wrap("close", unix.Close(r.Fd))
}

// Enter submits toSubmit entries and, with UringEnterGetEvents, waits for
// minComplete completions. A waiting call goes through Syscall6, so a poller
// blocked in the kernel releases its P; one that cannot block uses
// RawSyscall6. An interrupted wait returns (0, nil).
func (r *Ring) Enter(toSubmit, minComplete, flags uint32) (int, error) {
	var n uintptr
	var e unix.Errno
	if flags&UringEnterGetEvents != 0 && minComplete > 0 {
		n, _, e = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.Fd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
	} else {
		n, _, e = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.Fd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
	}
	return enterResult(n, e)
}

// WaitHoldingP waits for one completion like Enter(0, 1,
// UringEnterGetEvents), but through RawSyscall6, so the calling goroutine
// keeps its P (see EpollWaitHoldingP).
func (r *Ring) WaitHoldingP() (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.Fd), 0, 1, UringEnterGetEvents, 0, 0)
	return enterResult(n, e)
}

func enterResult(n uintptr, e unix.Errno) (int, error) {
	switch e {
	case 0:
		return int(n), nil
	case unix.EINTR:
		return 0, nil
	default:
		return 0, os.NewSyscallError("io_uring_enter", e)
	}
}

// RegisterEventfd makes the kernel signal fd on every completion it posts
// (unless UringCQEventfdDisabled is set in the CQ flags).
func (r *Ring) RegisterEventfd(fd int) error {
	v := int32(fd)
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.Fd), uringRegisterEventfd, uintptr(unsafe.Pointer(&v)), 1, 0, 0)
	if e != 0 {
		return os.NewSyscallError("io_uring_register", e)
	}
	return nil
}

// uringSyncCancelReg is struct io_uring_sync_cancel_reg.
type uringSyncCancelReg struct {
	Addr    uint64 // the user_data to cancel
	Fd      int32
	Flags   uint32
	Timeout unix.Timespec // {-1, -1}: no limit
	Opcode  uint8
	_       [7]uint8
	_       [3]uint64
}

// SyncCancel cancels the request whose user_data is userData and returns
// once it has completed (IORING_REGISTER_SYNC_CANCEL, 6.0); its last
// completion is then in the ring or on its way. ENOENT, a request already
// done, is not an error.
func (r *Ring) SyncCancel(userData uint64) error {
	reg := uringSyncCancelReg{Addr: userData, Fd: -1, Timeout: unix.Timespec{Sec: -1, Nsec: -1}}
	for {
		_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.Fd), uringRegisterSyncCancel, uintptr(unsafe.Pointer(&reg)), 1, 0, 0)
		switch e {
		case 0, unix.ENOENT, unix.EALREADY:
			return nil
		case unix.EINTR:
			continue
		}
		return os.NewSyscallError("io_uring_register sync cancel", e)
	}
}

// uringProbeOps is how many operation codes a probe asks about.
const uringProbeOps = 64

// uringProbe is struct io_uring_probe with its ops array.
type uringProbe struct {
	LastOp uint8
	OpsLen uint8
	_      uint16
	_      [3]uint32
	Ops    [uringProbeOps]struct {
		Op    uint8
		_     uint8
		Flags uint16
		_     uint32
	}
}

// Supports reports, through IORING_REGISTER_PROBE (5.6), whether the kernel
// implements every one of ops; a failed probe is returned as the error.
func (r *Ring) Supports(ops ...uint8) error {
	var probe uringProbe
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.Fd), uringRegisterProbe,
		uintptr(unsafe.Pointer(&probe)), uringProbeOps, 0, 0)
	if e != 0 {
		return os.NewSyscallError("io_uring_register probe", e)
	}
	for _, op := range ops {
		if op > probe.LastOp || int(op) >= uringProbeOps || probe.Ops[op].Flags&uringOpSupported == 0 {
			return os.NewSyscallError("io_uring_register probe", unix.ENOTSUP)
		}
	}
	return nil
}
