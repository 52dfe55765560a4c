package poller

import (
	"sync"
	"sync/atomic"
)

// FDOperator binds one file descriptor to the callbacks its poller runs. Get one
// from [Poll.Alloc], set FD and the callbacks, then register it with
// [FDOperator.Control]; the fields must not change while it is registered.
//
// On readiness the poller runs OnRead if set, else the Inputs path: it reads
// with readv into the buffers Inputs returns (which must hold at least one
// non-empty buffer) and reports the byte count to InputAck. On writability it
// runs OnWrite if set, else the Outputs path: writev of what Outputs returns,
// then OutputAck. All callbacks are called on the poller goroutine; they must not
// block. Their errors are the owner's to act on: an error from InputAck or
// OutputAck hangs the operator up, one from OnRead, OnWrite or OnHup is ignored.
//
// Lifecycle: Alloc, Control(PollReadable or PollWritable), ...,
// Control(PollDetach), close the fd, Free. Detaching before close matters: the
// kernel keeps an epoll registration while any duplicate of the fd is open.
type FDOperator struct {
	// FD is the file descriptor this operator watches.
	FD int

	// OnRead, if set, is called when FD is readable or hung up.
	OnRead func(p Poll) error
	// OnWrite, if set, is called when FD is writable.
	OnWrite func(p Poll) error
	// OnHup, if set, is called when the peer hung up or the socket failed,
	// after OnRead or the Inputs path had the chance to read what is left. With
	// OnRead set the operator stays registered, since a half-closed peer may
	// still take a reply, and OnHup is called on every report until the owner
	// detaches; without OnRead the poller detaches FD first and calls OnHup once.
	OnHup func(p Poll) error

	// Inputs returns the buffers to read into; vs is scratch space of the poller
	// the callee may fill and return. The poller does not keep rs after the read.
	Inputs func(vs [][]byte) (rs [][]byte)
	// InputAck reports that n > 0 bytes were read into the Inputs buffers.
	InputAck func(n int) (err error)
	// Outputs returns the buffers to write, like Inputs.
	Outputs func(vs [][]byte) (rs [][]byte, supportZeroCopy bool)
	// OutputAck reports that n bytes of the Outputs buffers were written.
	OutputAck func(n int) (err error)

	// owner, if set, receives the events in place of OnRead, OnWrite and
	// OnHup; see SetOwner.
	owner Owner

	// Set once when the operator's chunk is created.
	poller *Poller
	index  int32

	// gen tags registrations so a stale event is dropped (see operatorTable).
	// Atomic. Its low bit is set while the operator is free; Alloc and Free add 1,
	// a detach adds 2, and every Control reads it with an atomic add so the
	// callbacks written before the Control are published to the poller goroutine.
	gen atomic.Uint32

	// mu orders the Control calls of different goroutines, so the kernel's
	// registration always matches interest. Taken before Poller.fdMu.
	mu sync.Mutex
	// Guarded by mu.
	interest   interest
	registered bool
	uring      uringOp // the io_uring engine's view of the registration
}

// Owner receives an operator's events in place of its OnRead, OnWrite and
// OnHup fields, as if all three were set. A connection registers this way
// because three method values would cost it three heap objects (48 bytes)
// for as long as it lives.
type Owner interface {
	OnReadable(p Poll) error
	OnWritable(p Poll) error
	OnHangup(p Poll) error
}

// Receiver is an Owner that can take its input as bytes rather than as
// readiness. On the io_uring engine the kernel receives for it (a multishot
// receive into the poller's provided buffers) while it has read interest,
// and the poller hands it the bytes; OnReadable is then called only for
// errors and hang-ups seen while read interest is off, and, while its input
// is a stream (Streaming), to read it as under epoll. The epoll engine
// treats a Receiver as a plain Owner.
type Receiver interface {
	Owner
	// OnData is called with bytes received (data is the poller's memory,
	// valid only during the call), with neither at the peer's EOF, or with
	// the receive's error. more says the socket held input beyond data: the
	// peer sends faster than one receive takes. Called on the poller
	// goroutine; must not block.
	OnData(p Poll, data []byte, more bool, err error)
	// Streaming reports whether the owner's input comes as a stream, in
	// pieces as large as it reads: the io_uring engine then polls and has
	// the owner read it (OnReadable) straight into its own buffer, rather
	// than receive it into the poller's buffers and copy it. reading says
	// which the poller does now, so the answer can lag behind a change (a
	// stream that pauses for one small piece is still a stream). Called on
	// the poller goroutine, with or without the operator's lock held; must
	// not block or call Control.
	Streaming(reading bool) bool
	// HoldFD keeps the fd open, and the owner alive, while the kernel holds
	// a receive on it; it reports false once the owner is closing, and then
	// no receive is armed. Called with the operator's lock held; must not
	// block or call Control.
	HoldFD() bool
	// ReleaseFD ends a HoldFD when the receive's last completion arrived.
	// Called on the poller goroutine.
	ReleaseFD()
}

// SetOwner makes owner receive op's events. Like the callback fields, it is
// set before the operator is registered; Free clears it.
func SetOwner(op *FDOperator, owner Owner) {
	op.owner = owner
}

// reads reports whether op's owner reads for itself (OnRead or an Owner).
func (op *FDOperator) reads() bool {
	return op.OnRead != nil || op.owner != nil
}

// interest is the set of readiness kinds an operator is registered for.
type interest uint8

const (
	interestRead interest = 1 << iota
	interestWrite
)

// Control changes the registration of op with its poller; see [Poll.Control].
// Safe for concurrent use.
func (op *FDOperator) Control(event PollEvent) error {
	return op.poller.Control(op, event)
}

// Free returns op to its poller; see [Poll.Free]. Safe for concurrent use.
func (op *FDOperator) Free() {
	op.poller.Free(op)
}

// Poller returns the poller op belongs to.
func (op *FDOperator) Poller() Poll {
	return op.poller
}

// publish returns the current generation through an atomic read-modify-write,
// which is a release: callback fields written before it are visible to the
// poller goroutine once it loads gen for an event.
func (op *FDOperator) publish() uint32 {
	return op.gen.Add(0)
}

// reset clears what the previous owner set. Called by promote, after the
// operator sat out a whole dispatch batch so the poller no longer reads it,
// and again by Alloc.
func (op *FDOperator) reset() {
	op.FD = -1
	op.OnRead, op.OnWrite, op.OnHup = nil, nil, nil
	op.owner = nil
	op.Inputs, op.InputAck = nil, nil
	op.Outputs, op.OutputAck = nil, nil
	op.interest, op.registered = 0, false
}

// chunkShift sets how many operators one chunk holds (1<<chunkShift).
const chunkShift = 7

// chunk is a block of operators allocated once and never freed, so an operator
// the kernel still names (by index in epoll data, by pointer in kqueue udata)
// always stays reachable through the poller.
type chunk [1 << chunkShift]FDOperator

// operatorTable owns the operators of one poller.
//
// Reuse is deferred: Free puts an operator on the pending list, and the poller
// goroutine moves pending operators to the free list only after the batch it
// is dispatching (promote). A batch fetched before a Detach may still name a
// freed operator; by then its generation differs from the event's tag, so the
// event is dropped, and no new owner can be writing the operator's fields while
// the poller reads them.
type operatorTable struct {
	// chunks is replaced (copy on write) under mu when the table grows, and read
	// without a lock by the poller goroutine for every event. Atomic.
	chunks atomic.Pointer[[]*chunk]
	// hasPending tells the poller goroutine, without taking mu, that promote has
	// work. Atomic.
	hasPending atomic.Bool

	// mu guards the lists and growth. Never held with FDOperator.mu.
	mu sync.Mutex
	// Guarded by mu.
	free    []int32
	pending []int32
}

// get returns the operator at index, or nil if there is none.
func (t *operatorTable) get(index int32) *FDOperator {
	chunks := t.chunks.Load()
	if chunks == nil || index < 0 || int(index>>chunkShift) >= len(*chunks) {
		return nil
	}
	return &(*chunks)[index>>chunkShift][index&(1<<chunkShift-1)]
}

// alloc takes a free operator, growing the table by one chunk if none is free.
func (t *operatorTable) alloc(p *Poller) *FDOperator {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.free) == 0 {
		t.growLocked(p)
	}
	index := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	op := t.get(index)
	op.reset()
	op.gen.Add(1) // odd (free) to even (in use)
	return op
}

// growLocked adds a chunk of free operators.
func (t *operatorTable) growLocked(p *Poller) {
	var old []*chunk
	if cur := t.chunks.Load(); cur != nil {
		old = *cur
	}
	c := new(chunk)
	base := int32(len(old)) << chunkShift
	for i := len(c) - 1; i >= 0; i-- {
		c[i].poller = p
		c[i].index = base + int32(i)
		c[i].gen.Store(1)
		t.free = append(t.free, c[i].index)
	}
	grown := append(old[:len(old):len(old)], c)
	t.chunks.Store(&grown)
}

// release marks op free and queues it for reuse after the current batch. A
// second release of the same operator is ignored.
func (t *operatorTable) release(op *FDOperator) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if op.gen.Load()&1 != 0 {
		return
	}
	op.gen.Add(1)
	t.pending = append(t.pending, op.index)
	t.hasPending.Store(true)
}

// promote makes the operators freed before the end of the batch just
// dispatched reusable. Called on the poller goroutine between batches.
func (t *operatorTable) promote() {
	if !t.hasPending.Load() {
		return
	}
	t.mu.Lock()
	for _, index := range t.pending {
		// Drop the callbacks now, not at the next Alloc: they hold the
		// previous owner (a closed connection and its buffers) reachable for
		// as long as the operator sits free.
		t.get(index).reset()
	}
	t.free = append(t.free, t.pending...)
	t.pending = t.pending[:0]
	t.hasPending.Store(false)
	t.mu.Unlock()
}
