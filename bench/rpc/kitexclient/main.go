// Command kitexclient drives kitexserver with the generated thrift client and
// prints one RESULT line in bench/c/loadgen.c's format.
//
//	kitexclient -addr 127.0.0.1:8888 -c 100 -size 1024 -w 1s -d 5s [-r 10000] [-mux 2 | -stream] [-p SERVER_PID]
//
// Each of -c callers sends its own payload, stamped with its number and the
// call's sequence number, and checks every byte of the reply; a failed call or
// a reply that differs counts as an error. Without -r the callers run closed
// loop (QPS at saturation); with -r they share a fixed total rate in open loop
// (see measure.Run). -mux N uses the mux transport over N connections;
// otherwise Kitex's long-connection pool keeps up to -c connections.
//
// -stream calls the StreamEcho service (kitexserver -stream: thrift streaming
// over gRPC) instead: each caller opens one bidirectional stream and a call is
// one message sent on it and its echo received. The streams share Kitex's
// gRPC connection pool (one connection at GOMAXPROCS=1, 1.5 per P).
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

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/client/streamclient"
	"github.com/cloudwego/kitex/pkg/connpool"
	"github.com/cloudwego/kitex/pkg/klog"

	"github.com/ccb70390/netpoll/bench/rpc/internal/measure"
	"github.com/ccb70390/netpoll/bench/rpc/kitex_gen/echo"
	echosvc "github.com/ccb70390/netpoll/bench/rpc/kitex_gen/echo/echo"
	"github.com/ccb70390/netpoll/bench/rpc/kitex_gen/echostream"
	"github.com/ccb70390/netpoll/bench/rpc/kitex_gen/echostream/streamecho"
)

var errMismatch = errors.New("kitexclient: reply payload differs from the request's")

func main() {
	addr := flag.String("addr", "127.0.0.1:8888", "server address")
	callers := flag.Int("c", 100, "concurrent callers")
	size := flag.Int("size", 1024, "payload bytes (at least 16)")
	warm := flag.Duration("w", time.Second, "warm-up, not measured")
	dur := flag.Duration("d", 5*time.Second, "measured window")
	rate := flag.Float64("r", 0, "total calls/s, open loop; 0 runs closed loop")
	mux := flag.Int("mux", 0, "use the mux transport over this many connections")
	pid := flag.Int("p", 0, "server pid, for its CPU per call")
	timeout := flag.Duration("timeout", 3*time.Second, "RPC time-out per call")
	dialTimeout := flag.Duration("connect-timeout", 3*time.Second, "connect time-out (Kitex's default, 50 ms, fails 1,000 dials at once on a busy machine)")
	stream := flag.Bool("stream", false, "one bidirectional stream per caller (kitexserver -stream)")
	flag.Parse()
	klog.SetLevel(klog.LevelError)
	if *size < 16 || *callers < 1 {
		log.Fatal("kitexclient: -size must be at least 16 and -c at least 1")
	}
	if *stream && *mux > 0 {
		log.Fatal("kitexclient: -stream and -mux are different transports; give one")
	}

	payloads := make([][]byte, *callers)
	for w := range payloads {
		payloads[w] = measure.Payload(w, *size)
	}
	var first measure.FirstError
	check := first.Record
	var (
		call   measure.Call
		finish = func() {}
	)
	if *stream {
		// The run's own deadline bounds every stream: a server that stops
		// answering fails the calls instead of hanging the client.
		ctx, cancel := context.WithTimeout(context.Background(), *warm+*dur+*timeout)
		defer cancel()
		call, finish = streamCalls(ctx, *addr, *dialTimeout, payloads, check)
	} else {
		call = unaryCalls(*addr, *timeout, *dialTimeout, *mux, *callers, payloads, check)
	}
	r := measure.Run(measure.Load{Callers: *callers, Warmup: *warm, Duration: *dur, Rate: *rate, ServerPID: *pid}, call)
	finish()
	if r.Errors > 0 {
		fmt.Fprintf(os.Stderr, "kitexclient: %d errors, e.g. %v\n", r.Errors, first.Err())
	}
	fmt.Println(r.Line())
}

// unaryCalls returns a Call that makes one thrift Echo call (the default or,
// with muxConns > 0, the mux transport) with caller w's payload.
func unaryCalls(addr string, timeout, dialTimeout time.Duration, muxConns, callers int, payloads [][]byte, check func(error) error) measure.Call {
	opts := []client.Option{client.WithHostPorts(addr), client.WithRPCTimeout(timeout), client.WithConnectTimeout(dialTimeout)}
	if muxConns > 0 {
		opts = append(opts, client.WithMuxConnection(muxConns))
	} else {
		// Kitex's default pool keeps 10 idle connections per address and
		// closes the rest after each call; keep one per caller instead, as
		// CloudWeGo's own benchmarks do, so no call pays for a new connection.
		opts = append(opts, client.WithLongConnection(connpool.IdleConfig{
			MaxIdlePerAddress: callers,
			MaxIdleGlobal:     callers,
			MaxIdleTimeout:    time.Minute,
		}))
	}
	cli, err := echosvc.NewClient("echo", opts...)
	if err != nil {
		log.Fatal(err)
	}
	return func(w int, seq uint64) error {
		p := payloads[w]
		measure.Stamp(p, seq)
		resp, err := cli.Echo(context.Background(), &echo.EchoRequest{Payload: p})
		if err == nil && !bytes.Equal(resp.GetPayload(), p) {
			err = errMismatch
		}
		return check(err)
	}
}

// streamCalls returns a Call that sends caller w's payload on the caller's
// own stream and checks the echo, opening the stream on the caller's first
// call (and again after a failure), and a finish that ends every stream.
// Each stream is used by its caller's goroutine alone, as Kitex requires.
func streamCalls(ctx context.Context, addr string, dialTimeout time.Duration, payloads [][]byte, check func(error) error) (measure.Call, func()) {
	cli, err := streamecho.NewStreamClient("echo", streamclient.WithHostPorts(addr),
		streamclient.WithConnectTimeout(dialTimeout))
	if err != nil {
		log.Fatal(err)
	}
	streams := make([]streamecho.StreamEcho_EchoClient, len(payloads))
	call := func(w int, seq uint64) error {
		if streams[w] == nil {
			st, err := cli.Echo(ctx)
			if err != nil {
				return check(err)
			}
			streams[w] = st
		}
		p := payloads[w]
		measure.Stamp(p, seq)
		err := streams[w].Send(&echostream.StreamRequest{Payload: p})
		var resp *echostream.StreamResponse
		if err == nil {
			resp, err = streams[w].Recv()
		}
		if err == nil && !bytes.Equal(resp.GetPayload(), p) {
			err = errMismatch
		}
		if err != nil {
			// A stream that failed once is not trusted again.
			streams[w].Close()
			streams[w] = nil
		}
		return check(err)
	}
	// finish closes each stream's sending side and waits for the server to end
	// it (Recv returns io.EOF then), so that no stream is cut off by the exit.
	finish := func() {
		for _, st := range streams {
			if st != nil && st.Close() == nil {
				st.Recv()
			}
		}
	}
	return call, finish
}
