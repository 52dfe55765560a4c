// Command tlsecho is an echo server over TLS built on netpoll: every byte a
// client sends comes back, decrypted and re-encrypted by crypto/tls. An
// HTTP request is echoed too, as the body of a 200 response, so curl can
// talk to it.
//
// With -cert and -key it serves that certificate; without them it makes a
// self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost at start
// and, with -write-ca, writes it as PEM for clients to trust:
//
//	go run ./examples/tlsecho -addr 127.0.0.1:8443 -write-ca /tmp/ca.pem
//	curl --cacert /tmp/ca.pem https://127.0.0.1:8443/hello
//	openssl s_client -connect 127.0.0.1:8443 -CAfile /tmp/ca.pem -quiet
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "address to listen on")
	certFile := flag.String("cert", "", "PEM certificate chain (with -key); empty: a self-signed certificate made at start")
	keyFile := flag.String("key", "", "PEM private key for -cert")
	writeCA := flag.String("write-ca", "", "with the self-signed certificate: write it, as PEM, to this path for clients to trust")
	handshakeTimeout := flag.Duration("handshake-timeout", netpoll.DefaultTLSHandshakeTimeout, "close connections whose handshake takes longer")
	idleTimeout := flag.Duration("idle-timeout", time.Minute, "close connections idle this long (0: never)")
	flag.Parse()

	cert, err := loadCertificate(*certFile, *keyFile, *writeCA)
	if err != nil {
		log.Fatal(err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ready := make(chan string, 1)
	go func() {
		if a, ok := <-ready; ok {
			fmt.Printf("tlsecho: listening on %s\n", a)
		}
	}()
	if err := run(ctx, *addr, config, *handshakeTimeout, *idleTimeout, ready); err != nil {
		log.Fatal(err)
	}
	m := netpoll.ReadTLSMetrics()
	fmt.Printf("tlsecho: stopped; handshakes %d, failed %d (timed out %d), record errors %d\n",
		m.Handshakes, m.HandshakeErrors, m.HandshakeTimeouts, m.RecordErrors)
}

// run serves TLS echo on addr until ctx ends, then shuts the event loop down.
// It sends the address it listens on to ready (which may be nil).
func run(ctx context.Context, addr string, config *tls.Config, handshakeTimeout, idleTimeout time.Duration, ready chan<- string) error {
	ln, err := netpoll.CreateListener("tcp", addr, netpoll.WithTLS(config), netpoll.WithTLSHandshakeTimeout(handshakeTimeout))
	if err != nil {
		return err
	}
	loop, err := netpoll.NewEventLoop(echo,
		netpoll.WithWriteTimeout(5*time.Second),
		netpoll.WithIdleCloseTimeout(idleTimeout),
	)
	if err != nil {
		_ = ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = loop.Shutdown(sctx)
	if serr := <-served; err == nil {
		err = serr
	}
	return err
}

// echo writes back everything buffered. Input that starts like an HTTP
// request is answered once, as an HTTP response echoing the request head,
// and the connection closed: that is what curl needs to finish.
func echo(_ context.Context, c netpoll.Connection) error {
	r, w := c.Reader(), c.Writer()
	b, err := r.Peek(r.Len())
	if err != nil {
		return err
	}
	if isHTTP(b) {
		end := bytes.Index(b, []byte("\r\n\r\n"))
		if end < 0 {
			return nil // the rest of the head is on its way
		}
		head := b[:end+4]
		_, _ = w.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
			strconv.Itoa(len(head)) + "\r\n\r\n")
		_, _ = w.WriteBinary(head)
		err = w.Flush()
		_ = c.Close()
		return err
	}
	if b, err = r.Next(len(b)); err != nil {
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

// isHTTP reports whether b begins like an HTTP/1 request line.
func isHTTP(b []byte) bool {
	for _, m := range []string{"GET ", "HEAD ", "POST ", "PUT "} {
		if bytes.HasPrefix(b, []byte(m)) {
			return true
		}
	}
	return false
}

// loadCertificate reads certFile and keyFile, or makes a self-signed
// certificate and writes it to caPath when that is set.
func loadCertificate(certFile, keyFile, caPath string) (tls.Certificate, error) {
	if certFile != "" || keyFile != "" {
		return tls.LoadX509KeyPair(certFile, keyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	// A CA certificate that is also the server's: clients trust it as a root.
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "netpoll tlsecho"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if caPath != "" {
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err = os.WriteFile(caPath, pemBytes, 0o644); err != nil {
			return tls.Certificate{}, err
		}
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
