package netpollprom

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// dashboard is the part of dashboard.json the tests read.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("dashboard.json has no panels")
	}
	return d
}

// exported returns the names of the metrics the collector exports, as a
// registry gathers them.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	return names
}

// TestDashboardQueriesExportedMetrics: every metric a dashboard query names
// is one the collector exports, and every exported metric is on the
// dashboard, so a renamed metric cannot leave a panel silently empty.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	d := readDashboard(t)
	have := exported(t)
	if len(have) == 0 {
		t.Fatal("the collector describes no metrics")
	}
	metricName := regexp.MustCompile(`\bnetpoll_[a-z0-9_]+`)
	queried := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			names := metricName.FindAllString(target.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no netpoll metric", p.Title, target.Expr)
			}
			for _, name := range names {
				queried[name] = true
				if !have[name] {
					t.Errorf("panel %q queries %s, which the collector does not export", p.Title, name)
				}
			}
		}
	}
	for name := range have {
		if !queried[name] {
			t.Errorf("the collector exports %s, but no panel shows it", name)
		}
	}
}

// TestDashboardPanelsDescribed: README.md describes every panel under a
// heading with the panel's title.
func TestDashboardPanelsDescribed(t *testing.T) {
	d := readDashboard(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	headings := strings.Split(string(readme), "\n")
	for _, p := range d.Panels {
		if !slices.Contains(headings, "### "+p.Title) {
			t.Errorf("README.md has no \"### %s\" section for the panel", p.Title)
		}
	}
}
