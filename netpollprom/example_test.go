package netpollprom_test

import (
	"fmt"
	"strings"

	"github.com/ccb70390/netpoll/netpollprom"
	"github.com/prometheus/client_golang/prometheus"
)

// Register the collector once; a promhttp handler on the same registry then
// serves the library's metrics on /metrics. Here the registry is gathered
// directly, and the connection metrics are listed with their types.
func ExampleNewCollector() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(netpollprom.NewCollector())
	// In a server: http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "netpoll_connections_") {
			fmt.Println(f.GetName(), f.GetType())
		}
	}
	// Output:
	// netpoll_connections_accepted_total COUNTER
	// netpoll_connections_active GAUGE
	// netpoll_connections_closed_total COUNTER
	// netpoll_connections_dialed_total COUNTER
	// netpoll_connections_refused_total COUNTER
}
