// Command uring-unix-eof checks whether this kernel's io_uring multishot
// receive loses a stream socket's EOF: it streams 1 MiB through a socket
// pair, closes the writer, and waits for the receive's final completion,
// many times over, on unix and on loopback TCP sockets, with nothing of the
// library between the test and the ring.
//
// The io_uring engine gives multishot receives to TCP sockets only because
// on Linux 6.18 this program found unix sockets losing the EOF (about 1 in
// 1,000–3,000 transfers; TCP none in 6,000): the receive stays armed after
// the peer's close, and the reader waits for good. Run it on a new kernel
// before letting unix sockets have receives again (poller.canReceive):
//
//	go run ./cmd/uring-unix-eof -transfers 5000
//
// It exits 1 if any transfer lost its EOF, 2 if it could not run (a kernel
// that refuses io_uring, say).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ccb70390/netpoll/internal/uringcheck"
)

func main() {
	transfers := flag.Int("transfers", 3000, "transfers per socket type")
	flag.Parse()
	lost := 0
	for _, network := range []string{"unix", "tcp"} {
		res, err := uringcheck.Run(network, *transfers)
		if err != nil {
			fmt.Fprintf(os.Stderr, "uring-unix-eof: %s: %v\n", network, err)
			os.Exit(2)
		}
		fmt.Printf("%-4s %d transfers of 1 MiB: %d lost the EOF\n", network, res.Transfers, res.LostEOF)
		lost += res.LostEOF
	}
	if lost > 0 {
		os.Exit(1)
	}
}
