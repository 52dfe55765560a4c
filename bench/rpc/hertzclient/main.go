// Command hertzclient drives hertzserver at a fixed rate, which wrk cannot
// (wrk2 is not in Debian), and prints one RESULT line in bench/c/loadgen.c's
// format:
//
//	hertzclient -addr 127.0.0.1:8080 -c 100 -r 10000 [-post -size 4096] -w 1s -d 5s -p SERVER_PID
//
// Each of -c callers owns one keep-alive HTTP/1.1 connection and sends one
// request at a time on it: GET /, whose body must be "Hello, World!", or with
// -post a POST /echo of -size bytes stamped with the caller's number and the
// request's sequence number, whose reply must be the same bytes. A reply that
// is not 200 with exactly that body, or a failed connection, counts as an
// error (the connection is then dialled again). The HTTP client is written
// out by hand so that it costs little next to the server: net/http's client
// would spend more CPU per request than Hertz does.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ccb70390/netpoll/bench/rpc/internal/measure"
)

var hello = []byte("Hello, World!")

// conn is one caller's connection and its buffers.
type conn struct {
	c       net.Conn
	r       *bufio.Reader
	request []byte // the whole request; with -post its last size bytes are the body
	body    []byte // the expected reply body
	reply   []byte
}

var errReply = errors.New("hertzclient: reply differs from the expected one")

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address")
	callers := flag.Int("c", 100, "connections, one caller each")
	post := flag.Bool("post", false, "POST /echo instead of GET /")
	size := flag.Int("size", 4096, "POST body bytes (at least 16)")
	warm := flag.Duration("w", time.Second, "warm-up, not measured")
	dur := flag.Duration("d", 5*time.Second, "measured window")
	rate := flag.Float64("r", 0, "total requests/s, open loop; 0 runs closed loop")
	pid := flag.Int("p", 0, "server pid, for its CPU per request")
	timeout := flag.Duration("timeout", 3*time.Second, "time-out per request")
	flag.Parse()
	if *post && *size < 16 {
		log.Fatal("hertzclient: -size must be at least 16")
	}

	conns := make([]*conn, *callers)
	for w := range conns {
		k := &conn{}
		if *post {
			k.body = measure.Payload(w, *size)
			head := "POST /echo HTTP/1.1\r\nHost: " + *addr + "\r\nContent-Type: application/octet-stream\r\n" +
				"Content-Length: " + strconv.Itoa(*size) + "\r\n\r\n"
			k.request = append([]byte(head), k.body...)
			k.body = k.request[len(head):] // stamped in place before each request
		} else {
			k.request = []byte("GET / HTTP/1.1\r\nHost: " + *addr + "\r\n\r\n")
			k.body = hello
		}
		conns[w] = k
	}
	var first measure.FirstError
	call := func(w int, seq uint64) error {
		k := conns[w]
		if *post {
			measure.Stamp(k.body, seq)
		}
		err := k.roundTrip(*addr, *timeout)
		if first.Record(err) != nil {
			if k.c != nil {
				k.c.Close()
				k.c = nil
			}
		}
		return err
	}
	r := measure.Run(measure.Load{Callers: *callers, Warmup: *warm, Duration: *dur, Rate: *rate, ServerPID: *pid}, call)
	for _, k := range conns {
		if k.c != nil {
			k.c.Close()
		}
	}
	if r.Errors > 0 {
		fmt.Fprintf(os.Stderr, "hertzclient: %d errors, e.g. %v\n", r.Errors, first.Err())
	}
	fmt.Println(r.Line())
}

// roundTrip sends k's request and reads and checks the reply, dialling first
// if k has no connection.
func (k *conn) roundTrip(addr string, timeout time.Duration) error {
	if k.c == nil {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		k.c = c
		k.r = bufio.NewReaderSize(c, 16<<10)
	}
	if err := k.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := k.c.Write(k.request); err != nil {
		return err
	}
	status, err := k.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("%w: status %q", errReply, strings.TrimSpace(string(status)))
	}
	length := -1
	for {
		line, err := k.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break // the blank line after the headers
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(name), "Content-Length") {
			length, err = strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil {
				return fmt.Errorf("%w: Content-Length %q", errReply, value)
			}
		}
	}
	if length != len(k.body) {
		return fmt.Errorf("%w: Content-Length %d, want %d", errReply, length, len(k.body))
	}
	if cap(k.reply) < length {
		k.reply = make([]byte, length)
	}
	k.reply = k.reply[:length]
	if _, err := io.ReadFull(k.r, k.reply); err != nil {
		return err
	}
	if !bytes.Equal(k.reply, k.body) {
		return errReply
	}
	return nil
}
