package netpoll_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ccb70390/netpoll"
)

// An echo server: the handler reads what arrived without copying, writes it
// back, flushes, and only then releases the input, because a large
// WriteBinary references the input's memory until Flush. The client here is
// a plain net.Conn; any TCP client would do.
func ExampleNewEventLoop() {
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
		if _, err = w.WriteBinary(b); err != nil {
			return err
		}
		err = w.Flush()
		_ = r.Release()
		return err
	},
		netpoll.WithIdleCloseTimeout(time.Minute),
		netpoll.WithOnConnect(func(ctx context.Context, c netpoll.Connection) context.Context {
			fmt.Println("connected")
			return ctx
		}),
	)
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()

	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	_, _ = client.Write([]byte("hello, netpoll"))
	reply := make([]byte, len("hello, netpoll"))
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, reply); err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", reply)
	_ = client.Close()

	// Shutdown stops accepting, closes idle connections and waits for busy
	// ones until its context ends; then Serve returns.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("shutdown:", loop.Shutdown(ctx))
	fmt.Println("serve:", <-served)
	// Output:
	// connected
	// hello, netpoll
	// shutdown: <nil>
	// serve: <nil>
}
