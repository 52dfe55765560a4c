//go:build unix

package torture

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Stats counts the operations a run performed while it goes; a Result
// carries them as Ops.
type Stats struct {
	Conns          atomic.Int64 // client connections opened
	Requests       atomic.Int64 // OnRequest calls
	BytesChecked   atomic.Int64 // canary bytes checked, both directions
	NextSlices     atomic.Int64 // slices taken with Next
	PeekSlices     atomic.Int64 // slices taken with Peek (then Skip)
	Rechecks       atomic.Int64 // held slices checked again after a hold or a failure
	Holds          atomic.Int64 // handlers that held their memory without I/O
	HoldsPastIdle  atomic.Int64 // … for at least the idle timeout
	Mallocs        atomic.Int64 // Malloc buffers filled late and re-checked before Flush
	ZeroCopyWrites atomic.Int64 // WriteBinary of input slices of at least BinaryInplaceThreshold
	Flushes        atomic.Int64 // Flush calls
	FlushFailures  atomic.Int64 // Flushes that failed on a write deadline or timeout
	FlushRetries   atomic.Int64 // Flushes again after a failed one and a Release
	WriteTimeouts  atomic.Int64 // Flushes run under a write timeout (which closes)
	ReadTimeouts   atomic.Int64 // Next calls that ran past a read timeout
	ForeignCloses  atomic.Int64 // Close from another goroutine during a hold
	HandlerCloses  atomic.Int64 // Close by the handler itself, output unsent
	PeerResets     atomic.Int64 // clients that closed with SO_LINGER 0
	ClientPauses   atomic.Int64 // clients that stopped reading for a while
	Accepted       atomic.Int64 // server connections that OnConnect saw
	CloseCallbacks atomic.Int64 // close callbacks run
}

// counters lists the fields in the order String prints them.
func (s *Stats) counters() []struct {
	name string
	v    *atomic.Int64
} {
	return []struct {
		name string
		v    *atomic.Int64
	}{
		{"conns", &s.Conns}, {"requests", &s.Requests}, {"bytes-checked", &s.BytesChecked},
		{"next-slices", &s.NextSlices}, {"peek-slices", &s.PeekSlices}, {"rechecks", &s.Rechecks},
		{"holds", &s.Holds}, {"holds-past-idle", &s.HoldsPastIdle}, {"mallocs", &s.Mallocs},
		{"zero-copy-writes", &s.ZeroCopyWrites}, {"flushes", &s.Flushes},
		{"flush-failures", &s.FlushFailures}, {"flush-retries", &s.FlushRetries},
		{"write-timeouts", &s.WriteTimeouts}, {"read-timeouts", &s.ReadTimeouts},
		{"foreign-closes", &s.ForeignCloses}, {"handler-closes", &s.HandlerCloses},
		{"peer-resets", &s.PeerResets}, {"client-pauses", &s.ClientPauses},
		{"accepted", &s.Accepted}, {"close-callbacks", &s.CloseCallbacks},
	}
}

// Op is one counter of a finished run.
type Op struct {
	Name string
	N    int64
}

// Ops is the counters of a finished run, in a fixed order.
type Ops []Op

// ops reads the counters.
func (s *Stats) ops() Ops {
	var o Ops
	for _, f := range s.counters() {
		o = append(o, Op{f.name, f.v.Load()})
	}
	return o
}

// Get returns the counter called name, or 0.
func (o Ops) Get(name string) int64 {
	for _, op := range o {
		if op.Name == name {
			return op.N
		}
	}
	return 0
}

// Total is the sum of the operation counters (bytes not included).
func (o Ops) Total() int64 {
	var n int64
	for _, op := range o {
		if op.Name != "bytes-checked" {
			n += op.N
		}
	}
	return n
}

// String prints the counters as name=value pairs.
func (o Ops) String() string {
	parts := make([]string, len(o))
	for i, op := range o {
		parts[i] = fmt.Sprintf("%s=%d", op.Name, op.N)
	}
	return strings.Join(parts, " ")
}

// Add returns the sum of o and p counter by counter; either may be empty.
func (o Ops) Add(p Ops) Ops {
	if len(o) == 0 {
		return append(Ops(nil), p...)
	}
	sum := append(Ops(nil), o...)
	for i := range sum {
		sum[i].N += p.Get(sum[i].Name)
	}
	return sum
}
