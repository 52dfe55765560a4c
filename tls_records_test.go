package netpoll

import (
	"bytes"
	"crypto/tls"
	"net"
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
			_, err = s.Read(make([]byte, 1)) // until the client is done
		}
		served <- nil
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
