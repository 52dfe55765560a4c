// Command kitexserver is the RPC benchmark's Kitex server: the generated
// thrift Echo service (idl/echo.thrift) answering each call with the payload
// it got. bench/rpc/run.sh builds it twice, once on cloudwego/netpoll and once
// with this library in its place.
//
//	kitexserver -addr 127.0.0.1:8888 [-mux]
//
// -mux serves the mux transport (server.WithMuxTransport), which a client
// with client.WithMuxConnection needs.
package main

import (
	"context"
	"flag"
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
)

// handler implements echo.Echo: the reply carries the request's payload.
type handler struct{}

func (*handler) Echo(ctx context.Context, req *echo.EchoRequest) (*echo.EchoResponse, error) {
	return &echo.EchoResponse{Payload: req.Payload}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8888", "address to listen on")
	mux := flag.Bool("mux", false, "serve the mux transport (server.WithMuxTransport)")
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
	svr := echosvc.NewServer(new(handler), opts...)
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
