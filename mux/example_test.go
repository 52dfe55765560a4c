package mux_test

import (
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ccb70390/netpoll"
	"github.com/ccb70390/netpoll/mux"
)

// Many goroutines send messages on one connection: each Adds a getter that
// returns its encoded message in a LinkBuffer, and one flusher appends every
// queued buffer to the connection's Writer, without copying, and sends them
// with one Flush. Here each message is 4 bytes; the peer is a plain
// net.Listener.
func ExampleShardQueue() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		peer, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- peer
	}()

	conn, err := netpoll.DialConnection("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	peer := <-accepted
	defer peer.Close()

	queue := mux.NewShardQueue(mux.ShardSize, conn)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			queue.Add(func() (netpoll.Writer, bool) {
				buf := netpoll.NewLinkBuffer()
				_, _ = buf.WriteString(fmt.Sprintf("m%03d", i))
				return buf, false // false: there is a message
			})
		}()
	}
	wg.Wait()
	_ = queue.Close() // waits until everything added is sent

	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 8*4)
	if _, err = io.ReadFull(peer, got); err != nil {
		panic(err)
	}
	// The goroutines raced, so the order varies; each message came whole.
	var msgs []string
	for m := range slices.Chunk(got, 4) {
		msgs = append(msgs, string(m))
	}
	slices.Sort(msgs)
	fmt.Println(msgs)
	// Output:
	// [m000 m001 m002 m003 m004 m005 m006 m007]
}
