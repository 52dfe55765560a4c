// Package netpollprom exports netpoll's counters to Prometheus. It lives in
// its own module so that the library itself never depends on
// client_golang.
//
//	prometheus.MustRegister(netpollprom.NewCollector())
//
// The metric names follow Prometheus conventions and match
// netpoll.WriteMetricsText: netpoll_connections_active, and counters ending
// in _total with units in their names (netpoll_read_bytes_total).
//
// The module is versioned with the library: the tag netpollprom/vX.Y.Z
// requires github.com/ccb70390/netpoll vX.Y.Z. Depend on it by version,
//
//	go get github.com/ccb70390/netpoll/netpollprom@v0.1.0
//
// Inside the library's repository, go.work makes it use the tree it sits
// in. A service switched with cmd/netpoll-switch runs the library as
// github.com/cloudwego/netpoll, a module this package does not import, so
// its counters are not the ones this collector reads; such a service can
// serve github.com/cloudwego/netpoll's WriteMetricsText instead.
package netpollprom

import (
	"github.com/ccb70390/netpoll"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector of netpoll.ReadMetrics. Each scrape
// takes one snapshot, so the values of one scrape are consistent with each
// other as far as the library's atomics allow.
type Collector struct {
	descs   []netpoll.MetricDesc
	metrics []*prometheus.Desc
}

// NewCollector returns a Collector of every metric netpoll keeps.
func NewCollector() *Collector {
	c := &Collector{descs: netpoll.MetricDescs()}
	for _, d := range c.descs {
		c.metrics = append(c.metrics, prometheus.NewDesc(d.Name, d.Help, nil, nil))
	}
	return c
}

// Describe sends the descriptions of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.metrics {
		ch <- d
	}
}

// Collect sends the current value of every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	m := netpoll.ReadMetrics()
	for i, d := range c.descs {
		kind := prometheus.GaugeValue
		if d.Counter {
			kind = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(c.metrics[i], kind, d.Value(&m))
	}
}
