// Package harness is what every Go echo server of the suite shares: the
// flags, the "listening" line that run.sh waits for, and the signals by which
// the load generator marks the measured window.
//
// The window is marked by signals rather than by timing in the shell so that
// profiles and allocation counts cover exactly the requests that were
// measured: loadgen -k sends SIGUSR1 when the window opens and SIGUSR2 when
// it closes. SIGTERM or SIGINT then prints one STATS line and exits.
package harness

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"
)

// echoed counts the bytes every server echoes. One uncontended atomic add per
// handler call, in every Go server alike, so no server pays more than another.
var echoed atomic.Int64

// Echoed records that n bytes were written back. Safe for concurrent use.
func Echoed(n int) { echoed.Add(int64(n)) }

// Flags are the command-line options every server takes.
type Flags struct {
	// Addr is the loopback address to listen on, host:port.
	Addr string
	// CPUProfile, when set, is the file that receives a CPU profile of the
	// measured window.
	CPUProfile string
	// MemProfile, when set, is the file that receives a heap profile taken
	// when the window closes, while the connections are still open.
	MemProfile string
	// MsgSize, when set, is the size of one request, so that the STATS line
	// can say how many heap allocations the server made per request.
	MsgSize int
}

// Parse reads the flags of a server and installs the signal handlers. It must
// run before the server prints its listening line: SIGUSR1 would otherwise
// kill the process.
func Parse() *Flags {
	f := &Flags{}
	flag.StringVar(&f.Addr, "addr", "127.0.0.1:7000", "listen address (loopback)")
	flag.StringVar(&f.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured window to this file")
	flag.StringVar(&f.MemProfile, "memprofile", "", "write a heap profile at the end of the measured window to this file")
	rate := flag.Int("memprofilerate", 0, "runtime.MemProfileRate (0 keeps the default; 1 records every allocation)")
	flag.IntVar(&f.MsgSize, "msgsize", 0, "request size in bytes, for allocations per request in the STATS line")
	flag.Parse()
	if *rate > 0 {
		runtime.MemProfileRate = *rate
	}
	go f.handleSignals()
	return f
}

// Listening prints the one line that tells run.sh the server is ready.
func Listening(name, addr string) {
	fmt.Printf("%s listening on %s (GOMAXPROCS=%d)\n", name, addr, runtime.GOMAXPROCS(0))
}

// handleSignals owns the window marks; it runs on its own goroutine and
// sleeps on the channel between marks, so it costs nothing under load.
func (f *Flags) handleSignals() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	var start, end runtime.MemStats
	var startAt, endAt time.Time
	var startBytes, endBytes int64
	var profile *os.File
	marked, closed := false, false
	for sig := range ch {
		switch sig {
		case syscall.SIGUSR1:
			if f.CPUProfile != "" && profile == nil {
				profile = f.startCPUProfile()
			}
			runtime.ReadMemStats(&start)
			startAt = time.Now()
			startBytes = echoed.Load()
			marked, closed = true, false
		case syscall.SIGUSR2:
			runtime.ReadMemStats(&end)
			endAt = time.Now()
			endBytes = echoed.Load()
			closed = true
			if profile != nil {
				pprof.StopCPUProfile()
				profile.Close()
				profile = nil
			}
			f.writeHeapProfile()
		default:
			if marked && !closed {
				runtime.ReadMemStats(&end)
				endAt = time.Now()
				endBytes = echoed.Load()
			}
			if marked {
				f.printStats(&start, &end, endAt.Sub(startAt), endBytes-startBytes)
			}
			if !closed {
				// No window was closed (idle runs send no marks): the heap
				// profile shows what the open connections hold now.
				f.writeHeapProfile()
			}
			os.Exit(0)
		}
	}
}

// printStats prints the window's allocation figures on one line, which run.sh
// parses: key=value pairs after the word STATS.
func (f *Flags) printStats(start, end *runtime.MemStats, window time.Duration, bytes int64) {
	mallocs := end.Mallocs - start.Mallocs
	fmt.Printf("STATS mallocs=%d frees=%d alloc_bytes=%d num_gc=%d window_s=%.3f heap_inuse=%d echoed_bytes=%d",
		mallocs, end.Frees-start.Frees, end.TotalAlloc-start.TotalAlloc, end.NumGC-start.NumGC,
		window.Seconds(), end.HeapInuse, bytes)
	if f.MsgSize > 0 && bytes > 0 {
		reqs := bytes / int64(f.MsgSize)
		fmt.Printf(" requests=%d mallocs_per_req=%.4f", reqs, float64(mallocs)/float64(reqs))
	}
	fmt.Println()
}

func (f *Flags) startCPUProfile() *os.File {
	out, err := os.Create(f.CPUProfile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cpuprofile: %v\n", err)
		return nil
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		fmt.Fprintf(os.Stderr, "cpuprofile: %v\n", err)
		out.Close()
		return nil
	}
	return out
}

func (f *Flags) writeHeapProfile() {
	if f.MemProfile == "" {
		return
	}
	// The in-use figures are those of the last GC: make it now.
	runtime.GC()
	out, err := os.Create(f.MemProfile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "memprofile: %v\n", err)
		return
	}
	defer out.Close()
	if err := pprof.Lookup("heap").WriteTo(out, 0); err != nil {
		fmt.Fprintf(os.Stderr, "memprofile: %v\n", err)
	}
}
