package netpoll

import "github.com/ccb70390/netpoll/internal/poller"

// The lower layer, exported for programs written against the reference
// library. Most users never need it: EventLoop, the dialers and Connection
// cover what it does.

// Poll watches file descriptors and calls their FDOperator when they are
// ready: epoll on Linux, kqueue on BSD and macOS.
type Poll = poller.Poll

// PollEvent is an operation of Poll.Control.
type PollEvent = poller.PollEvent

// FDOperator holds the callbacks a Poll calls for one file descriptor.
type FDOperator = poller.FDOperator

// The operations of Poll.Control.
const (
	// PollReadable starts watching a descriptor for input and hang-up.
	PollReadable = poller.PollReadable
	// PollWritable starts watching a descriptor for writability, as a dial in
	// progress needs.
	PollWritable = poller.PollWritable
	// PollDetach stops watching a descriptor.
	PollDetach = poller.PollDetach
	// PollR2RW adds writability to what is watched, when a socket is full.
	PollR2RW = poller.PollR2RW
	// PollRW2R stops watching writability again.
	PollRW2R = poller.PollRW2R
)
