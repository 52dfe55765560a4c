package netpoll_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ccb70390/netpoll"
)

// A framed server: with a Protocol, OnRequest is called once per whole
// message however the bytes arrived, and WriteMessage frames the reply. The
// event loop flushes once after every message that arrived together, so
// pipelined requests cost one write.
func ExampleWithProtocol() {
	frames := netpoll.LengthPrefixed(2, binary.BigEndian, 1024)
	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	loop, err := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		msg := netpoll.MessageFrom(ctx) // valid until OnRequest returns
		return netpoll.WriteMessage(ctx, c, bytes.ToUpper(msg))
	}, netpoll.WithProtocol(frames))
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()

	// Two frames in one write, the second split from its length prefix: the
	// server still sees two whole messages.
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = client.Write([]byte("\x00\x05hello\x00\x05"))
	_, _ = client.Write([]byte("world"))
	for range 2 {
		reply, err := frames.Read(client) // a Protocol also reads a plain io.Reader
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s\n", reply)
	}
	_ = client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = loop.Shutdown(ctx)
	<-served
	// Output:
	// HELLO
	// WORLD
}

// LengthPrefixed outside an event loop works on any io.Reader and
// io.Writer (here a bytes.Buffer, by copying); on a netpoll Reader, such as
// a dialed Connection, it reads without copying. A frame announcing more
// than the maximum is refused as soon as its prefix is in.
func ExampleLengthPrefixed() {
	frames := netpoll.LengthPrefixed(4, binary.BigEndian, 16)
	var wire bytes.Buffer

	_ = frames.Write(&wire, []byte("ping"))
	fmt.Printf("on the wire: % x\n", wire.Bytes())
	msg, err := frames.Read(&wire)
	fmt.Printf("message: %s %v\n", msg, err)

	wire.Write([]byte{0, 0, 1, 0}) // announces 256 bytes
	_, err = frames.Read(&wire)
	fmt.Println(errors.Is(err, netpoll.ErrFrameTooLarge))
	// Output:
	// on the wire: 00 00 00 04 70 69 6e 67
	// message: ping <nil>
	// true
}

// Delimited on a client connection: Write appends a line to the
// connection's Writer (Flush sends it), and Read returns the next line
// without its delimiter, as a slice of the input buffer, blocking until the
// whole line is in.
func ExampleDelimited() {
	addr, stop := startEchoServer()
	defer stop()
	c, err := netpoll.DialConnection("tcp", addr, time.Second)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_ = c.SetReadTimeout(5 * time.Second)

	lines := netpoll.Delimited('\n', 64)
	_ = lines.Write(c, []byte("GET a"))
	_ = lines.Write(c, []byte("GET b"))
	_ = c.Writer().Flush()
	for range 2 {
		line, err := lines.Read(c) // valid until Release
		fmt.Printf("%q %v\n", line, err)
	}
	_ = c.Reader().Release()
	// Output:
	// "GET a" <nil>
	// "GET b" <nil>
}
