package netpoll_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/ccb70390/netpoll"
)

// A UDP listener served by an EventLoop: each peer address becomes a
// Connection, the handler sees one datagram at a time, and each Flush sends
// one datagram back. The handler is the one a TCP echo server would use.
func ExampleListenUDP() {
	ln, err := netpoll.ListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	loop, _ := netpoll.NewEventLoop(func(_ context.Context, c netpoll.Connection) error {
		r, w := c.Reader(), c.Writer()
		b, _ := r.Next(r.Len())
		_, _ = w.WriteBinary(b)
		err := w.Flush()
		_ = r.Release()
		return err
	}, netpoll.WithIdleTimeout(time.Minute))
	go func() { _ = loop.Serve(ln) }()

	peer, _ := net.DialUDP("udp", nil, ln.Addr().(*net.UDPAddr))
	defer peer.Close()
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	for _, msg := range []string{"first", "second"} {
		_, _ = peer.Write([]byte(msg))
		n, _ := peer.Read(buf)
		fmt.Println(string(buf[:n]))
	}
	_ = loop.Shutdown(context.Background())
	// Output:
	// first
	// second
}

// The same listener used as a net.PacketConn: one datagram per ReadFrom.
func ExampleUDPListener_ReadFrom() {
	ln, err := netpoll.ListenUDP("udp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	var pc net.PacketConn = ln

	peer, _ := net.DialUDP("udp", nil, ln.Addr().(*net.UDPAddr))
	defer peer.Close()
	_, _ = peer.Write([]byte("ping"))

	buf := make([]byte, 100)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, _ := pc.ReadFrom(buf)
	fmt.Println(string(buf[:n]), from.String() == peer.LocalAddr().String())
	// Output:
	// ping true
}
