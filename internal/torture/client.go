//go:build unix

package torture

import (
	"errors"
	"math/rand/v2"
	"net"
	"syscall"
	"time"
)

// clientWorker opens one client connection after another until the run
// stops. The clients use package net, an independent peer.
func (r *run) clientWorker(worker int) {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, 1<<40|uint64(worker)))
	for !r.stopped() {
		r.clientConn(rng)
	}
}

// clientConn plays one client: it sends a few messages of its canary with
// random gaps (some longer than the idle timeout), reads everything the
// server sends back with random pauses (which stall the server's Flush),
// checks every byte, and ends with a FIN, a plain close or a reset.
func (r *run) clientConn(rng *rand.Rand) {
	id := r.nextID.Add(1)
	if id > MaxID {
		r.pause(time.Hour) // ids exhausted: wait for the end of the run
		return
	}
	rcvbuf := 0
	if rng.IntN(3) == 0 {
		rcvbuf = 4096
	}
	c, err := dial(r.cfg.Network, r.addr, rcvbuf)
	if err != nil {
		r.pause(10 * time.Millisecond)
		return
	}
	r.stats.Conns.Add(1)
	readRng := rand.New(rand.NewPCG(r.cfg.Seed, 2<<40|uint64(id)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.clientRead(c, id, readRng)
	}()

	idle := r.cfg.IdleTimeout
	var off int64
	for range 1 + rng.IntN(6) {
		if r.stopped() {
			break
		}
		n := messageSize(rng)
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(Pattern(id, off, n)); err != nil {
			break
		}
		off += int64(n)
		switch gap := rng.IntN(10); {
		case gap < 5:
		case gap < 8:
			r.pause(time.Duration(rng.Int64N(int64(50 * time.Millisecond))))
		default:
			r.pause(idle/2 + time.Duration(rng.Int64N(int64(idle+idle/2))))
		}
	}
	switch end := rng.IntN(4); end {
	case 0:
		// A reset on TCP. A unix socket has none: its close with unread
		// input is what the peer sees as ECONNRESET.
		r.stats.PeerResets.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	case 1:
		_ = c.Close()
	default:
		_ = c.CloseWrite()
		t := time.NewTimer(2*idle + time.Second)
		select {
		case <-done:
		case <-t.C:
		case <-r.stop:
		}
		t.Stop()
		_ = c.Close()
	}
	<-done
}

// messageSize picks the size of a client message: mostly small, often
// large enough that the server's WriteBinary references it, sometimes
// spanning several read nodes.
func messageSize(rng *rand.Rand) int {
	switch k := rng.IntN(10); {
	case k < 4:
		return 8 + rng.IntN(505)
	case k < 7:
		return 4096 + rng.IntN(5000)
	case k < 9:
		return 5000
	default:
		return 16<<10 + rng.IntN(48<<10)
	}
}

// clientRead reads what the server sends until an error, checking every
// byte against the connection's canary.
func (r *run) clientRead(c clientConn, id uint32, rng *rand.Rand) {
	buf := make([]byte, 32<<10)
	var off int64
	for {
		if rng.IntN(8) == 0 {
			r.stats.ClientPauses.Add(1)
			r.pause(time.Duration(20+rng.IntN(280)) * time.Millisecond)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if n > 0 {
			r.stats.BytesChecked.Add(int64(n))
			r.fail(CheckStream(buf[:n], id, off, "client received stream,"))
			off += int64(n)
		}
		if err != nil {
			return
		}
	}
}

// clientConn is a client's end: a *net.TCPConn or a *net.UnixConn.
type clientConn interface {
	net.Conn
	CloseWrite() error
}

// dial connects a client over network ("tcp" or "unix") to addr. A unix
// client ignores rcvbuf: its peer's writes are bounded by the sender's
// buffer, so a client that stops reading stalls the server's Flush anyway.
func dial(network, addr string, rcvbuf int) (clientConn, error) {
	if network != "unix" {
		c, err := Dial(addr, rcvbuf)
		if err != nil {
			return nil, err // not a nil *net.TCPConn in a non-nil interface
		}
		return c, nil
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.Dial("unix", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// Dial connects a package net client to addr; with rcvbuf > 0 it shrinks
// the receive buffer before connecting, so the window stays small and a
// client that stops reading stalls the server's Flush soon.
func Dial(addr string, rcvbuf int) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
