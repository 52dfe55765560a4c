// Package netpoll is a non-blocking network library for servers and clients
// that hold many connections: an epoll (Linux) or kqueue (BSD, macOS) reactor
// with zero-copy buffers. It is a drop-in replacement for
// github.com/cloudwego/netpoll v0.7.2, the transport under Kitex and Hertz:
// the same public API, so changing the import path is all a user does.
//
// # Quick start
//
// A server is a [Listener] served by an [EventLoop]. The handler, an
// [OnRequest], runs whenever the connection has unread input:
//
//	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:8080")
//	if err != nil {
//		log.Fatal(err)
//	}
//	loop, err := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
//		r, w := c.Reader(), c.Writer()
//		req, err := r.Next(r.Len()) // a slice of the input buffer, not a copy
//		if err != nil {
//			return err
//		}
//		w.WriteBinary(req) // large slices are referenced until Flush
//		err = w.Flush()    // one write or writev, from this goroutine
//		r.Release()        // after Flush: the reply pointed into the input
//		return err
//	}, netpoll.WithIdleCloseTimeout(time.Minute))
//	if err != nil {
//		log.Fatal(err)
//	}
//	go loop.Serve(ln) // blocks until Shutdown
//	defer loop.Shutdown(context.Background())
//
// A client dials a [Connection], which is also a [net.Conn]:
//
//	c, err := netpoll.DialConnection("tcp", "127.0.0.1:8080", time.Second)
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer c.Close()
//	c.Writer().WriteString("ping")
//	c.Writer().Flush()
//	reply, err := c.Reader().Next(4) // blocks until 4 bytes are in
//	fmt.Printf("%s\n", reply)
//	c.Reader().Release()
//
// Runnable versions of both, and of every other entry point, are the
// package's Examples: ExampleNewEventLoop, ExampleDialConnection,
// ExampleConnection, ExampleNewDialer, ExampleNewConnectionPool,
// ExampleWithTLS, ExampleDialTLS, ExampleWithProtocol, ExampleLengthPrefixed,
// ExampleDelimited, ExampleSetLogger, ExampleWriteMetricsText,
// ExampleListenUDP and ExampleLinkBuffer_Next; the mux sub-package has
// ExampleShardQueue and the netpollprom module ExampleNewCollector.
//
// # Goroutines: what runs where, and what may block
//
//   - Pollers. A few goroutines (by default max(1, GOMAXPROCS/20); see
//     [Config].PollerNum) each loop around epoll_wait or kevent. A poller
//     reads a readable socket into its connection's input buffer, accepts
//     new connections and runs [OnPrepare]. It never runs OnConnect,
//     OnRequest, OnDisconnect or close callbacks. OnPrepare is called on a
//     poller goroutine and must not block.
//   - The runner. OnConnect, OnRequest and OnDisconnect run on the runner:
//     by default a pool of reused goroutines sharing one queue. They may
//     block (wait for more input with Next, call a database, Flush into a
//     full socket): a blocked handler holds up only its own connection.
//     OnRequest never runs twice at once for one connection, and runs again
//     while unread input remains. [Config].Runner (or [SetRunner]) replaces
//     the pool; a runner that calls f() directly runs handlers on the poller
//     goroutine; then a handler must never block, and it is not cheaper
//     than the pool (see [SetRunner]).
//   - Your goroutines. Flush writes from the goroutine that calls it; only
//     when the socket is full does a poller watch for writability and wake
//     the flusher. A read on a dialed connection (Next, Peek, Read) blocks the
//     calling goroutine until the poller has buffered enough input, the read
//     timeout fires, or the connection closes. Close is safe from any
//     goroutine and wakes every blocked call with [ErrConnClosed]; close
//     callbacks run on the goroutine that closed the connection.
//
// # The zero-copy rules
//
//   - [Reader.Next], [Reader.Peek] and [Reader.Until] return slices of the
//     connection's input buffer. They stay valid until the next
//     [Reader.Release], which frees what was read: after Release those
//     slices must not be used. Copy ([Reader.ReadBinary],
//     [Reader.ReadString]) what must outlive it.
//   - [Reader.Slice] returns an independent Reader sharing the memory; it
//     lives on after the origin's Release and frees its memory with its own
//     Release. As in the reference, Slice also releases the origin, so
//     earlier Next, Peek and Until slices become invalid.
//   - [Writer.WriteBinary] and [Writer.WriteString] of
//     [BinaryInplaceThreshold] (4 KiB) bytes or more reference the caller's
//     memory until Flush: do not change it, or release the input it points
//     into, before then. That is why a handler that echoes its input
//     flushes before it releases.
//   - A failed Flush never leaves output that points at memory you may
//     release: the unsent output keeps its own copy.
//   - One reader and one writer may work on a connection at the same time.
//     A second concurrent user of the zero-copy Reader or Writer gets
//     [ErrConcurrentAccess]; the net.Conn methods (Read, Write) serialise
//     concurrent callers instead, as net.Conn promises.
//   - An idle connection holds no buffer memory: node memory returns to
//     size-classed pools when it is released, and comes back when data
//     arrives.
//
// # Options at a glance
//
// Server, per [EventLoop] ([Option]): [WithOnPrepare], [WithOnConnect],
// [WithOnDisconnect]; [WithReadTimeout], [WithWriteTimeout],
// [WithIdleCloseTimeout] (close silent connections), [WithIdleTimeout]
// (TCP keepalive, as the reference); [WithMaxInputBuffer] (default 16 MiB: reading pauses
// and TCP pushes back); [WithMaxConnections]; [WithProtocol] with
// [LengthPrefixed] or [Delimited] for one OnRequest per framed message.
//
// Listener ([ListenerOption] to [CreateListener] or [ListenUDP]): [WithTLS],
// [WithTLSHandshakeTimeout], [WithSocketReusePort], [WithMaxDatagramSize],
// [WithDatagramBatch].
//
// Client: [DialConnection], [NewDialer], [DialTLS], [DialTCP], [DialUnix];
// [NewConnectionPool] with [WithPoolSize], [WithPoolMaxIdle],
// [WithPoolIdleTimeout], [WithPoolMaxLifetime].
//
// Process-wide: [Configure] with [Config] (pollers, first read size,
// runner, logger output, load balancing: [RoundRobin], [Random],
// [SourceAddrHash]). Logs go through log/slog: [SetLogger]. Counters:
// [ReadMetrics], [WriteMetricsText], [ReadTLSMetrics].
//
// # Platforms
//
// Linux uses epoll; macOS and the BSDs use kqueue. On other systems (Windows
// among them) the package builds, and every constructor returns
// [ErrUnsupported].
//
// Contributors: ARCHITECTURE.md in the repository maps the source files.
package netpoll
