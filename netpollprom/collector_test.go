package netpollprom

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccb70390/netpoll"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// scrape fetches /metrics over HTTP and returns each sample by name.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("bad sample %q: %v", line, err)
		}
		samples[name] = v
	}
	return samples
}

// TestScrapeAfterKnownTraffic serves an echo EventLoop, sends known traffic,
// and checks what a Prometheus scrape over HTTP reports.
func TestScrapeAfterKnownTraffic(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector())
	web := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer web.Close()

	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	loop, _ := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		b, err := c.Reader().Next(c.Reader().Len())
		if err != nil {
			return err
		}
		_, _ = c.Writer().WriteBinary(b)
		err = c.Writer().Flush()
		_ = c.Reader().Release()
		return err
	})
	go func() { _ = loop.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = loop.Shutdown(ctx)
	}()

	before := scrape(t, web.URL)
	const msgs, size = 20, 500
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for range msgs {
		if _, err := c.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	var after map[string]float64
	for {
		after = scrape(t, web.URL)
		if after["netpoll_connections_closed_total"]-before["netpoll_connections_closed_total"] >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := map[string]float64{
		"netpoll_connections_accepted_total": 1,
		"netpoll_connections_closed_total":   1,
		"netpoll_read_bytes_total":           msgs * size,
		"netpoll_written_bytes_total":        msgs * size,
	}
	for name, delta := range want {
		if got := after[name] - before[name]; got != delta {
			t.Errorf("%s grew by %v; want %v", name, got, delta)
		}
	}
	if _, ok := after["netpoll_connections_active"]; !ok {
		t.Errorf("scrape lacks netpoll_connections_active")
	}
}
