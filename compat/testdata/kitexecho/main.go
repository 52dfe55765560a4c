// Command kitexecho makes Kitex RPCs over the netpoll transport without code
// generation, for compat/run.sh: a JSON generic server whose IDL is a string
// echoes each request, and a JSON generic client calls it with messages of
// several sizes from several goroutines, every reply compared byte for byte.
// It does so twice: over the netpoll transport (a connection per call in
// flight), then over the multiplexed one (server.WithMuxTransport and
// client.WithMuxConnection, which share connections through netpoll's mux
// package). It prints "ECHO OK" and exits 0 when every reply matched.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/client/callopt"
	"github.com/cloudwego/kitex/client/genericclient"
	"github.com/cloudwego/kitex/pkg/generic"
	"github.com/cloudwego/kitex/server"
	"github.com/cloudwego/kitex/server/genericserver"
)

const idl = `
namespace go echo

struct EchoRequest { 1: required string msg }
struct EchoResponse { 1: required string msg }

service Echo {
    EchoResponse Echo(1: EchoRequest req)
}
`

// echoService answers each call with the request it got: request and reply
// have the same shape, so the JSON passes through unchanged.
type echoService struct{}

func (*echoService) GenericCall(ctx context.Context, method string, request any) (any, error) {
	return request, nil
}

type message struct {
	Msg string `json:"msg"`
}

func main() {
	for _, mux := range []bool{false, true} {
		if err := run(mux); err != nil {
			fmt.Printf("ECHO FAIL (%s): %v\n", transportName(mux), err)
			os.Exit(1)
		}
	}
	fmt.Println("ECHO OK")
}

func transportName(mux bool) string {
	if mux {
		return "netpollmux"
	}
	return "netpoll"
}

func newGeneric() (generic.Generic, error) {
	p, err := generic.NewThriftContentProvider(idl, nil)
	if err != nil {
		return nil, err
	}
	return generic.JSONThriftGeneric(p)
}

func run(mux bool) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sg, err := newGeneric()
	if err != nil {
		return err
	}
	svrOpts := []server.Option{server.WithListener(ln), server.WithExitWaitTime(100 * time.Millisecond)}
	cliOpts := []client.Option{client.WithHostPorts(ln.Addr().String())}
	if mux {
		svrOpts = append(svrOpts, server.WithMuxTransport())
		cliOpts = append(cliOpts, client.WithMuxConnection(2))
	}
	svr := genericserver.NewServer(&echoService{}, sg, svrOpts...)
	served := make(chan error, 1)
	go func() { served <- svr.Run() }()
	defer func() {
		svr.Stop()
		<-served
	}()

	cg, err := newGeneric()
	if err != nil {
		return err
	}
	cli, err := genericclient.NewClient("echo", cg, cliOpts...)
	if err != nil {
		return err
	}
	defer cli.Close()

	sizes := []int{1, 100, 4 << 10, 64 << 10, 1 << 20}
	const workers = 8
	const callsPerWorker = 20
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range callsPerWorker {
				n := sizes[(w+i)%len(sizes)]
				want := fmt.Sprintf("w%d-c%d-", w, i) + strings.Repeat(string(rune('a'+w)), n)
				if err := call(cli, want); err != nil {
					errs <- fmt.Errorf("worker %d call %d (%d bytes): %w", w, i, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	fmt.Printf("%d echo calls over the %s transport matched\n", workers*callsPerWorker, transportName(mux))
	return nil
}

func call(cli genericclient.Client, want string) error {
	req, err := json.Marshal(message{Msg: want})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.GenericCall(ctx, "Echo", string(req), callopt.WithRPCTimeout(10*time.Second))
	if err != nil {
		return err
	}
	s, ok := resp.(string)
	if !ok {
		return fmt.Errorf("reply is %T; want a JSON string", resp)
	}
	var got message
	if err := json.Unmarshal([]byte(s), &got); err != nil {
		return fmt.Errorf("reply %.80q: %w", s, err)
	}
	if got.Msg != want {
		return fmt.Errorf("reply msg has %d bytes, differs from the %d sent", len(got.Msg), len(want))
	}
	return nil
}
