// Command kitexserver is the RPC benchmark's Kitex server: the generated
// thrift Echo service (idl/echo.thrift) answering each call with the payload
// it got. bench/rpc/run.sh builds it twice, once on cloudwego/netpoll and once
// with this library in its place.
//
//	kitexserver -addr 127.0.0.1:8888 [-mux | -stream]
//
// -mux serves the mux transport (server.WithMuxTransport), which a client
// with client.WithMuxConnection needs. -stream serves the StreamEcho service
// instead (idl/stream.thrift: thrift streaming over gRPC, HTTP/2), which
// echoes each message of a bidirectional stream.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cloudwego/kitex/pkg/klog"
	"github.com/cloudwego/kitex/server"

	"github.com/ccb70390/netpoll/bench/rpc/internal/measure"
	"github.com/ccb70390/netpoll/bench/rpc/kitex_gen/echo"
	echosvc "github.com/ccb70390/netpoll/bench/rpc/kitex_gen/echo/echo"
	"github.com/ccb70390/netpoll/bench/rpc/kitex_gen/echostream"
	"github.com/ccb70390/netpoll/bench/rpc/kitex_gen/echostream/streamecho"
)

// handler implements echo.Echo: the reply carries the request's payload.
type handler struct{}

func (*handler) Echo(ctx context.Context, req *echo.EchoRequest) (*echo.EchoResponse, error) {
	return &echo.EchoResponse{Payload: req.Payload}, nil
}

// streamHandler implements echostream.StreamEcho: every message received on
// the stream goes back on it, until the client closes its side.
type streamHandler struct{}

func (*streamHandler) Echo(st echostream.StreamEcho_EchoServer) error {
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Send(&echostream.StreamResponse{Payload: req.Payload}); err != nil {
			return err
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8888", "address to listen on")
	mux := flag.Bool("mux", false, "serve the mux transport (server.WithMuxTransport)")
	stream := flag.Bool("stream", false, "serve the streaming service (thrift over gRPC) instead")
	flag.Parse()
	klog.SetLevel(klog.LevelWarn)

	ta, err := net.ResolveTCPAddr("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	opts := []server.Option{server.WithServiceAddr(ta), server.WithExitWaitTime(100 * time.Millisecond)}
	if *mux {
		opts = append(opts, server.WithMuxTransport())
	}
	var svr server.Server
	if *stream {
		svr = streamecho.NewServer(new(streamHandler), opts...)
	} else {
		svr = echosvc.NewServer(new(handler), opts...)
	}
	go measure.AnnounceWhenListening(*addr)
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		svr.Stop()
	}()
	if err := svr.Run(); err != nil {
		log.Fatal(err)
	}
}
