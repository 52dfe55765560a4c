// Command gonet is the echo server on the standard library's net package: one
// goroutine per connection, each with a fixed 64 KiB buffer, read then write
// back, the way io.Copy would do it.
package main

import (
	"fmt"
	"net"
	"os"

	"github.com/ccb70390/netpoll/bench/internal/harness"
)

func main() {
	flags := harness.Parse()
	ln, err := net.Listen("tcp", flags.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	harness.Listening("gonet", ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go echo(c)
	}
}

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64*1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
			harness.Echoed(n)
		}
		if err != nil {
			return
		}
	}
}
