package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// repoRoot is the library's checkout this test runs in.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// offlineGo makes every go command the test runs, and those the switch
// runs, work from the module cache alone: x/sys is there, since building
// this module needed it. The reference is never fetched: a directory
// replace stands in for every version of it.
func offlineGo(t *testing.T) {
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "-mod=mod -buildvcs=false")
	t.Setenv("GOTOOLCHAIN", "local")
}

// consumerMain is a program written for cloudwego/netpoll: an echo server
// on an EventLoop, a client over DialConnection, and a ShardQueue from mux.
const consumerMain = `package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/cloudwego/netpoll/mux"
)

func main() {
	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0")
	check(err)
	loop, err := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		r := c.Reader()
		b, err := r.Next(r.Len())
		if err != nil {
			return err
		}
		_, _ = c.Writer().WriteBinary(append([]byte(nil), b...))
		_ = r.Release()
		return c.Writer().Flush()
	})
	check(err)
	go func() { _ = loop.Serve(ln) }()
	conn, err := netpoll.DialConnection("tcp", ln.Addr().String(), time.Second)
	check(err)
	q := mux.NewShardQueue(2, conn)
	q.Add(func() (netpoll.Writer, bool) {
		buf := netpoll.NewLinkBuffer()
		_, _ = buf.WriteString("hello, switch")
		_ = buf.Flush()
		return buf, false
	})
	check(conn.SetReadTimeout(5 * time.Second))
	got, err := conn.Reader().ReadString(len("hello, switch"))
	check(err)
	_ = q.Close()
	_ = conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	check(loop.Shutdown(ctx))
	fmt.Println("echo:", got)
}

func check(err error) {
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}
`

// newConsumer makes a module that requires the reference, as a Kitex or
// Hertz service's go.mod does, with a go line below the library's.
func newConsumer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	gomod := "module example.com/consumer\n\ngo 1.22\n\nrequire github.com/cloudwego/netpoll v0.7.2\n"
	mustWrite(t, filepath.Join(dir, "go.mod"), gomod)
	mustWrite(t, filepath.Join(dir, "main.go"), consumerMain)
	return dir
}

func mustWrite(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runSwitch runs the command with args and wants exit code want.
func runSwitch(t *testing.T, want int, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if code := run(args, &out, &out); code != want {
		t.Fatalf("netpoll-switch %s = exit %d; want %d; output:\n%s", strings.Join(args, " "), code, want, out.String())
	}
	return out.String()
}

// goIn runs the go command in dir and returns its combined output.
func goIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSwitchBuildsAndRuns is the README's recipe on a consumer module: the
// switch writes the copy and the replace, the program builds and runs on
// this library over loopback, and re-running updates the copy.
func TestSwitchBuildsAndRuns(t *testing.T) {
	offlineGo(t)
	root := repoRoot(t)
	dir := newConsumer(t)
	copyDir := filepath.Join(dir, "third_party", "netpoll")
	wantVersion := strings.TrimSpace(mustRead(t, filepath.Join(root, "VERSION")))

	out := runSwitch(t, 0, "-project", dir, "-from", root)
	if !strings.Contains(out, "wrote github.com/ccb70390/netpoll "+wantVersion) {
		t.Errorf("switch output lacks the version written (%s):\n%s", wantVersion, out)
	}
	gomod := mustRead(t, filepath.Join(dir, "go.mod"))
	if !strings.Contains(gomod, "replace github.com/cloudwego/netpoll => ./third_party/netpoll") {
		t.Fatalf("go.mod after the switch has no replace:\n%s", gomod)
	}
	marker := mustRead(t, filepath.Join(copyDir, markerName))
	if !strings.Contains(marker, "version:     "+wantVersion) {
		t.Errorf("%s does not name version %s:\n%s", markerName, wantVersion, marker)
	}
	if got := strings.TrimSpace(mustRead(t, filepath.Join(copyDir, "VERSION"))); got != wantVersion {
		t.Errorf("copy's VERSION = %q; want %q", got, wantVersion)
	}
	copyMod := mustRead(t, filepath.Join(copyDir, "go.mod"))
	if !strings.Contains(copyMod, "module github.com/cloudwego/netpoll\n") || strings.Contains(copyMod, "goleak") {
		t.Errorf("copy's go.mod should name the reference's path and no test-only requirement:\n%s", copyMod)
	}
	checkCopyFiles(t, copyDir)

	bin := filepath.Join(t.TempDir(), "consumer")
	goIn(t, dir, "build", "-o", bin, ".")
	prog := exec.Command(bin)
	var stdout, stderr bytes.Buffer
	prog.Stdout, prog.Stderr = &stdout, &stderr
	if err := prog.Run(); err != nil || stdout.String() != "echo: hello, switch\n" {
		t.Fatalf("consumer = %v, stdout %q, stderr %q; want the echo", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "github.com/ccb70390/netpoll in use") || !strings.Contains(stderr.String(), "version="+wantVersion) {
		t.Errorf("consumer's stderr lacks the line that names the library: %q", stderr.String())
	}
	if v := goIn(t, dir, "version", "-m", bin); !strings.Contains(v, "=>\t./third_party/netpoll") {
		t.Errorf("go version -m does not show the replace:\n%s", v)
	}

	// Re-running replaces the copy whole: a file only the old copy had goes.
	stale := filepath.Join(copyDir, "stale.go")
	mustWrite(t, stale, "package netpoll\n")
	runSwitch(t, 0, "-project", dir, "-from", root)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("re-running left %s from the earlier copy (err %v)", stale, err)
	}
	goIn(t, dir, "build", "./...")
}

// checkCopyFiles: the copy holds the library's packages and none of its
// tests, examples or tools, and no import of the library's own path.
func checkCopyFiles(t *testing.T, copyDir string) {
	t.Helper()
	for _, want := range []string{"LICENSE", "VERSION", "connection.go", "mux", "internal/poller"} {
		if _, err := os.Stat(filepath.Join(copyDir, want)); err != nil {
			t.Errorf("copy lacks %s: %v", want, err)
		}
	}
	err := filepath.WalkDir(copyDir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(copyDir, path)
		switch {
		case d.IsDir() && (d.Name() == "examples" || d.Name() == "bench" || d.Name() == "cmd" || d.Name() == "testdata"):
			t.Errorf("copy holds %s", rel)
		case strings.HasSuffix(path, "_test.go"):
			t.Errorf("copy holds test file %s", rel)
		case strings.HasSuffix(path, ".go") && strings.Contains(mustRead(t, path), `"github.com/ccb70390/netpoll`):
			t.Errorf("%s still imports github.com/ccb70390/netpoll", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRevertRestoresReference: -revert drops the replace and removes the
// copy and the third_party directory it left empty.
func TestRevertRestoresReference(t *testing.T) {
	offlineGo(t)
	dir := newConsumer(t)
	runSwitch(t, 0, "-project", dir, "-from", repoRoot(t), "-tidy=false")
	out := runSwitch(t, 0, "-project", dir, "-revert", "-tidy=false")
	if gomod := mustRead(t, filepath.Join(dir, "go.mod")); strings.Contains(gomod, "replace") {
		t.Errorf("go.mod after -revert still has a replace:\n%s", gomod)
	}
	if _, err := os.Stat(filepath.Join(dir, "third_party")); !os.IsNotExist(err) {
		t.Errorf("third_party after -revert: err %v; want it gone", err)
	}
	if !strings.Contains(out, "reverted") {
		t.Errorf("-revert output: %s", out)
	}
	// Reverting again has nothing to do and says so.
	if out := runSwitch(t, 0, "-project", dir, "-revert", "-tidy=false"); !strings.Contains(out, "no replace") {
		t.Errorf("second -revert output: %s", out)
	}
}

// TestForeignDirectoryLeftAlone: a directory the command did not write is
// neither overwritten by a switch nor removed by a revert.
func TestForeignDirectoryLeftAlone(t *testing.T) {
	offlineGo(t)
	dir := newConsumer(t)
	mine := filepath.Join(dir, "third_party", "netpoll", "mine.txt")
	mustWrite(t, mine, "mine")
	before := mustRead(t, filepath.Join(dir, "go.mod"))
	out := runSwitch(t, 1, "-project", dir, "-from", repoRoot(t), "-tidy=false")
	if !strings.Contains(out, "not written by netpoll-switch") {
		t.Errorf("switch over a foreign directory said: %s", out)
	}
	if got := mustRead(t, filepath.Join(dir, "go.mod")); got != before {
		t.Errorf("go.mod changed:\n%s", got)
	}
	runSwitch(t, 1, "-project", dir, "-revert", "-tidy=false")
	if got := mustRead(t, mine); got != "mine" {
		t.Errorf("%s = %q after the refused revert", mine, got)
	}
}

// TestRevertKeepsOtherReplace: a replace the user pointed elsewhere is not
// the command's to drop.
func TestRevertKeepsOtherReplace(t *testing.T) {
	offlineGo(t)
	dir := newConsumer(t)
	goIn(t, dir, "mod", "edit", "-replace=github.com/cloudwego/netpoll=../fork")
	before := mustRead(t, filepath.Join(dir, "go.mod"))
	out := runSwitch(t, 1, "-project", dir, "-revert", "-tidy=false")
	if !strings.Contains(out, "leaving it alone") {
		t.Errorf("-revert with another replace said: %s", out)
	}
	if got := mustRead(t, filepath.Join(dir, "go.mod")); got != before {
		t.Errorf("go.mod changed:\n%s", got)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"stray argument", []string{"now"}, 2},
		{"unknown flag", []string{"-bogus"}, 2},
		{"dir outside the module", []string{"-dir", "../elsewhere", "-project", "."}, 1},
		{"help", []string{"-h"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(tt.args, &out, &out); code != tt.want {
				t.Errorf("run(%q) = %d; want %d\n%s", tt.args, code, tt.want, out.String())
			}
		})
	}
}

// TestVersionFlag: -version names the version the copy would say.
func TestVersionFlag(t *testing.T) {
	root := repoRoot(t)
	out := runSwitch(t, 0, "-version", "-from", root)
	want := "github.com/ccb70390/netpoll " + strings.TrimSpace(mustRead(t, filepath.Join(root, "VERSION")))
	if !strings.HasPrefix(out, want) {
		t.Errorf("-version = %q; want it to start with %q", out, want)
	}
}

func TestRewriteImports(t *testing.T) {
	src := `package x

import (
	"fmt"

	"github.com/ccb70390/netpoll"
	poller "github.com/ccb70390/netpoll/internal/poller"
	"github.com/ccb70390/netpollish"
	"golang.org/x/sys/unix"
)

// Uses github.com/ccb70390/netpoll.
var name = "github.com/ccb70390/netpoll"
`
	out, used, err := rewriteImports("x.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		`"github.com/cloudwego/netpoll"`,
		`poller "github.com/cloudwego/netpoll/internal/poller"`,
		`"github.com/ccb70390/netpollish"`,
		`// Uses github.com/ccb70390/netpoll.`,
		`var name = "github.com/ccb70390/netpoll"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten file lacks %s:\n%s", want, got)
		}
	}
	if want := "github.com/ccb70390/netpollish golang.org/x/sys/unix"; strings.Join(used, " ") != want {
		t.Errorf("imports used = %q; want %q", used, want)
	}
}
