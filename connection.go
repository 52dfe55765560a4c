package netpoll

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpoll/internal/sys"
)

// Connection is a non-blocking connection with zero-copy input and output.
// It is a full net.Conn: Read, Write, Close and the deadlines keep the
// net.Conn contract, and any number of goroutines may call them at once.
// Reader and Writer give the zero-copy API, which allows one reader and one
// writer at a time; the connection itself also has their methods.
type Connection interface {
	net.Conn

	// Reader returns the zero-copy input side. Its methods block until
	// enough input arrives, the read timeout passes, or the peer closes.
	Reader() Reader
	// Writer returns the zero-copy output side. Flush sends what was written.
	Writer() Writer

	// IsActive reports whether the connection is still open.
	IsActive() bool
	// SetReadTimeout bounds how long each blocking read may wait. Zero or
	// less means no bound. It is separate from SetReadDeadline.
	SetReadTimeout(timeout time.Duration) error
	// SetWriteTimeout bounds how long each Flush may wait for the socket to
	// drain; a Flush that times out closes the connection. Zero or less
	// means no bound.
	SetWriteTimeout(timeout time.Duration) error
	// SetIdleTimeout turns on TCP keepalive probes about every timeout
	// (whole seconds, at least one), as the reference does; zero or less
	// does nothing. It does not close a silent connection: see
	// WithIdleCloseTimeout. On a UDP session it is the session's idle close.
	SetIdleTimeout(timeout time.Duration) error
	// SetOnRequest sets the handler called when input arrives.
	SetOnRequest(on OnRequest) error
	// AddCloseCallback registers callback to run once after the connection
	// is closed, by either side. Added after the close, it runs at once.
	AddCloseCallback(callback CloseCallback) error
}

// Conn is a net.Conn that exposes its file descriptor.
type Conn interface {
	net.Conn

	// Fd returns the connection's file descriptor.
	Fd() (fd int)
}

// connection is every Connection of the library: accepted by a server,
// dialed, or made from a file descriptor; under a TLS session or as one
// peer of a UDP listener too, with a layer (connection_layer.go). Its
// lifecycle is the life word, drawn in connection_close.go.
type connection struct {
	// Set before the connection is published, then read-only.
	fd         int
	network    *string // interned: see internNetwork
	operator   *poller.FDOperator
	owner      Connection // handed to callbacks: c, or the layer's Connection around c
	layer      layer      // nil for a plain connection; see connection_layer.go
	server     *server    // nil unless accepted by a server
	handleFunc func()     // c.handle for a custom runner, made on first use; see runHandler
	peer4      uint64     // an IPv4 peer, packed by packIPv4; 0 when the address is elsewhere (see remoteAddrLocked)
	stats      *counters  // the poller's counters once registered

	// The user's buffers: the socket's own (inBuf, outBuf) for a plain
	// connection, the layer's otherwise. inputBuffer: reader side the
	// user, writer side the poller (or the layer); outputBuffer: the
	// goroutine holding writerState.
	inputBuffer  *LinkBuffer
	outputBuffer *LinkBuffer
	// The socket's buffers, in the connection's own allocation: one object
	// fewer each, and the headers sit next to the fields every read touches.
	inBuf, outBuf LinkBuffer

	// life is the lifecycle: open, closing, closed, and the holders that
	// keep the fd and the buffers; see connection_close.go.
	life       atomic.Int64
	closed     lazyChan    // closed by the first close; wakes every waiter
	userClosed atomic.Bool // set by the user's first Close
	// Input state, not lifecycle: the peer's EOF (or a reset) was read and
	// no more input will come; a non-blocking connect is in progress.
	peerClosed   atomic.Bool
	connecting   atomic.Bool
	callbacksRan bool // guarded by mu; the close callbacks ran, later ones run at once
	counted      bool // counted in stats.open; set by register
	inputLent    bool // owned by the reader side: slices handed out since the last Release
	outputLent   bool // owned by the writer side: Malloc memory handed out since the last Flush

	// Read side.
	readerState  atomic.Int32 // sideFree, sideBusy or sideClosed; see lockReader
	bookSize     int32        // owned by the poller goroutine: size of the next read
	waitReadSize atomic.Int64 // bytes a blocked reader waits for; 0 when none waits
	readTrigger  lazyChan     // a blocked reader waits on it; capacity 1
	readLock     lazyChan     // serialises the net.Conn Read callers; capacity 1
	readTimeout  atomic.Int64 // nanoseconds, per blocking call
	readDeadline deadline
	readTimer    *time.Timer // owned by the goroutine holding readerState
	inputPaused  atomic.Bool // the poller stopped reading: too much unread input
	maxInput     int32       // unread input at which the poller stops reading

	// Write side.
	writerState   atomic.Int32
	trackIndex    int32    // the connection's place in its server's list; guarded by server.mu
	writeTrigger  lazyChan // a blocked flusher or dialer waits on it; capacity 1
	writeLock     lazyChan // serialises the net.Conn Write callers; capacity 1
	writeTimeout  atomic.Int64
	writeDeadline deadline
	writeTimer    *time.Timer // owned by the goroutine holding writerState
	firstSlice    [1][]byte   // owned by the goroutine holding writerState; empty between writes

	// Handler state. pending counts input events since the handler last
	// looked; the goroutine that moves it from 0 starts the handler.
	pending        atomic.Int32
	disconnect     atomic.Int32 // disconnectPending, disconnectRunning or disconnectDone
	connectPending atomic.Bool  // OnConnect has not returned yet; cleared by the handler after it
	idleWatched    atomic.Bool  // filed in its poller's idle wheel, or about to be; see startIdleWatch
	ctx            atomic.Pointer[context.Context]
	onRequest      atomic.Pointer[OnRequest]
	onConnect      atomic.Pointer[OnConnect]
	onDisconnect   atomic.Pointer[OnDisconnect]

	// Idle timeout.
	idleClose  atomic.Int64 // nanoseconds without traffic before the idle close; 0 off
	lastActive atomic.Int64 // coarse unix nanoseconds of the last input or output

	mu   sync.Mutex
	cold *connCold // guarded by mu; nil until needed
}

// connCold holds what a connection needs only once in a while, so that an
// idle connection does not carry it: made on first use, guarded by c.mu.
type connCold struct {
	closeCallbacks []CloseCallback
	localAddr      net.Addr // looked up on first use
	remoteAddr     net.Addr // set when known at setup and not an IPv4 peer, else made on first use
}

// coldLocked returns c.cold, making it on first use. c.mu must be held.
func (c *connection) coldLocked() *connCold {
	if c.cold == nil {
		c.cold = new(connCold)
	}
	return c.cold
}

// States of readerState and writerState.
const (
	sideFree   int32 = iota // no goroutine uses the side
	sideBusy                // one goroutine uses it
	sideClosed              // the connection closed and the side's buffer was disposed of
)

// maxBookSize bounds one read: larger reads stop paying for themselves.
const maxBookSize = 256 << 10

// init prepares c for fd. It allocates what every connection needs and
// nothing more: the buffers hold no memory until data arrives.
func (c *connection) init(fd int, network string, owner Connection) {
	c.fd = fd
	c.network = internNetwork(network)
	c.owner = owner
	c.setMaxInput(defaultMaxInputBuffer)
	c.inputBuffer = &c.inBuf
	c.outputBuffer = &c.outBuf
	c.bookSize = int32(readBufferSize.Load())
	c.stats = &detachedCounters
	c.ctx.Store(&backgroundContext)
}

// setMaxInput sets the unread input at which the poller stops reading,
// capped at maxInputCap: the field is 32 bits wide to keep idle connections
// small, and more unread input than that on one connection is a bug or an
// attack.
func (c *connection) setMaxInput(n int) {
	c.maxInput = int32(min(n, maxInputCap))
}

// maxInputCap bounds WithMaxInputBuffer: 1 GiB.
const maxInputCap = 1 << 30

// backgroundContext is every connection's context until OnPrepare or
// OnConnect gives it another, shared so an idle connection holds none.
var backgroundContext = context.Background()

// lazyChan is a channel made on first use. Most connections never block a
// goroutine, so they never pay the 96 bytes a channel costs. Safe for
// concurrent use.
type lazyChan struct {
	p atomic.Pointer[chan struct{}]
}

// get returns the channel, making it with capacity size if it does not exist.
func (l *lazyChan) get(size int) chan struct{} {
	if p := l.p.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{}, size)
	if l.p.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *l.p.Load()
}

// signal puts a token in the channel if it exists and has room. A waiter
// makes the channel before it looks at the condition it waits for, so a
// signal skipped because the channel did not exist yet cannot be missed.
func (l *lazyChan) signal() {
	if p := l.p.Load(); p != nil {
		select {
		case *p <- struct{}{}:
		default:
		}
	}
}

// register binds c to a poller and starts watching for input. With
// connecting set, it watches for writability instead (a dial in progress).
func (c *connection) register(p *poller.Poller, connecting bool) error {
	op := p.Alloc()
	op.FD = c.fd
	poller.SetOwner(op, (*connEvents)(c))
	// Everything close reads is set before Control: once the fd is armed,
	// the poller may see an EOF and the handler close c at once.
	c.operator = op
	c.stats = countersOf(p)
	c.counted = true
	c.stats.open.Add(1)
	event := poller.PollReadable
	if connecting {
		event = poller.PollWritable
	}
	if err := op.Control(event); err != nil {
		c.stats.open.Add(-1)
		c.counted = false
		c.stats = &detachedCounters
		op.Free()
		c.operator = nil
		return err
	}
	// An idle timeout set before polling (in OnPrepare) starts now.
	c.startIdleWatch()
	return nil
}

// connEvents is a connection seen by its poller: the exported methods the
// poller's Owner interface needs, kept off the connection so they never
// show on TCPConnection and UnixConnection, which embed it.
type connEvents connection

func (e *connEvents) OnReadable(p poller.Poll) error { return (*connection)(e).onReadable(p) }
func (e *connEvents) OnWritable(p poller.Poll) error { return (*connection)(e).onWritable(p) }
func (e *connEvents) OnHangup(p poller.Poll) error   { return (*connection)(e).onHangup(p) }

// The poller.Receiver side, for the io_uring engine's receives
// (connection_socket.go: onData, streaming). An armed receive is a holder
// of the fd.
var _ poller.Receiver = (*connEvents)(nil)

func (e *connEvents) OnData(_ poller.Poll, data []byte, more bool, err error) {
	(*connection)(e).onData(data, more, err)
}
func (e *connEvents) Streaming(reading bool) bool { return (*connection)(e).streaming(reading) }
func (e *connEvents) HoldFD() bool                { return (*connection)(e).acquireFD() }
func (e *connEvents) ReleaseFD()                  { (*connection)(e).releaseOnPoller() }

// Fd returns the connection's file descriptor.
func (c *connection) Fd() int { return c.fd }

// Reader returns the connection's zero-copy input side: c itself, whose
// methods read through the layer, if any.
func (c *connection) Reader() Reader { return c }

// Writer returns the connection's zero-copy output side: c itself, whose
// methods write through the layer, if any.
func (c *connection) Writer() Writer { return c }

// SetReadTimeout bounds each blocking read; zero or less means no bound.
func (c *connection) SetReadTimeout(timeout time.Duration) error {
	c.readTimeout.Store(int64(max(timeout, 0)))
	return nil
}

// SetWriteTimeout bounds each Flush; zero or less means no bound.
func (c *connection) SetWriteTimeout(timeout time.Duration) error {
	c.writeTimeout.Store(int64(max(timeout, 0)))
	return nil
}

// SetDeadline sets the read and write deadlines, as net.Conn does.
func (c *connection) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for reads, including ones already
// blocked. A zero t clears it.
func (c *connection) SetReadDeadline(t time.Time) error {
	if c.closingStarted() {
		return c.opError("set", Exception(ErrConnClosed, ""))
	}
	c.readDeadline.set(t)
	return nil
}

// SetWriteDeadline sets the deadline for writes, including ones already
// blocked. A zero t clears it.
func (c *connection) SetWriteDeadline(t time.Time) error {
	if c.closingStarted() {
		return c.opError("set", Exception(ErrConnClosed, ""))
	}
	c.writeDeadline.set(t)
	return nil
}

// SetOnRequest sets the handler for input; input already buffered is
// handled at once.
func (c *connection) SetOnRequest(onRequest OnRequest) error {
	if onRequest == nil {
		c.onRequest.Store(nil)
		return nil
	}
	c.onRequest.Store(&onRequest)
	if c.Len() > 0 || c.inBuf.Len() > 0 || c.inputEnded() {
		c.kickHandler()
	}
	return nil
}

// SetOnConnect sets a callback that runs once, off the poller, before any
// OnRequest; on an open connection it runs at once.
func (c *connection) SetOnConnect(onConnect OnConnect) error {
	if onConnect == nil {
		return nil
	}
	c.onConnect.Store(&onConnect)
	c.connectPending.Store(true)
	c.kickHandler()
	return nil
}

// SetOnDisconnect sets the callback that runs when the peer closes.
func (c *connection) SetOnDisconnect(onDisconnect OnDisconnect) error {
	if onDisconnect == nil {
		c.onDisconnect.Store(nil)
		return nil
	}
	c.onDisconnect.Store(&onDisconnect)
	return nil
}

// SetKeepAlive turns on TCP keepalive probes every second seconds.
func (c *connection) SetKeepAlive(second int) error {
	if !c.acquireFD() {
		return Exception(ErrConnClosed, "set keepalive")
	}
	defer c.releaseFD()
	return sys.SetKeepAlive(c.fd, second)
}

// opError wraps err for a net.Conn method the way package net does, so
// callers can read Op and Addr and errors.Is still finds the cause.
func (c *connection) opError(op string, err error) error {
	if err == nil {
		return nil
	}
	var local net.Addr
	c.mu.Lock()
	if c.cold != nil {
		local = c.cold.localAddr
	}
	remote := c.remoteAddrLocked()
	c.mu.Unlock()
	return &net.OpError{Op: op, Net: *c.network, Source: local, Addr: remote, Err: err}
}
