package netpoll

import (
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// TLS (#8) is a layer over the library's own connections, built on
// crypto/tls: see tlsConnection in tls_connection.go for how the pieces fit,
// and tls_records.go for the transport that feeds crypto/tls whole records.

// DefaultTLSHandshakeTimeout bounds a TLS handshake unless
// [WithTLSHandshakeTimeout] says otherwise: a peer that connects and stalls
// holds a goroutine and a connection this long at most.
const DefaultTLSHandshakeTimeout = 10 * time.Second

// WithTLS makes the listener serve TLS with config, which must hold a
// certificate (Certificates or GetCertificate). Connections an EventLoop
// accepts from it are Connections over plaintext: OnRequest runs when
// decrypted input is ready, and the Reader and Writer work on plaintext.
//
// The handshake runs on a runner goroutine at accept, never on a poller,
// and OnConnect runs after it succeeded. A failed handshake (a peer that is
// not speaking TLS, a wrong client certificate, a stall past the handshake
// timeout) closes the connection, is counted in [ReadTLSMetrics], and is
// logged at most once a second. config is retained and must not be changed
// afterwards.
func WithTLS(config *tls.Config) ListenerOption {
	return ListenerOption{func(o *listenerOptions) { o.tlsConfig = config }}
}

// WithTLSHandshakeTimeout bounds each TLS handshake on the listener; zero or
// less means no bound. The default is [DefaultTLSHandshakeTimeout].
func WithTLSHandshakeTimeout(timeout time.Duration) ListenerOption {
	return ListenerOption{func(o *listenerOptions) {
		o.handshakeTimeout = max(timeout, 0)
		o.handshakeTimeoutSet = true
	}}
}

// tlsListener serves TLS over a listener of this library.
type tlsListener struct {
	Listener
	config           *tls.Config
	handshakeTimeout time.Duration
}

// newTLSListener puts TLS with o's settings over l.
func newTLSListener(l Listener, o *listenerOptions) (*tlsListener, error) {
	if o.tlsConfig.Certificates == nil && o.tlsConfig.GetCertificate == nil && o.tlsConfig.GetConfigForClient == nil {
		return nil, errors.New("netpoll: WithTLS needs a tls.Config with a certificate")
	}
	timeout := DefaultTLSHandshakeTimeout
	if o.handshakeTimeoutSet {
		timeout = o.handshakeTimeout
	}
	return &tlsListener{Listener: l, config: o.tlsConfig, handshakeTimeout: timeout}, nil
}

// Accept waits for a connection and returns it as a TLS Connection. The
// handshake runs on its first read or write, bounded by the handshake
// timeout, so a slow client does not hold up Accept.
func (l *tlsListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	raw, ok := nc.(*connection)
	if !ok {
		_ = nc.Close()
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: ErrUnsupported}
	}
	return newTLSConnection(raw, true, l.config, l.handshakeTimeout), nil
}

// wrapConnection puts TLS in front of a connection the server accepted; see
// connWrapper in server.go. Called on the poller goroutine; must not block.
func (l *tlsListener) wrapConnection(c *connection, onConnect OnConnect) OnConnect {
	t := newTLSConnection(c, true, l.config, l.handshakeTimeout)
	t.onConnect = onConnect
	return t.onConnectTLS
}

// DialTLS connects to address as [DialConnection] does, then runs a TLS
// client handshake with config. timeout bounds the dial and the handshake
// together; zero means no bound for the dial and
// [DefaultTLSHandshakeTimeout] for the handshake. Without
// config.ServerName, the host part of address is verified, as tls.Dial
// does. The Connection reads and writes plaintext; its Close sends
// close_notify. config is retained and must not be changed afterwards.
func DialTLS(network, address string, timeout time.Duration, config *tls.Config) (Connection, error) {
	if config == nil {
		config = &tls.Config{}
	}
	start := time.Now()
	c, err := DialConnection(network, address, timeout)
	if err != nil {
		return nil, err
	}
	var raw *connection
	switch c := c.(type) {
	case *TCPConnection:
		raw = &c.connection
	case *UnixConnection:
		raw = &c.connection
	default:
		_ = c.Close()
		return nil, dialError(network, address, ErrUnsupported)
	}
	if config.ServerName == "" && !config.InsecureSkipVerify {
		host, _, splitErr := net.SplitHostPort(address)
		if splitErr != nil {
			host = address
		}
		config = config.Clone()
		config.ServerName = host
	}
	handshakeTimeout := DefaultTLSHandshakeTimeout
	if timeout > 0 {
		// Whatever the dial left over, but at least a moment to fail in.
		handshakeTimeout = max(timeout-time.Since(start), time.Millisecond)
	}
	t := newTLSConnection(raw, false, config, handshakeTimeout)
	if err = t.handshake(); err != nil {
		if t.handshakeState.Load() == handshakeTimedOut {
			return nil, Exception(ErrDialTimeout, "tls handshake with "+address)
		}
		return nil, dialError(network, address, err)
	}
	return t, nil
}

// TLSMetrics counts what the TLS layer saw, over every connection since the
// process started.
type TLSMetrics struct {
	Handshakes        uint64 // handshakes that succeeded
	HandshakeErrors   uint64 // handshakes that failed, timeouts included; each closed its connection
	HandshakeTimeouts uint64 // handshakes that ran past the handshake timeout
	RecordErrors      uint64 // sessions closed by a bad record or an alert after the handshake
}

// tlsCounters back ReadTLSMetrics.
var tlsCounters struct {
	handshakes, handshakeErrors, handshakeTimeouts, recordErrors atomic.Uint64
}

// ReadTLSMetrics returns a snapshot of the TLS counters. Safe for
// concurrent use.
func ReadTLSMetrics() TLSMetrics {
	return TLSMetrics{
		Handshakes:        tlsCounters.handshakes.Load(),
		HandshakeErrors:   tlsCounters.handshakeErrors.Load(),
		HandshakeTimeouts: tlsCounters.handshakeTimeouts.Load(),
		RecordErrors:      tlsCounters.recordErrors.Load(),
	}
}

// The TLS types keep the contracts the server and users rely on.
var (
	_ Connection  = (*tlsConnection)(nil)
	_ connWrapper = (*tlsListener)(nil)
)
