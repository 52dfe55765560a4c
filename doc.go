// Package netpoll is a non-blocking network library: an epoll (Linux) or
// kqueue (BSD, macOS) reactor with zero-copy buffers, for servers and clients
// that hold many connections. It is a drop-in replacement for
// github.com/cloudwego/netpoll: the same public API, so changing the import
// path is all a user does.
//
// # Where to start reading
//
//   - linkbuffer.go: the LinkBuffer, a chain of pooled memory nodes. Every
//     connection reads into one and writes from another.
//   - connection*.go: a connection's state, its read path (waiting for input,
//     timeouts), write path (Flush, back-pressure), addresses and close.
//   - runner.go: the pool of goroutines that runs OnConnect and OnRequest,
//     one shared queue for all its workers.
//   - eventloop.go, server.go: the server; listener.go and dialer.go.
//   - internal/poller: the pollers, one goroutine each around epoll_wait or kevent.
//   - internal/sys: raw system calls.
//
// # The read path
//
// A poller goroutine wakes on a readable socket and reads the bytes straight
// into the connection's input LinkBuffer. Then it either wakes a goroutine
// blocked in a read (Next, Read …) or hands the connection to the runner,
// which calls OnRequest on a pooled goroutine. OnRequest runs again while
// unread input remains and the handler keeps consuming it; it never runs
// twice at once for one connection.
//
// # The write path
//
// Writer calls fill the output LinkBuffer; Flush sends it with writev from
// the calling goroutine. Only when the socket's send buffer is full does the
// poller watch for writability and wake the flusher.
package netpoll
