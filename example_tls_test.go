package netpoll_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"

	"github.com/ccb70390/netpoll"
)

// selfSignedTLS makes a certificate for 127.0.0.1, valid for an hour, and
// returns a server config that presents it and a client config that trusts
// it. A real server loads its certificate with tls.LoadX509KeyPair.
func selfSignedTLS() (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "netpoll example"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: roots}
}

// A TLS echo server. The handshake runs on a runner goroutine, never on a
// poller; OnConnect runs after it succeeded, and OnRequest reads and writes
// plaintext through the same zero-copy API as a plain connection. The client
// is crypto/tls's own.
func ExampleWithTLS() {
	serverConfig, clientConfig := selfSignedTLS()
	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0", netpoll.WithTLS(serverConfig))
	if err != nil {
		panic(err)
	}
	loop, err := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		r, w := c.Reader(), c.Writer()
		b, err := r.Next(r.Len()) // plaintext
		if err != nil {
			return err
		}
		_, _ = w.WriteBinary(b)
		err = w.Flush() // encrypted here, on this goroutine
		_ = r.Release()
		return err
	})
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()

	client, err := tls.Dial("tcp", ln.Addr().String(), clientConfig)
	if err != nil {
		panic(err)
	}
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = client.Write([]byte("secret"))
	reply := make([]byte, 6)
	_, err = io.ReadFull(client, reply)
	fmt.Printf("%s %v %s\n", reply, err, tls.VersionName(client.ConnectionState().Version))
	_ = client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = loop.Shutdown(ctx)
	<-served
	fmt.Println("handshakes counted:", netpoll.ReadTLSMetrics().Handshakes > 0)
	// Output:
	// secret <nil> TLS 1.3
	// handshakes counted: true
}

// A TLS client connection: DialTLS dials and runs the handshake within its
// timeout; the Connection then reads and writes plaintext. Here it talks to
// a netpoll TLS server, but any TLS server would do.
func ExampleDialTLS() {
	serverConfig, clientConfig := selfSignedTLS()
	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0", netpoll.WithTLS(serverConfig))
	if err != nil {
		panic(err)
	}
	loop, _ := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		line, err := c.Reader().Until('\n')
		if err != nil {
			return err
		}
		_, _ = c.Writer().WriteString("hello, " + string(line))
		err = c.Writer().Flush()
		_ = c.Reader().Release()
		return err
	})
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()

	c, err := netpoll.DialTLS("tcp", ln.Addr().String(), 5*time.Second, clientConfig)
	if err != nil {
		panic(err)
	}
	_ = c.SetReadTimeout(5 * time.Second)
	_, _ = c.Writer().WriteString("gopher\n")
	_ = c.Writer().Flush()
	reply, err := c.Reader().Until('\n')
	fmt.Printf("%q %v\n", reply, err)
	_ = c.Reader().Release()
	_ = c.Close() // sends close_notify

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = loop.Shutdown(ctx)
	<-served
	// Output:
	// "hello, gopher\n" <nil>
}
