package netpoll

import "time"

// Option configures an EventLoop; pass it to [NewEventLoop].
type Option struct {
	apply func(o *options)
}

// options is what the Option values of one EventLoop set.
type options struct {
	onPrepare      OnPrepare
	onConnect      OnConnect
	onDisconnect   OnDisconnect
	readTimeout    time.Duration
	writeTimeout   time.Duration
	idleTimeout    time.Duration // TCP keepalive, as the reference (SetIdleTimeout)
	idleClose      time.Duration // the idle close (WithIdleCloseTimeout)
	maxConnections int
	maxInputBuffer int
	protocol       Protocol // WithProtocol; see installProtocol in protocol.go
}

// defaultMaxInputBuffer bounds the unread input a connection buffers before
// the poller stops reading it (TCP flow control then slows the peer).
const defaultMaxInputBuffer = 16 << 20

// WithOnPrepare registers a callback that runs when a connection is accepted,
// before its socket is polled; the context it returns is the connection's.
func WithOnPrepare(onPrepare OnPrepare) Option {
	return Option{func(o *options) { o.onPrepare = onPrepare }}
}

// WithOnConnect registers a callback that runs, off the poller, once per new
// connection. OnRequest never runs before it returns.
func WithOnConnect(onConnect OnConnect) Option {
	return Option{func(o *options) { o.onConnect = onConnect }}
}

// WithOnDisconnect registers a callback that runs when the peer closes a
// connection, before the connection is closed.
func WithOnDisconnect(onDisconnect OnDisconnect) Option {
	return Option{func(o *options) { o.onDisconnect = onDisconnect }}
}

// WithReadTimeout sets how long a blocking read on a connection may wait for
// input before it fails with ErrReadTimeout.
func WithReadTimeout(timeout time.Duration) Option {
	return Option{func(o *options) { o.readTimeout = timeout }}
}

// WithWriteTimeout sets how long a Flush may wait for a full socket to drain
// before it fails with ErrWriteTimeout. A Flush that times out also closes
// the connection: the peer has taken nothing for that long, and what Flush
// could not send cannot be taken back.
func WithWriteTimeout(timeout time.Duration) Option {
	return Option{func(o *options) { o.writeTimeout = timeout }}
}

// WithIdleTimeout turns on TCP keepalive on every accepted connection, with
// probes about every timeout (Connection.SetIdleTimeout), as the reference
// does: a peer that vanished without a FIN is found by the kernel and its
// connection ends. It does not close a connection that is merely silent —
// Hertz and Kitex pass their own keep-alive times here and close idle
// connections themselves; WithIdleCloseTimeout does that. On a UDP
// listener, which has no keepalive, it is the sessions' idle close.
func WithIdleTimeout(timeout time.Duration) Option {
	return Option{func(o *options) { o.idleTimeout = timeout }}
}

// WithIdleCloseTimeout closes connections that have seen no input and no
// output for timeout: the defence against peers that connect and go
// silent. Checked by one coarse timing wheel per poller, so the close comes
// up to about half a second late, never early. A running OnRequest keeps
// its connection's memory until it returns. Zero means no idle close.
func WithIdleCloseTimeout(timeout time.Duration) Option {
	return Option{func(o *options) { o.idleClose = timeout }}
}

// WithMaxConnections limits the connections the EventLoop holds open at once.
// Past n, a new connection is accepted and closed at once (so it does not
// wait in the backlog), counted, and logged at most once per second.
// Zero means no limit.
func WithMaxConnections(n int) Option {
	return Option{func(o *options) { o.maxConnections = n }}
}

// WithMaxInputBuffer bounds the unread input one connection may buffer. Past
// it the poller stops reading that socket, so the peer is slowed by TCP flow
// control, until the handler releases input. A blocking read of more than n
// bytes fails at once. The default is 16 MiB; values above 1 GiB count as 1 GiB.
func WithMaxInputBuffer(n int) Option {
	return Option{func(o *options) { o.maxInputBuffer = n }}
}
