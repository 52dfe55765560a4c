package netpoll_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ccb70390/netpoll"
)

// startEchoServer serves the echo handler of ExampleNewEventLoop on a free
// loopback port, for the client examples. stop shuts the server down.
func startEchoServer() (addr string, stop func()) {
	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	loop, err := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		r, w := c.Reader(), c.Writer()
		b, err := r.Next(r.Len())
		if err != nil {
			return err
		}
		_, _ = w.WriteBinary(b)
		err = w.Flush()
		_ = r.Release()
		return err
	})
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = loop.Shutdown(ctx)
		<-served
	}
}

// A client connection: write with the zero-copy Writer, flush, and read the
// reply with the zero-copy Reader, which blocks until the bytes are in.
func ExampleDialConnection() {
	addr, stop := startEchoServer()
	defer stop()

	c, err := netpoll.DialConnection("tcp", addr, time.Second)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_ = c.SetReadTimeout(5 * time.Second) // Next fails with ErrReadTimeout past this

	_, _ = c.Writer().WriteString("ping")
	if err := c.Writer().Flush(); err != nil {
		panic(err)
	}
	reply, err := c.Reader().Next(4)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", reply) // reply is valid until Release
	_ = c.Reader().Release()
	// Output:
	// ping
}

// A Dialer makes the same connections as DialConnection; DialTimeout gives
// them as a plain net.Conn for code that wants only that.
func ExampleNewDialer() {
	addr, stop := startEchoServer()
	defer stop()

	d := netpoll.NewDialer()
	c, err := d.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("net.Conn"))
	reply := make([]byte, 8)
	_, err = io.ReadFull(c, reply)
	fmt.Printf("%s %v\n", reply, err)

	_, isConnection := c.(netpoll.Connection)
	fmt.Println("also a netpoll.Connection:", isConnection)
	// Output:
	// net.Conn <nil>
	// also a netpoll.Connection: true
}

// A Connection is a net.Conn and a zero-copy Reader and Writer at once, so
// one connection can be handed to code of either kind. Close callbacks run
// once, after the close: on the goroutine that closed it, or, when a poller
// was still reading the connection at that moment, on the runner as soon as
// it is done, so wait for a callback's effect rather than assume it.
//
// Mind one overlap: the net.Conn method Write sends at once, but the
// connection's WriteString is the zero-copy Writer's and sends nothing until
// Flush. io.WriteString, and io.Copy from a strings.Reader, pick
// WriteString, so flush after them.
func ExampleConnection() {
	addr, stop := startEchoServer()
	defer stop()

	c, err := netpoll.DialConnection("tcp", addr, time.Second)
	if err != nil {
		panic(err)
	}
	callbackDone := make(chan struct{})
	_ = c.AddCloseCallback(func(c netpoll.Connection) error {
		fmt.Println("closed; active:", c.IsActive())
		close(callbackDone)
		return nil
	})
	_ = c.SetReadTimeout(5 * time.Second)

	var conn net.Conn = c // net.Conn methods
	_, _ = conn.Write([]byte("first line\n"))
	_, _ = io.WriteString(conn, "second line\n") // buffered: the Writer's WriteString
	_ = c.Writer().Flush()

	r := c.Reader() // the zero-copy side of the same connection
	for range 2 {
		line, err := r.Until('\n') // includes the delimiter
		if err != nil {
			panic(err)
		}
		fmt.Printf("%q\n", line)
	}
	_ = r.Release()
	fmt.Println("active:", c.IsActive())
	_ = c.Close()
	select {
	case <-callbackDone:
	case <-time.After(5 * time.Second):
		fmt.Println("the close callback did not run")
	}
	// Output:
	// "first line\n"
	// "second line\n"
	// active: true
	// closed; active: false
}

// A pool of client connections to one server: Get reuses a clean idle
// connection instead of dialling, and Put gives it back. A connection
// returned with unread input or unflushed output is closed instead.
func ExampleNewConnectionPool() {
	addr, stop := startEchoServer()
	defer stop()

	dials := 0
	pool, err := netpoll.NewConnectionPool(func(ctx context.Context) (netpoll.Connection, error) {
		dials++
		return netpoll.DialConnection("tcp", addr, time.Second)
	}, netpoll.WithPoolSize(4), netpoll.WithPoolIdleTimeout(time.Minute))
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	ctx := context.Background()
	for _, msg := range []string{"one", "two", "three"} {
		c, err := pool.Get(ctx)
		if err != nil {
			panic(err)
		}
		_ = c.SetReadTimeout(5 * time.Second)
		_, _ = c.Writer().WriteString(msg)
		_ = c.Writer().Flush()
		reply, err := c.Reader().ReadString(len(msg)) // a copy: the input is released
		if err != nil {
			panic(err)
		}
		fmt.Println(reply)
		_ = pool.Put(c) // clean: no unread input, no unflushed output
	}
	fmt.Println("dials:", dials)
	// Output:
	// one
	// two
	// three
	// dials: 1
}
