// Command hertzserver is the RPC benchmark's Hertz server, driven by wrk:
//
//	GET  /      answers "Hello, World!" (13 bytes, text/plain)
//	POST /echo  answers with the request's body (bench/rpc/run.sh posts 4 KiB)
//
// bench/rpc/run.sh builds it twice, once on cloudwego/netpoll (Hertz's
// default transport on Linux) and once with this library in its place.
package main

import (
	"context"
	"flag"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/hlog"

	"github.com/ccb70390/netpoll/bench/rpc/internal/measure"
)

// hello is GET /'s body; bench/rpc/wrk/get.lua checks every reply against it.
var hello = []byte("Hello, World!")

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	hlog.SetLevel(hlog.LevelWarn)

	h := server.New(server.WithHostPorts(*addr), server.WithExitWaitTime(100*time.Millisecond),
		server.WithDisablePrintRoute(true))
	h.GET("/", func(ctx context.Context, c *app.RequestContext) {
		c.Data(200, "text/plain", hello)
	})
	h.POST("/echo", func(ctx context.Context, c *app.RequestContext) {
		c.Data(200, "application/octet-stream", c.Request.Body())
	})
	go measure.AnnounceWhenListening(*addr)
	h.Spin() // returns after SIGTERM or SIGINT, having shut down
}
