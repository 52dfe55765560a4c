package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccb70390/netpoll"
	"github.com/ccb70390/netpoll/examples/internal/extest"
	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines, ignoring the library's pollers and
// idle handler goroutines, which live as long as the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ccb70390/netpoll/internal/poller.(*Poller).loop"),
		goleak.IgnoreTopFunction("github.com/ccb70390/netpoll.(*workerPool).serve"),
	)
}

// startTLSEcho makes the self-signed certificate as main does without
// -cert, writes it where -write-ca would, and serves until the test ends.
func startTLSEcho(t *testing.T) (addr, caPath string, roots *x509.CertPool) {
	t.Helper()
	caPath = filepath.Join(t.TempDir(), "ca.pem")
	cert, err := loadCertificate("", "", caPath)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("the written CA is not PEM")
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}}
	addr = extest.StartServer(t, func(ctx context.Context, addr string, ready chan<- string) error {
		return run(ctx, addr, config, netpoll.DefaultTLSHandshakeTimeout, time.Minute, ready)
	})
	return addr, caPath, roots
}

// TestTLSEchoGoClient: crypto/tls's client, trusting the written CA,
// gets every byte back, from a small message to 1 MiB.
func TestTLSEchoGoClient(t *testing.T) {
	addr, _, roots := startTLSEcho(t)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, size := range []int{5, 16 << 10, 1 << 20} {
		msg := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		errc := make(chan error, 1)
		go func() { _, err := c.Write(msg); errc <- err }()
		got := make([]byte, size)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("echo of %d bytes: %v", size, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes differs", size)
		}
	}
}

// TestTLSEchoCurl: curl --cacert gets the HTTP answer, which echoes the
// request head, as the package comment shows.
func TestTLSEchoCurl(t *testing.T) {
	curl := extest.Client(t, "curl")
	addr, caPath, _ := startTLSEcho(t)
	out := extest.Command(t, 20*time.Second, nil, curl, "-s", "-S", "--cacert", caPath, "https://"+addr+"/hello")
	if !strings.HasPrefix(out, "GET /hello HTTP/1.1\r\n") {
		t.Fatalf("curl printed %q; want the echoed request head", out)
	}
}

// TestTLSEchoOpenSSL: openssl s_client, trusting the CA, gets its line
// back. Its standard input stays open until the echo is in, because
// s_client stops reading the server once its input ends.
func TestTLSEchoOpenSSL(t *testing.T) {
	openssl := extest.Client(t, "openssl")
	addr, caPath, _ := startTLSEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", addr, "-CAfile", caPath, "-verify_return_error", "-quiet")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	defer cancel() // ends s_client, which -quiet keeps running after its input ends
	defer stdin.Close()
	if _, err := io.WriteString(stdin, "hello over openssl\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "hello over openssl\n" {
		t.Fatalf("openssl printed %q, %v; want the echoed line", line, err)
	}
}
