package netpoll

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ccb70390/netpoll/internal/bufpool"
	"github.com/ccb70390/netpoll/internal/poller"
)

// Metrics is a snapshot of the library's counters, summed over every
// poller. Counters only grow; ConnectionsOpen and BufferBytesInUse are
// levels. Reading them costs a few atomic loads per poller.
type Metrics struct {
	ConnectionsOpen     int64  // connections open now, accepted and dialed
	ConnectionsAccepted uint64 // accepted by an EventLoop
	ConnectionsDialed   uint64 // made by a dialer or NewFDConnection
	ConnectionsClosed   uint64 // closed, by either side
	ConnectionsRefused  uint64 // accepted and closed at once by WithMaxConnections
	SessionsRefused     uint64 // datagrams of new UDP peers dropped at a listener's session limit (WithMaxSessions)

	BytesRead    uint64 // bytes read from sockets
	BytesWritten uint64 // bytes written to sockets
	Reads        uint64 // read system calls that returned input
	Writes       uint64 // write and writev system calls that sent output

	ReadTimeouts  uint64 // blocking reads that ran past their timeout or deadline
	WriteTimeouts uint64 // flushes and writes that ran past theirs
	IdleTimeouts  uint64 // connections closed by the idle timeout

	PeerResets   uint64 // connections whose read failed (ECONNRESET and the like)
	WriteErrors  uint64 // writes that failed other than by timeout
	AcceptErrors uint64 // accept failures (EMFILE, ENFILE …)
	Panics       uint64 // panics recovered from callbacks

	BufferBytesInUse int64 // pooled buffer memory held by buffers; 0 until EnableBufferMetrics

	TLS TLSMetrics // the TLS handshake and record counters, as ReadTLSMetrics

	Engine         string // what the pollers run on: "epoll", "kqueue" or "io_uring" (see EngineIOURing)
	EngineFallback bool   // io_uring was asked for and refused, so the readiness engine serves
}

// counters are one poller's share of Metrics. The poller goroutine writes
// the read-side fields; the write side is written by the goroutines that
// flush that poller's connections. Padding keeps two pollers' counters off
// one cache line.
type counters struct {
	open                                   atomic.Int64
	accepted, dialed, closed, refused      atomic.Uint64
	sessionsRefused                        atomic.Uint64
	bytesRead, bytesWritten, reads, writes atomic.Uint64
	readTimeouts, writeTimeouts            atomic.Uint64
	idleTimeouts                           atomic.Uint64
	peerResets, writeErrors                atomic.Uint64
	acceptErrors, panics                   atomic.Uint64
	_                                      [64]byte
}

// pollerState is what the library keeps for each poller, with the poller
// (poller.Local): its counters and its idle wheel.
type pollerState struct {
	counters counters
	wheel    idleWheel
}

// pollerStates lists every poller's state, for ReadMetrics: a poller that
// SetNumLoops retired keeps its counts in the totals.
var pollerStates struct {
	sync.Mutex
	all []*pollerState
}

// newPollerState makes a poller's state and lists it; see stateOf.
func newPollerState() any {
	s := new(pollerState)
	pollerStates.Lock()
	pollerStates.all = append(pollerStates.all, s)
	pollerStates.Unlock()
	return s
}

// stateOf returns p's state, making it on first use.
func stateOf(p *poller.Poller) *pollerState {
	return p.Local(newPollerState).(*pollerState)
}

// countersOf returns p's counters.
func countersOf(p *poller.Poller) *counters { return &stateOf(p).counters }

// detachedCounters count what happens on connections without a poller
// (a failed registration) and anything not tied to one.
var detachedCounters counters

// bufferTracking is set once EnableBufferMetrics started counting.
var bufferTracking sync.Once

// EnableBufferMetrics starts counting the pooled buffer memory that buffers
// hold (Metrics.BufferBytesInUse) for the rest of the process. It is off by
// default because the count is one atomic word that every buffer allocation
// and release, on every core, must update; only memory taken from the pools
// after the call is counted.
func EnableBufferMetrics() {
	bufferTracking.Do(func() { bufpool.Track() })
}

// ReadMetrics returns a snapshot of the library's counters. Safe for
// concurrent use; cheap enough to call on every scrape.
func ReadMetrics() Metrics {
	var m Metrics
	add := func(c *counters) {
		m.ConnectionsOpen += c.open.Load()
		m.ConnectionsAccepted += c.accepted.Load()
		m.ConnectionsDialed += c.dialed.Load()
		m.ConnectionsClosed += c.closed.Load()
		m.ConnectionsRefused += c.refused.Load()
		m.SessionsRefused += c.sessionsRefused.Load()
		m.BytesRead += c.bytesRead.Load()
		m.BytesWritten += c.bytesWritten.Load()
		m.Reads += c.reads.Load()
		m.Writes += c.writes.Load()
		m.ReadTimeouts += c.readTimeouts.Load()
		m.WriteTimeouts += c.writeTimeouts.Load()
		m.IdleTimeouts += c.idleTimeouts.Load()
		m.PeerResets += c.peerResets.Load()
		m.WriteErrors += c.writeErrors.Load()
		m.AcceptErrors += c.acceptErrors.Load()
		m.Panics += c.panics.Load()
	}
	add(&detachedCounters)
	pollerStates.Lock()
	for _, s := range pollerStates.all {
		add(&s.counters)
	}
	pollerStates.Unlock()
	m.BufferBytesInUse = bufpool.Held()
	m.TLS = ReadTLSMetrics()
	m.Engine, m.EngineFallback = engineInUse()
	return m
}

// metricFamilies lists the Prometheus name, type and help of each field,
// in the order WriteMetricsText writes them; the exporter in package
// netpollprom uses the same names.
var metricFamilies = []struct {
	name, kind, help string
	value            func(m *Metrics) float64
}{
	{"netpoll_connections_active", "gauge", "Connections open now.", func(m *Metrics) float64 { return float64(m.ConnectionsOpen) }},
	{"netpoll_connections_accepted_total", "counter", "Connections accepted by an EventLoop.", func(m *Metrics) float64 { return float64(m.ConnectionsAccepted) }},
	{"netpoll_connections_dialed_total", "counter", "Connections made by a dialer.", func(m *Metrics) float64 { return float64(m.ConnectionsDialed) }},
	{"netpoll_connections_closed_total", "counter", "Connections closed by either side.", func(m *Metrics) float64 { return float64(m.ConnectionsClosed) }},
	{"netpoll_connections_refused_total", "counter", "Connections refused by the connection limit.", func(m *Metrics) float64 { return float64(m.ConnectionsRefused) }},
	{"netpoll_udp_sessions_refused_total", "counter", "Datagrams of new UDP peers dropped at the session limit.", func(m *Metrics) float64 { return float64(m.SessionsRefused) }},
	{"netpoll_read_bytes_total", "counter", "Bytes read from sockets.", func(m *Metrics) float64 { return float64(m.BytesRead) }},
	{"netpoll_written_bytes_total", "counter", "Bytes written to sockets.", func(m *Metrics) float64 { return float64(m.BytesWritten) }},
	{"netpoll_reads_total", "counter", "Read system calls that returned input.", func(m *Metrics) float64 { return float64(m.Reads) }},
	{"netpoll_writes_total", "counter", "Write system calls that sent output.", func(m *Metrics) float64 { return float64(m.Writes) }},
	{"netpoll_read_timeouts_total", "counter", "Blocking reads that timed out.", func(m *Metrics) float64 { return float64(m.ReadTimeouts) }},
	{"netpoll_write_timeouts_total", "counter", "Writes and flushes that timed out.", func(m *Metrics) float64 { return float64(m.WriteTimeouts) }},
	{"netpoll_idle_timeouts_total", "counter", "Connections closed by the idle timeout.", func(m *Metrics) float64 { return float64(m.IdleTimeouts) }},
	{"netpoll_peer_resets_total", "counter", "Connections whose read failed, such as by a reset.", func(m *Metrics) float64 { return float64(m.PeerResets) }},
	{"netpoll_write_errors_total", "counter", "Writes that failed other than by timeout.", func(m *Metrics) float64 { return float64(m.WriteErrors) }},
	{"netpoll_accept_errors_total", "counter", "Accept failures.", func(m *Metrics) float64 { return float64(m.AcceptErrors) }},
	{"netpoll_panics_total", "counter", "Panics recovered from callbacks.", func(m *Metrics) float64 { return float64(m.Panics) }},
	{"netpoll_buffer_bytes", "gauge", "Pooled buffer memory held by buffers.", func(m *Metrics) float64 { return float64(m.BufferBytesInUse) }},
	{"netpoll_tls_handshakes_total", "counter", "TLS handshakes that succeeded.", func(m *Metrics) float64 { return float64(m.TLS.Handshakes) }},
	{"netpoll_tls_handshake_errors_total", "counter", "TLS handshakes that failed, timeouts included.", func(m *Metrics) float64 { return float64(m.TLS.HandshakeErrors) }},
	{"netpoll_tls_handshake_timeouts_total", "counter", "TLS handshakes that ran past their timeout.", func(m *Metrics) float64 { return float64(m.TLS.HandshakeTimeouts) }},
	{"netpoll_tls_record_errors_total", "counter", "TLS sessions closed by a bad record or an alert.", func(m *Metrics) float64 { return float64(m.TLS.RecordErrors) }},
	{"netpoll_engine_io_uring", "gauge", "1 if the pollers run on io_uring, 0 on epoll or kqueue.", func(m *Metrics) float64 { return boolValue(m.Engine == "io_uring") }},
	{"netpoll_engine_fallback", "gauge", "1 if io_uring was asked for and refused, so epoll serves.", func(m *Metrics) float64 { return boolValue(m.EngineFallback) }},
}

// boolValue is 1 for true, as Prometheus writes a flag.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// WriteMetricsText writes the current metrics in the Prometheus text
// exposition format, for a /metrics endpoint without a dependency.
func WriteMetricsText(w io.Writer) error {
	m := ReadMetrics()
	for _, f := range metricFamilies {
		if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", f.name, f.help, f.name, f.kind, f.name, f.value(&m)); err != nil {
			return err
		}
	}
	return nil
}

// MetricDesc describes one metric of [ReadMetrics] for exporters.
type MetricDesc struct {
	Name, Help string
	Counter    bool // a counter; otherwise a gauge
	Value      func(m *Metrics) float64
}

// MetricDescs lists every metric with its Prometheus name, so exporters in
// other packages publish the same names as [WriteMetricsText].
func MetricDescs() []MetricDesc {
	descs := make([]MetricDesc, len(metricFamilies))
	for i, f := range metricFamilies {
		descs[i] = MetricDesc{Name: f.name, Help: f.help, Counter: f.kind == "counter", Value: f.value}
	}
	return descs
}
