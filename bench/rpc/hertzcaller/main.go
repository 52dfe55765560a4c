// Command hertzcaller measures Hertz's own HTTP client, which dials and reads
// through netpoll on Linux, against hertzserver, and prints one RESULT line in
// bench/c/loadgen.c's format with the client's CPU per request
// (gen_us_per_req) next to the server's:
//
//	hertzcaller -addr 127.0.0.1:8080 -c 100 [-r 10000] [-post -size 4096] -w 1s -d 5s -p SERVER_PID
//
// bench/rpc/run.sh builds it on each library and points every build at the
// same server (hertzserver on cloudwego/netpoll), so that only the client's
// library differs. -c callers share one client.Client, which keeps up to -c
// keep-alive connections to the server; each caller sends one request at a
// time: GET /, whose body must be "Hello, World!", or with -post a POST /echo
// of -size bytes stamped with the caller's number and the request's sequence
// number, whose reply must be the same bytes. A reply that is not 200 with
// exactly that body, or a failed request, counts as an error.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/cloudwego/hertz/pkg/app/client"
	"github.com/cloudwego/hertz/pkg/common/hlog"
	"github.com/cloudwego/hertz/pkg/protocol"

	"github.com/ccb70390/netpoll/bench/rpc/internal/measure"
)

var hello = []byte("Hello, World!")

var errReply = errors.New("hertzcaller: reply differs from the expected one")

// caller is one caller's request and response, reused for each of its calls.
type caller struct {
	req  *protocol.Request
	resp *protocol.Response
	body []byte // with -post, the request's body, which the reply must equal
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address")
	callers := flag.Int("c", 100, "concurrent callers (and the client's connection limit)")
	post := flag.Bool("post", false, "POST /echo instead of GET /")
	size := flag.Int("size", 4096, "POST body bytes (at least 16)")
	warm := flag.Duration("w", time.Second, "warm-up, not measured")
	dur := flag.Duration("d", 5*time.Second, "measured window")
	rate := flag.Float64("r", 0, "total requests/s, open loop; 0 runs closed loop")
	pid := flag.Int("p", 0, "server pid, for its CPU per request")
	timeout := flag.Duration("timeout", 3*time.Second, "time-out per request")
	flag.Parse()
	hlog.SetLevel(hlog.LevelError)
	if (*post && *size < 16) || *callers < 1 {
		log.Fatal("hertzcaller: -size must be at least 16 and -c at least 1")
	}

	cli, err := client.NewClient(client.WithMaxConnsPerHost(*callers), client.WithDialTimeout(*timeout),
		client.WithClientReadTimeout(*timeout), client.WithWriteTimeout(*timeout))
	if err != nil {
		log.Fatal(err)
	}
	cs := make([]caller, *callers)
	for w := range cs {
		c := &cs[w]
		c.req, c.resp = protocol.AcquireRequest(), protocol.AcquireResponse()
		if *post {
			c.body = measure.Payload(w, *size)
		}
	}
	var first measure.FirstError
	url := "http://" + *addr + "/"
	if *post {
		url += "echo"
	}
	call := func(w int, seq uint64) error {
		c := &cs[w]
		c.req.Reset()
		c.resp.Reset()
		c.req.SetRequestURI(url)
		want := hello
		if *post {
			measure.Stamp(c.body, seq)
			c.req.Header.SetMethod("POST")
			c.req.SetBody(c.body)
			want = c.body
		}
		err := cli.Do(context.Background(), c.req, c.resp)
		if err == nil && (c.resp.StatusCode() != 200 || !bytes.Equal(c.resp.Body(), want)) {
			err = errReply
		}
		return first.Record(err)
	}
	r := measure.Run(measure.Load{Callers: *callers, Warmup: *warm, Duration: *dur, Rate: *rate, ServerPID: *pid}, call)
	cli.CloseIdleConnections()
	if r.Errors > 0 {
		fmt.Fprintf(os.Stderr, "hertzcaller: %d errors, e.g. %v\n", r.Errors, first.Err())
	}
	fmt.Println(r.Line())
}
