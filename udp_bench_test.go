package netpoll

import (
	"net"
	"testing"
	"time"
)

// BenchmarkUDPEcho measures one datagram's round trip through a session
// server (with and without receive batching), a ReadFrom/WriteTo loop on a
// UDPListener, and a package net server, from one package net client in the
// same process. bench/udp/run.sh measures throughput and CPU with the server
// and the client on cores of their own.
func BenchmarkUDPEcho(b *testing.B) {
	msg := make([]byte, 64)
	servers := []struct {
		name  string
		start func(b *testing.B) net.Addr
	}{
		{"netpoll-session-batch16", func(b *testing.B) net.Addr { return startUDPSessions(b, 16) }},
		{"netpoll-session-batch1", func(b *testing.B) net.Addr { return startUDPSessions(b, 1) }},
		{"netpoll-packet", startUDPPacketEcho},
		{"std", startStdUDPEcho},
	}
	for _, srv := range servers {
		b.Run(srv.name, func(b *testing.B) {
			addr := srv.start(b)
			c, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 100)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func startUDPSessions(b *testing.B, batch int) net.Addr {
	l := newUDPListener(b, WithDatagramBatch(batch))
	startServer(b, l, echoHandler)
	return l.Addr()
}

func startUDPPacketEcho(b *testing.B) net.Addr {
	l := newUDPListener(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := l.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = l.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	b.Cleanup(func() { _ = l.Close(); <-done })
	return l.Addr()
}

func startStdUDPEcho(b *testing.B) net.Addr {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	b.Cleanup(func() { _ = c.Close(); <-done })
	return c.LocalAddr()
}
