package netpoll

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// BenchmarkFramedEcho measures length-prefixed messages (4-byte big-endian
// prefix, 64-byte body) echoed by this library's event loop with
// WithProtocol, and by the same framing written by hand on package net
// (goroutine per connection, bufio), in one run. The clients are plain net
// connections in both cases. Each op is one message; "pipeline=16" sends 16
// messages in one write before reading the 16 replies.
func BenchmarkFramedEcho(b *testing.B) {
	shapes := []struct{ conns, pipeline int }{{1, 1}, {50, 1}, {1, 16}}
	for _, s := range shapes {
		name := "conns=" + strconv.Itoa(s.conns) + "/pipeline=" + strconv.Itoa(s.pipeline)
		b.Run("netpoll/"+name, func(b *testing.B) {
			ln, _ := startFramedServer(b, LengthPrefixed(4, binary.BigEndian, 64<<10), framedEcho)
			runFramedClients(b, ln.Addr().String(), s.conns, s.pipeline)
		})
		b.Run("net/"+name, func(b *testing.B) {
			runFramedClients(b, startStdFramedServer(b), s.conns, s.pipeline)
		})
	}
}

// runFramedClients drives conns connections; b.Loop hands out one batch of
// pipeline messages per op, and the messages/s metric counts messages.
func runFramedClients(b *testing.B, addr string, conns, pipeline int) {
	const body = 64
	frame := make([]byte, 4+body)
	binary.BigEndian.PutUint32(frame, body)
	batch := make([]byte, 0, len(frame)*pipeline)
	for range pipeline {
		batch = append(batch, frame...)
	}
	clients := make([]net.Conn, conns)
	for i := range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	work := make(chan struct{}, conns*2)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			reply := make([]byte, len(batch))
			for range work {
				if _, err := c.Write(batch); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(c, reply); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for b.Loop() {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(b.N*pipeline)/b.Elapsed().Seconds(), "msgs/s")
}

// startStdFramedServer runs the hand-written baseline: a goroutine per
// connection reading frames through bufio, replying through bufio, and
// flushing when no more input is buffered, so pipelined requests share a
// write as they do on the event loop.
func startStdFramedServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serveStdFramed(c, 64<<10) })
		}
	})
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func serveStdFramed(c net.Conn, maxFrame int) {
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	var hdr [4]byte
	body := make([]byte, 0, 1024)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > maxFrame {
			return
		}
		body = body[:0]
		body = append(body, make([]byte, n)...)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		_, _ = bw.Write(hdr[:])
		_, _ = bw.Write(body)
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}
