package netpoll

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// TestVersionMatchesFile: the version the library logs is the one the
// VERSION file says, which the switch stamps on its copies.
func TestVersionMatchesFile(t *testing.T) {
	b, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != version {
		t.Fatalf("VERSION says %q; the version constant says %q", got, version)
	}
}

// TestAnnounceLine: the line MIGRATING.md tells users to look for names the
// library, its version and the release it replaces.
func TestAnnounceLine(t *testing.T) {
	var buf bytes.Buffer
	announceTo(slog.New(slog.NewTextHandler(&buf, nil)))
	line := buf.String()
	for _, want := range []string{
		"level=INFO",
		`msg="netpoll: github.com/ccb70390/netpoll in use"`,
		"version=" + version,
		`replaces="github.com/cloudwego/netpoll v0.7.2"`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("announce line %q lacks %s", line, want)
		}
	}
	if strings.Count(line, "\n") != 1 {
		t.Errorf("announce wrote %q; want one line", line)
	}
}

// TestSubmodulesRequireThisVersion: netpollprom requires the library at the
// version this tree is (so the two are tagged together, RELEASING in
// CHANGELOG.md), and go.work points that version at this tree for local
// development.
func TestSubmodulesRequireThisVersion(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"netpollprom/go.mod", "require github.com/ccb70390/netpoll " + version + "\n"},
		{"go.work", "replace github.com/ccb70390/netpoll " + version + " => ./\n"},
	} {
		b, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("%s lacks %q:\n%s", tt.file, strings.TrimSpace(tt.want), b)
		}
	}
}
