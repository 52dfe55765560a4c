package netpoll

import (
	"context"
	"net"
)

// OnPrepare runs when a connection is accepted, synchronously and before its
// socket is polled, so no input has arrived yet. The context it returns
// becomes the connection's context, handed to OnConnect and OnRequest.
type OnPrepare func(connection Connection) context.Context

// OnConnect runs once for a new connection, off the poller goroutine. It may
// read, write and close the connection. OnRequest never runs before it
// returns; the context it returns replaces the connection's context.
type OnConnect func(ctx context.Context, connection Connection) context.Context

// OnRequest handles input. It runs on a runner goroutine whenever unread
// input exists, never twice at once for one connection, and again while
// unread input remains and the previous call consumed some. A handler that
// returns without reading anything is not called again until more input
// arrives. The returned error is ignored.
type OnRequest func(ctx context.Context, connection Connection) error

// OnDisconnect runs once when the peer closes the connection, before the
// library closes it.
type OnDisconnect func(ctx context.Context, connection Connection)

// CloseCallback runs exactly once after the connection is closed, by either
// side. The returned error is ignored.
type CloseCallback func(connection Connection) error

// EventLoop is a server: it accepts connections from a listener and serves
// them with OnRequest.
type EventLoop interface {
	// Serve accepts and serves connections from ln. It blocks until
	// Shutdown is called (then it returns nil) or the listener fails.
	Serve(ln net.Listener) error

	// Shutdown stops accepting, closes idle connections, and waits for busy
	// ones to finish their current request and close, until ctx ends (then
	// it returns ctx.Err()). While busy connections remain it looks again
	// after one millisecond per busy connection, at least 50 ms and at most
	// 1 s, as cloudwego/netpoll does, closing those it then finds idle. The
	// pollers keep running for other users.
	Shutdown(ctx context.Context) error
}

// NewEventLoop returns an EventLoop that serves every connection with
// onRequest, configured by ops. onRequest may be nil when OnConnect takes
// the connection over.
//
// The first call in a process logs one Info line naming this library and
// its version ("netpoll: github.com/ccb70390/netpoll in use"), so that a
// service switched from cloudwego/netpoll can see which library it runs.
func NewEventLoop(onRequest OnRequest, ops ...Option) (EventLoop, error) {
	announce()
	o := &options{maxInputBuffer: defaultMaxInputBuffer}
	for _, op := range ops {
		if op.apply != nil {
			op.apply(o)
		}
	}
	if o.protocol != nil {
		if err := o.installProtocol(onRequest); err != nil {
			return nil, err
		}
	}
	return newServer(onRequest, o), nil
}
