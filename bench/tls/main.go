// Command tlsbench compares a TLS echo server on netpoll (WithTLS) with one
// on crypto/tls over Go's net, by the server's CPU time per request. run.sh
// pins the server to core 0 with GOMAXPROCS=1 and this program's client to
// core 1, and runs both servers in the same run.
//
//	tlsbench server -impl netpoll|net -addr 127.0.0.1:9443 -write-ca ca.pem
//	tlsbench client -mode echo|bulk -addr 127.0.0.1:9443 -ca ca.pem -pid <server pid>
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: tlsbench server|client [flags]")
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "client":
		client(os.Args[2:])
	default:
		log.Fatalf("unknown role %q", os.Args[1])
	}
}

func server(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	impl := fs.String("impl", "netpoll", "netpoll or net")
	addr := fs.String("addr", "127.0.0.1:9443", "listen address")
	caPath := fs.String("write-ca", "ca.pem", "write the self-signed certificate here")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	_ = fs.Parse(args)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err = pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	cert, err := selfSigned(*caPath)
	if err != nil {
		log.Fatal(err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	switch *impl {
	case "netpoll":
		ln, err := netpoll.CreateListener("tcp", *addr, netpoll.WithTLS(config))
		if err != nil {
			log.Fatal(err)
		}
		loop, err := netpoll.NewEventLoop(echo)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			<-stop
			_ = loop.Shutdown(context.Background())
		}()
		fmt.Println("ready")
		if err = loop.Serve(ln); err != nil {
			log.Print(err)
		}
	case "net":
		ln, err := tls.Listen("tcp", *addr, config)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			<-stop
			_ = ln.Close()
		}()
		fmt.Println("ready")
		for {
			c, err := ln.Accept()
			if err != nil {
				return // runs the deferred StopCPUProfile
			}
			go serveNet(c)
		}
	default:
		log.Fatalf("unknown -impl %q", *impl)
	}
}

// echo is the netpoll handler: the plaintext goes back without a copy.
func echo(_ context.Context, c netpoll.Connection) error {
	r, w := c.Reader(), c.Writer()
	b, err := r.Next(r.Len())
	if err != nil {
		return err
	}
	if _, err = w.WriteBinary(b); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	return r.Release()
}

// serveNet is the crypto/tls handler: a goroutine per connection, as Go
// servers are written.
func serveNet(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	mode := fs.String("mode", "echo", "echo (size-byte request, wait for the reply) or bulk (stream both ways)")
	addr := fs.String("addr", "127.0.0.1:9443", "server address")
	caPath := fs.String("ca", "ca.pem", "the server's certificate")
	pid := fs.Int("pid", 0, "server pid, whose CPU time is measured")
	conns := fs.Int("conns", 100, "connections")
	size := fs.Int("size", 1024, "request size (echo) or write size (bulk)")
	warmup := fs.Duration("warmup", time.Second, "load before measuring")
	window := fs.Duration("duration", 5*time.Second, "measured window")
	label := fs.String("label", "", "row label")
	_ = fs.Parse(args)
	caPEM, err := os.ReadFile(*caPath)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	config := &tls.Config{RootCAs: pool, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(0)}

	var counted atomic.Int64 // requests (echo) or bytes echoed (bulk)
	var measuring atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range *conns {
		c, err := tls.Dial("tcp", *addr, config)
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if *mode == "echo" {
				runEcho(c, *size, stop, &counted, &measuring)
			} else {
				runBulk(c, *size, stop, &counted, &measuring)
			}
		}()
	}
	time.Sleep(*warmup)
	cpu0 := cpuTicks(*pid)
	start := time.Now()
	measuring.Store(true)
	time.Sleep(*window)
	measuring.Store(false)
	elapsed := time.Since(start)
	cpu1 := cpuTicks(*pid)
	close(stop)
	n := counted.Load()
	cpu := time.Duration(cpu1-cpu0) * time.Second / 100 // USER_HZ
	if *mode == "echo" {
		fmt.Printf("| %s | echo %d B × %d conns | %.0f req/s | %.1f µs/req | %.0f%% |\n", *label, *size, *conns,
			float64(n)/elapsed.Seconds(), float64(cpu.Microseconds())/float64(max(n, 1)), 100*cpu.Seconds()/elapsed.Seconds())
	} else {
		mb := float64(n) / (1 << 20)
		fmt.Printf("| %s | bulk %d KiB writes × %d conns | %.0f MB/s | %.2f ms CPU/MB | %.0f%% |\n", *label, *size>>10, *conns,
			mb/elapsed.Seconds(), float64(cpu.Microseconds())/1000/max(mb, 1e-9), 100*cpu.Seconds()/elapsed.Seconds())
	}
	os.Exit(0) // the load goroutines are blocked in I/O; do not wait for them
}

// runEcho sends size-byte requests and waits for each reply.
func runEcho(c *tls.Conn, size int, stop <-chan struct{}, counted *atomic.Int64, measuring *atomic.Bool) {
	req := make([]byte, size)
	resp := make([]byte, size)
	for {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := c.Write(req); err != nil {
			return
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return
		}
		if measuring.Load() {
			counted.Add(1)
		}
	}
}

// runBulk writes without waiting while a second goroutine reads the echo.
func runBulk(c *tls.Conn, size int, stop <-chan struct{}, counted *atomic.Int64, measuring *atomic.Bool) {
	go func() {
		buf := make([]byte, size)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if measuring.Load() {
			counted.Add(int64(n))
		}
		if err != nil {
			return
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

// cpuTicks returns utime+stime of pid in clock ticks (proc(5), fields 14
// and 15), which include the process's exited threads.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		log.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		log.Fatal(err)
	}
	return utime + stime
}

// selfSigned makes an ECDSA P-256 certificate for localhost and writes it,
// as PEM, to path.
func selfSigned(path string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "tlsbench"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err = os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
