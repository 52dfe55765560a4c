package netpoll

import "time"

// A layer sits between a connection's socket and its user where the bytes
// the user reads and writes are not the socket's: TLS decrypts and
// encrypts, a UDP session keeps datagram boundaries over a shared socket.
//
// The front end — the Reader, Writer and net.Conn methods of connection
// (connection_read.go, connection_write.go), the handler protocol
// (connection_handler.go) and the lifecycle (connection_close.go) — is
// written once, for every transport, and asks the layer only where the
// transports differ. A plain TCP or unix connection has no layer (nil) and
// takes the direct path, so it pays no indirect call.
//
// Under a layer, inputBuffer and outputBuffer are the user's buffers; the
// socket's own input is inBuf (for UDP they are the same buffer: the
// session's window onto the current datagram).
type layer interface {
	// buffered returns the input the user can read now (UDP first moves
	// the next datagram into an empty window). Safe for concurrent use.
	buffered() int
	// refill moves what the socket brought into the user's input buffer:
	// TLS decrypts the whole records buffered, UDP moves the next datagram
	// into an empty window. It never blocks. The caller holds the reader
	// side.
	refill() error
	// released runs after the reader released input.
	released()
	// await blocks until the socket brings what the user's read of n bytes
	// needs next, no more can come, or deadline or timer fires
	// (ErrReadTimeout). The caller holds the reader side.
	await(n int, deadline <-chan struct{}, timer <-chan time.Time) error
	// ended reports whether no more input will reach the user's buffer.
	ended() bool
	// endError is the error of a read that no input can satisfy any more.
	endError() error
	// send sends the published output: all of it, or an error. The caller
	// holds the writer side.
	send() error
	// write sends p at once, without queueing it: the net.Conn Write. The
	// caller holds the writer side and has sent the queued output first.
	write(p []byte) (int, error)
}

// inputEnded reports whether no more input will reach the user's buffer.
func (c *connection) inputEnded() bool {
	if c.layer != nil {
		return c.layer.ended()
	}
	return c.peerClosed.Load()
}

// endOfInputError is the error of a read that no input can satisfy any
// more: ErrEOF after the peer's close, ErrConnClosed after ours, or the
// layer's own (a TLS record error).
func (c *connection) endOfInputError() error {
	if c.layer != nil {
		return c.layer.endError()
	}
	if c.peerClosed.Load() {
		return Exception(ErrEOF, "")
	}
	return Exception(ErrConnClosed, "")
}
