package netpoll_test

import (
	"fmt"

	"github.com/ccb70390/netpoll"
)

// ExampleLinkBuffer_Next writes a length-prefixed frame, then reads it back
// without copying: Next returns the buffer's own memory until Release.
func ExampleLinkBuffer_Next() {
	buf := netpoll.NewLinkBuffer()
	defer buf.Close()

	payload := "hello, netpoll"
	header, _ := buf.Malloc(1)
	header[0] = byte(len(payload))
	buf.WriteString(payload)
	buf.Flush() // the bytes become readable

	size, _ := buf.ReadByte()
	body, _ := buf.Next(int(size))
	fmt.Printf("%d bytes: %s\n", size, body)
	buf.Release() // body must not be used after this

	fmt.Println("left:", buf.Len())
	// Output:
	// 14 bytes: hello, netpoll
	// left: 0
}
