package netpoll

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and "localhost", and
// a client certificate, all ECDSA P-256, made fresh for each test.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "netpoll test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "localhost"},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = leaf(2, x509.ExtKeyUsageServerAuth)
	p.client = leaf(3, x509.ExtKeyUsageClientAuth)
	return p
}

func (p *testPKI) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.server}}
}

func (p *testPKI) clientConfig() *tls.Config {
	return &tls.Config{RootCAs: p.pool, ServerName: "localhost"}
}

// newTLSListener listens with TLS on loopback or a unix socket.
func newLocalTLSListener(t testing.TB, network string, opts ...ListenerOption) Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := CreateListener(network, addr, opts...)
	if err != nil {
		t.Fatalf("CreateListener(%q, %q, WithTLS) = %v", network, addr, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// dialStdTLS connects with crypto/tls over package net, an independent peer.
func dialStdTLS(t testing.TB, ln net.Listener, config *tls.Config) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, ln.Addr().Network(), ln.Addr().String(), config)
	if err != nil {
		t.Fatalf("tls.Dial(%v) = %v", ln.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echoRoundTrip writes msg on c and reads back as many bytes, concurrently,
// so a message larger than the socket buffers cannot deadlock.
func echoRoundTrip(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	written := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		written <- err
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo of %d bytes: %v", len(msg), err)
	}
	if err := <-written; err != nil {
		t.Fatalf("Write(%d bytes) = %v", len(msg), err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes differs", len(msg))
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestTLSEcho(t *testing.T) {
	pki := newTestPKI(t)
	for _, tt := range []struct {
		name, network string
		dialer        string
	}{
		{"tcp/crypto-tls-client", "tcp", "std"},
		{"tcp/DialTLS", "tcp", "netpoll"},
		{"unix/crypto-tls-client", "unix", "std"},
		{"unix/DialTLS", "unix", "netpoll"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln := newLocalTLSListener(t, tt.network, WithTLS(pki.serverConfig()))
			startServer(t, ln, echoHandler)
			var c net.Conn
			if tt.dialer == "std" {
				c = dialStdTLS(t, ln, pki.clientConfig())
			} else {
				nc, err := DialTLS(ln.Addr().Network(), ln.Addr().String(), 2*time.Second, pki.clientConfig())
				if err != nil {
					t.Fatalf("DialTLS = %v", err)
				}
				t.Cleanup(func() { _ = nc.Close() })
				c = nc
			}
			for _, size := range []int{1, 1 << 10, 16<<10 + 1, 1 << 20} {
				echoRoundTrip(t, c, pattern(size))
			}
		})
	}
}

// dribbleConn writes every Write one byte at a time, so TLS records reach
// the server split across many reads.
type dribbleConn struct{ net.Conn }

func (d dribbleConn) Write(p []byte) (int, error) {
	for i := range p {
		if _, err := d.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// TestTLSNocopyFraming serves a length-prefixed protocol with the blocking
// zero-copy calls (Peek, Next, Malloc, Flush) on plaintext, over records
// that arrive a byte at a time and frames that span records.
func TestTLSNocopyFraming(t *testing.T) {
	pki := newTestPKI(t)
	ln := newLocalTLSListener(t, "tcp", WithTLS(pki.serverConfig()))
	errs := make(chan error, 16)
	startServer(t, ln, func(_ context.Context, c Connection) error {
		r, w := c.Reader(), c.Writer()
		hdr, err := r.Peek(2)
		if err != nil {
			errs <- err
			return err
		}
		n := int(hdr[0])<<8 | int(hdr[1])
		frame, err := r.Next(2 + n)
		if err != nil {
			errs <- err
			return err
		}
		out, err := w.Malloc(len(frame))
		if err != nil {
			errs <- err
			return err
		}
		copy(out, frame)
		if err = w.Flush(); err != nil {
			errs <- err
			return err
		}
		return r.Release()
	}, WithReadTimeout(5*time.Second))
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(dribbleConn{raw}, pki.clientConfig())
	t.Cleanup(func() { _ = c.Close() })
	for _, n := range []int{0, 1, 300, 20000} {
		frame := append([]byte{byte(n >> 8), byte(n)}, pattern(n)...)
		// Two writes: the frame's header and body are in different records.
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(frame[:1]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(frame[1:]); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(frame))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("frame of %d: %v", n, err)
		}
		if !bytes.Equal(got, frame) {
			t.Fatalf("frame of %d came back different", n)
		}
	}
	select {
	case err := <-errs:
		t.Fatalf("handler: %v", err)
	default:
	}
}

// clientHello returns the first flight a crypto/tls client sends.
func clientHello(t testing.TB, config *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		_ = tls.Client(a, config).Handshake()
	}()
	buf := make([]byte, 4096)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := b.Read(buf)
	_ = b.Close()
	_ = a.Close()
	if err != nil {
		t.Fatalf("capturing a ClientHello: %v", err)
	}
	return buf[:n]
}

// TestTLSBadPeers checks that every kind of bad peer ends in a closed
// connection and a counted handshake error, without a hung goroutine (the
// goleak check in TestMain sees those).
func TestTLSBadPeers(t *testing.T) {
	pki := newTestPKI(t)
	other := newTestPKI(t)
	hello := clientHello(t, pki.clientConfig())
	mtls := pki.serverConfig()
	mtls.ClientAuth = tls.RequireAndVerifyClientCert
	mtls.ClientCAs = pki.pool
	for _, tt := range []struct {
		name    string
		server  *tls.Config
		timeout bool // the server's handshake timeout must end it
		peer    func(t *testing.T, addr string) error
	}{
		{"plain-text client", pki.serverConfig(), false, func(t *testing.T, addr string) error {
			return rawPeer(t, addr, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true)
		}},
		{"truncated handshake", pki.serverConfig(), false, func(t *testing.T, addr string) error {
			return rawPeer(t, addr, hello[:len(hello)/2], false)
		}},
		{"stalls mid-handshake", pki.serverConfig(), true, func(t *testing.T, addr string) error {
			return rawPeer(t, addr, hello[:len(hello)/2], true)
		}},
		{"silent peer", pki.serverConfig(), true, func(t *testing.T, addr string) error {
			return rawPeer(t, addr, nil, true)
		}},
		{"client certificate from another CA", mtls, false, func(t *testing.T, addr string) error {
			cfg := pki.clientConfig()
			cfg.Certificates = []tls.Certificate{other.client}
			return tlsPeer(addr, cfg)
		}},
		{"no client certificate", mtls, false, func(t *testing.T, addr string) error {
			return tlsPeer(addr, pki.clientConfig())
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkNoFDLeak(t)
			ln := newLocalTLSListener(t, "tcp", WithTLS(tt.server), WithTLSHandshakeTimeout(300*time.Millisecond))
			var requests atomic.Int32
			startServer(t, ln, func(_ context.Context, c Connection) error {
				requests.Add(1)
				return nil
			})
			before := ReadTLSMetrics()
			start := time.Now()
			if err := tt.peer(t, ln.Addr().String()); err == nil {
				t.Fatalf("the bad peer's connection stayed usable; want it closed")
			}
			if d := time.Since(start); !tt.timeout && d > 250*time.Millisecond {
				t.Errorf("closed after %v; want at once, before the handshake timeout", d)
			}
			waitFor(t, 5*time.Second, "the handshake error to be counted", func() bool {
				return ReadTLSMetrics().HandshakeErrors > before.HandshakeErrors
			})
			if tt.timeout {
				if got := ReadTLSMetrics().HandshakeTimeouts; got <= before.HandshakeTimeouts {
					t.Errorf("HandshakeTimeouts = %d; want more than %d", got, before.HandshakeTimeouts)
				}
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("OnRequest ran %d times for a peer that never completed a handshake", n)
			}
		})
	}
}

// rawPeer sends b over plain TCP, optionally keeps its side open, and reads
// until the server closes: it returns nil only if the server kept the
// connection open for 3 s.
func rawPeer(t *testing.T, addr string, b []byte, keepOpen bool) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err = c.Write(b); err != nil {
		return err
	}
	if !keepOpen {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		if _, err = c.Read(make([]byte, 512)); err != nil {
			if isTimeoutErr(err) {
				return nil
			}
			return err
		}
	}
}

// tlsPeer handshakes with crypto/tls and reads: it returns nil only if the
// server let it read without an error for 3 s.
func tlsPeer(addr string, config *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, config)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if isTimeoutErr(err) {
		return nil
	}
	return err
}

// TestTLSMutualAuth lets a client with a certificate from the trusted CA
// through and shows its certificate to OnConnect.
func TestTLSMutualAuth(t *testing.T) {
	pki := newTestPKI(t)
	cfg := pki.serverConfig()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = pki.pool
	ln := newLocalTLSListener(t, "tcp", WithTLS(cfg))
	peers := make(chan string, 1)
	startServer(t, ln, echoHandler, WithOnConnect(func(ctx context.Context, c Connection) context.Context {
		st := c.(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
		if len(st.PeerCertificates) > 0 {
			peers <- st.PeerCertificates[0].Subject.CommonName
		}
		return ctx
	}))
	ccfg := pki.clientConfig()
	ccfg.Certificates = []tls.Certificate{pki.client}
	c := dialStdTLS(t, ln, ccfg)
	echoRoundTrip(t, c, []byte("hello"))
	if got := recvTimeout(t, peers, 5*time.Second, "OnConnect"); got != "localhost" {
		t.Errorf("peer certificate CN = %q; want localhost", got)
	}
}

// TestTLSCallbacks checks the order of callbacks and the half-close: a
// client that sends close_notify but keeps TCP open (CloseWrite) gets the
// reply to what it sent, then the server's close_notify; OnDisconnect and
// the close callback run once each.
func TestTLSCallbacks(t *testing.T) {
	pki := newTestPKI(t)
	ln := newLocalTLSListener(t, "tcp", WithTLS(pki.serverConfig()))
	var events []string
	eventsC := make(chan string, 16)
	startServer(t, ln, echoHandler,
		WithOnPrepare(func(c Connection) context.Context {
			eventsC <- "prepare"
			_ = c.AddCloseCallback(func(Connection) error {
				eventsC <- "closed"
				return nil
			})
			return context.Background()
		}),
		WithOnConnect(func(ctx context.Context, c Connection) context.Context {
			eventsC <- "connect"
			return ctx
		}),
		WithOnDisconnect(func(ctx context.Context, c Connection) {
			eventsC <- "disconnect"
		}))
	c := dialStdTLS(t, ln, pki.clientConfig())
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("ReadAll after CloseWrite = %q, %v; want the echo and a clean close_notify", got, err)
	}
	if string(got) != "ping" {
		t.Fatalf("ReadAll after CloseWrite = %q; want ping", got)
	}
	for len(events) < 4 {
		events = append(events, recvTimeout(t, eventsC, 5*time.Second, "callbacks"))
	}
	want := []string{"prepare", "connect", "disconnect", "closed"}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("callbacks ran as %v; want %v", events, want)
		}
	}
	select {
	case e := <-eventsC:
		t.Fatalf("extra callback %q after %v", e, events)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestTLSTimeouts checks the read timeout of a blocking plaintext read, and
// the idle timeout, on server connections.
func TestTLSTimeouts(t *testing.T) {
	pki := newTestPKI(t)
	t.Run("read timeout", func(t *testing.T) {
		ln := newLocalTLSListener(t, "tcp", WithTLS(pki.serverConfig()))
		errs := make(chan error, 1)
		startServer(t, ln, func(_ context.Context, c Connection) error {
			_, err := c.Reader().Next(10)
			errs <- err
			return err
		}, WithReadTimeout(200*time.Millisecond))
		c := dialStdTLS(t, ln, pki.clientConfig())
		if _, err := c.Write([]byte("short")); err != nil {
			t.Fatal(err)
		}
		err := recvTimeout(t, errs, 5*time.Second, "the handler's Next")
		if !errors.Is(err, ErrReadTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Next(10) with 5 bytes sent = %v; want ErrReadTimeout", err)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		ln := newLocalTLSListener(t, "tcp", WithTLS(pki.serverConfig()))
		startServer(t, ln, echoHandler, WithIdleCloseTimeout(300*time.Millisecond))
		c := dialStdTLS(t, ln, pki.clientConfig())
		echoRoundTrip(t, c, []byte("x"))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
			t.Fatalf("Read on an idle connection = %v; want the server to close it", err)
		}
	})
}

// TestTLSShutdown closes idle TLS connections and returns.
func TestTLSShutdown(t *testing.T) {
	pki := newTestPKI(t)
	ln := newLocalTLSListener(t, "tcp", WithTLS(pki.serverConfig()))
	loop, err := NewEventLoop(echoHandler)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- loop.Serve(ln) }()
	c := dialStdTLS(t, ln, pki.clientConfig())
	echoRoundTrip(t, c, []byte("before shutdown"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := loop.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := recvTimeout(t, served, 5*time.Second, "Serve"); err != nil {
		t.Fatalf("Serve = %v after Shutdown", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeoutErr(err) {
		t.Fatalf("Read after Shutdown = %v; want the connection closed", err)
	}
}

// TestDialTLS drives a crypto/tls server with DialTLS: the zero-copy and
// net.Conn calls, a read deadline, and Close sending close_notify.
func TestDialTLS(t *testing.T) {
	pki := newTestPKI(t)
	std, err := tls.Listen("tcp", "127.0.0.1:0", pki.serverConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = std.Close() })
	serverErr := make(chan error, 1)
	go func() {
		c, err := std.Accept()
		if err != nil {
			serverErr <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 5)
		if _, err = io.ReadFull(c, buf); err == nil {
			_, err = c.Write(append(buf, "-pong"...))
		}
		if err == nil {
			// Close sends close_notify: a clean io.EOF, not a truncation.
			_, err = c.Read(buf)
			if err == io.EOF {
				err = nil
			}
		}
		serverErr <- err
	}()
	c, err := DialTLS("tcp", std.Addr().String(), 2*time.Second, pki.clientConfig())
	if err != nil {
		t.Fatalf("DialTLS = %v", err)
	}
	w := c.Writer()
	if _, err = w.WriteString("ping!"); err != nil {
		t.Fatal(err)
	}
	if err = w.Flush(); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	_ = c.SetReadTimeout(5 * time.Second)
	got, err := c.Reader().Next(10)
	if err != nil || string(got) != "ping!-pong" {
		t.Fatalf("Next(10) = %q, %v; want ping!-pong", got, err)
	}
	_ = c.Reader().Release()
	if err = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err = c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v; want os.ErrDeadlineExceeded", err)
	}
	if err = c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err = recvTimeout(t, serverErr, 5*time.Second, "the crypto/tls server"); err != nil {
		t.Fatalf("crypto/tls server: %v", err)
	}
	if err = c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v; want net.ErrClosed", err)
	}
}

// TestDialTLSErrors: an untrusted server certificate fails the dial, and a
// server that never answers the handshake times it out.
func TestDialTLSErrors(t *testing.T) {
	pki := newTestPKI(t)
	other := newTestPKI(t)
	t.Run("unknown authority", func(t *testing.T) {
		ln := newLocalTLSListener(t, "tcp", WithTLS(pki.serverConfig()))
		startServer(t, ln, echoHandler)
		_, err := DialTLS("tcp", ln.Addr().String(), 2*time.Second, other.clientConfig())
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("DialTLS to an untrusted server = %v; want x509.UnknownAuthorityError", err)
		}
	})
	t.Run("silent server", func(t *testing.T) {
		ln := newLocalListener(t, "tcp") // accepts, never answers
		_, err := DialTLS("tcp", ln.Addr().String(), 300*time.Millisecond, pki.clientConfig())
		if !errors.Is(err, ErrDialTimeout) {
			t.Fatalf("DialTLS to a silent server = %v; want ErrDialTimeout", err)
		}
	})
}

// TestSocketReusePort serves two listeners on one port; the kernel spreads
// connections over both.
func TestSocketReusePort(t *testing.T) {
	first := newLocalTLSListener(t, "tcp", WithSocketReusePort(true))
	second, err := CreateListener("tcp", first.Addr().String(), WithSocketReusePort(true))
	if err != nil {
		t.Fatalf("second CreateListener on %v = %v", first.Addr(), err)
	}
	t.Cleanup(func() { _ = second.Close() })
	var served [2]atomic.Int32
	for i, ln := range []Listener{first, second} {
		startServer(t, ln, func(_ context.Context, c Connection) error {
			served[i].Add(1)
			return echoHandler(context.Background(), c)
		})
	}
	for i := 0; i < 200 && (served[0].Load() == 0 || served[1].Load() == 0); i++ {
		c, err := net.DialTimeout("tcp", first.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		echoRoundTrip(t, c, []byte("x"))
		_ = c.Close()
	}
	if served[0].Load() == 0 || served[1].Load() == 0 {
		t.Fatalf("requests per listener = %d, %d; want both to accept", served[0].Load(), served[1].Load())
	}
}
