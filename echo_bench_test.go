package netpoll

import (
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkEcho measures a 64-byte round trip over loopback against this
// library's server and a goroutine-per-connection net server, in one run.
// The clients are plain net connections in both cases, so the difference is
// the server. allocs/op counts both sides; the net clients allocate nothing
// per round trip, so it is the server's.
func BenchmarkEcho(b *testing.B) {
	for _, conns := range []int{1, 100} {
		b.Run("netpoll/conns="+strconv.Itoa(conns), func(b *testing.B) {
			ln := newLocalListener(b, "tcp")
			startServer(b, ln, echoHandler)
			runEchoClients(b, ln.Addr().String(), conns)
		})
		b.Run("net/conns="+strconv.Itoa(conns), func(b *testing.B) {
			addr := startStdEchoServer(b)
			runEchoClients(b, addr, conns)
		})
	}
}

func runEchoClients(b *testing.B, addr string, conns int) {
	clients := make([]net.Conn, conns)
	for i := range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	msg := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var wg sync.WaitGroup
	per := make(chan struct{}, conns*2)
	b.ResetTimer()
	for i := range clients {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			buf := make([]byte, len(msg))
			for range per {
				if _, err := c.Write(msg); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Error(err)
					return
				}
			}
		}(clients[i])
	}
	for b.Loop() {
		per <- struct{}{}
	}
	close(per)
	wg.Wait()
}

// startStdEchoServer runs a goroutine-per-connection echo server of package
// net, the baseline most users know.
func startStdEchoServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// BenchmarkIdleConnectionHeap reports the Go heap each idle server
// connection holds (heapB/conn). The clients are raw sockets, which hold no
// Go memory, so the figure is the server's alone. A first round, not
// measured, grows the tables that later connections reuse (the pollers'
// operator chunks, the server's set).
func BenchmarkIdleConnectionHeap(b *testing.B) {
	const conns = 5000
	ln := newLocalListener(b, "tcp")
	srv := startServer(b, ln, echoHandler).(*server)
	port := ln.Addr().(*net.TCPAddr).Port
	openIdle(b, srv, port, conns, false)
	for b.Loop() {
		openIdle(b, srv, port, conns, true)
	}
}

// openIdle connects conns raw sockets, waits until the server holds them,
// optionally reports the heap they cost, and closes them again.
func openIdle(b *testing.B, srv *server, port, conns int, report bool) {
	waitActive := func(want int64) {
		deadline := time.Now().Add(20 * time.Second)
		for srv.active.Load() != want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := srv.active.Load(); got != want {
			b.Fatalf("server holds %d connections; want %d", got, want)
		}
	}
	// Two collections: sync.Pool keeps a victim cache through one.
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fds := make([]int, 0, conns)
	for range conns {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			b.Fatal(err)
		}
		fds = append(fds, fd)
	}
	waitActive(int64(conns))
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if report {
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(conns), "heapB/conn")
	}
	for _, fd := range fds {
		syscall.Close(fd)
	}
	waitActive(0)
}

// BenchmarkNetConnSerialisation measures what the net.Conn methods pay to
// serialise concurrent callers when there is only one: the uncontended
// take and release of the Read semaphore, per call. Compare it with a
// round trip (BenchmarkEcho) to see its share.
func BenchmarkNetConnSerialisation(b *testing.B) {
	c := &connection{}
	c.init(-1, "tcp", nil)
	lock := c.readLock.get(1)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.acquireSerial(lock, &c.readDeadline, 0, ErrReadTimeout); err != nil {
			b.Fatal(err)
		}
		<-lock
	}
}
