package netpoll

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// When the first complete record carries no application data (a TLS 1.3
// session ticket), tls.Conn.Read reads on into the next record and keeps
// what did not fit its buffer. The reader must still get that plaintext:
// before #15, Next waited for its read timeout while it sat in crypto/tls.
func TestTLSPlaintextAfterSessionTicket(t *testing.T) {
	pki := newTestPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1000/16+1)[:1000]
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		s := tls.Server(c, pki.serverConfig())
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		if err = s.Handshake(); err == nil {
			// The ticket goes out at the end of the handshake; the
			// payload right behind it, so both are buffered together.
			_, err = s.Write(payload)
		}
		if err == nil {
			_, _ = s.Read(make([]byte, 1)) // until the client is done: it closes
		}
		served <- err
	}()
	config := pki.clientConfig()
	config.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	config.MinVersion = tls.VersionTLS13
	c, err := DialTLS("tcp", ln.Addr().String(), 5*time.Second, config)
	if err != nil {
		t.Fatal(err)
	}
	// Let the ticket and the payload both arrive before the first read.
	deadline := time.Now().Add(5 * time.Second)
	raw := c.(*tlsConnection).connection
	for raw.inBuf.Len() < len(payload) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_ = c.SetReadTimeout(2 * time.Second)
	got, err := c.Reader().Next(len(payload))
	if err != nil {
		t.Fatalf("Next(%d) after a session ticket = %v; want the payload", len(payload), err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("Next(%d) = %q...; want %q...", len(payload), got[:16], payload[:16])
	}
	_ = c.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// Over TLS, a framed message longer than the input limit must close the
// connection, as it does on a plain one, rather than stall it: the framing
// loop's input-limit check now sees the plaintext buffer of a TLS
// connection (before #15 it only knew plain connections, and the message
// waited for good while both the records and the plaintext sat at the
// limit).
func TestTLSFramingMessageOverInputLimit(t *testing.T) {
	const limit = 16 << 10
	pki := newTestPKI(t)
	ln := newLocalTLSListener(t, "tcp", WithTLS(pki.serverConfig()))
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		return WriteMessage(ctx, c, MessageFrom(ctx))
	}, WithProtocol(LengthPrefixed(4, binary.BigEndian, 1<<20)), WithMaxInputBuffer(limit))
	c := dialStdTLS(t, ln, pki.clientConfig())
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := make([]byte, 4+100_000) // well within the protocol's maximum, beyond the input limit
	binary.BigEndian.PutUint32(msg, 100_000)
	go func() { _, _ = c.Write(msg) }()
	_, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a message larger than the input limit = %v; want the server to close the connection", err)
	}
}
