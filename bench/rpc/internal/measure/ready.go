package measure

import (
	"fmt"
	"net"
	"time"
)

// AnnounceWhenListening prints "listening on ADDR" once a TCP connection to
// addr succeeds, the line bench/run.sh waits for; the frameworks' Run calls
// block without saying when they accept. It gives up after 10 s.
func AnnounceWhenListening(addr string) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			fmt.Println("listening on", addr)
			return
		}
	}
}
