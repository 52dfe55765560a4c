// Command hertzping serves a Hertz engine on the netpoll transport for
// compat/run.sh: GET /ping answers "pong" and POST /echo returns the request
// body. It listens on a free loopback port, prints "ADDR host:port" once it
// serves, and stops on SIGTERM or after -life. With -check it also acts as the
// HTTP client (net/http), for machines without curl.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/network/netpoll"
)

func main() {
	life := flag.Duration("life", 2*time.Minute, "stop by itself after this long")
	check := flag.Bool("check", false, "run the HTTP checks with net/http, then exit")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	// The netpoll transport is the default on Linux; naming it makes sure the
	// library under test is the one serving.
	h := server.Default(server.WithListener(ln), server.WithTransport(netpoll.NewTransporter),
		server.WithExitWaitTime(time.Second))
	h.GET("/ping", func(ctx context.Context, c *app.RequestContext) {
		c.String(http.StatusOK, "pong")
	})
	h.POST("/echo", func(ctx context.Context, c *app.RequestContext) {
		c.Data(http.StatusOK, "application/octet-stream", c.Request.Body())
	})
	served := make(chan error, 1)
	go func() { served <- h.Run() }()
	addr := ln.Addr().String()
	fmt.Println("ADDR", addr)

	if *check {
		err := runChecks("http://" + addr)
		shutdown(h.Shutdown)
		if err != nil {
			fmt.Println("CHECK FAIL:", err)
			os.Exit(1)
		}
		fmt.Println("CHECK OK")
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case <-time.After(*life):
	case err := <-served:
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	shutdown(h.Shutdown)
}

func shutdown(f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shutdown:", err)
	}
}

// runChecks does what run.sh does with curl: ten GETs on one kept-alive
// connection, then a 1 MiB POST whose echo must match byte for byte.
func runChecks(base string) error {
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 10 {
		resp, err := client.Get(base + "/ping")
		if err != nil {
			return fmt.Errorf("GET /ping #%d: %w", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != "pong" {
			return fmt.Errorf("GET /ping #%d = %d %q, %v; want 200 \"pong\"", i, resp.StatusCode, body, err)
		}
	}
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	resp, err := client.Post(base+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("POST /echo: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, payload) {
		return fmt.Errorf("POST /echo = %d, %d bytes, %v; want 200 and the %d bytes sent", resp.StatusCode, len(body), err, len(payload))
	}
	return nil
}
