package netpoll

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/poller"
)

// The engine child: the parent re-runs this test binary with childEnv set to
// "refuse" (a seccomp filter makes io_uring_setup fail with EPERM, as a
// container profile or kernel.io_uring_disabled=2 does) or "allow", and
// NETPOLL_ENGINE=io_uring. TestMain installs the filter before the pollers
// start (prepareEngineChild), since Initialize starts them.
const childEnv = "NETPOLL_TEST_ENGINE_CHILD"

// fallbackLine is the start of the line the library logs when it falls back.
const fallbackLine = "netpoll: io_uring engine unavailable"

// prepareEngineChild installs the seccomp filter in a "refuse" child.
func prepareEngineChild() {
	if os.Getenv(childEnv) != "refuse" {
		return
	}
	if err := refuseIOURingSetup(); err != nil {
		// The child test reports it: io_uring_setup would not fail with EPERM.
		os.Setenv(childEnv, "refuse-failed: "+err.Error())
	}
}

// refuseIOURingSetup installs, for every thread of the process
// (SECCOMP_FILTER_FLAG_TSYNC), a filter that fails io_uring_setup with
// EPERM and allows every other call. io_uring_setup is number 425 on every
// architecture Go supports on Linux (the unified numbering since 5.1), so
// the filter need not look at the architecture.
func refuseIOURingSetup() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_IO_URING_SETUP},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return e
	}
	return nil
}

// runEngineChild runs TestEngineChild in a child process in mode, and returns
// its output.
func runEngineChild(t *testing.T, mode string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEngineChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, engineEnv+"=io_uring")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child (%s): %v\n%s", mode, err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestEngineChild") {
		t.Fatalf("child (%s) did not run TestEngineChild:\n%s", mode, out)
	}
	return string(out)
}

// TestEngineFallback: where the kernel refuses io_uring, NETPOLL_ENGINE=io_uring
// still serves, on epoll, and says so once however many pollers start.
func TestEngineFallback(t *testing.T) {
	out := runEngineChild(t, "refuse")
	if n := strings.Count(out, fallbackLine); n != 1 {
		t.Fatalf("child logged %q %d times; want once:\n%s", fallbackLine, n, out)
	}
	if !strings.Contains(out, "operation not permitted") {
		t.Fatalf("fallback line does not give the kernel's EPERM:\n%s", out)
	}
}

// TestEngineIOURing: asked for io_uring, on a kernel that allows it, the
// pollers run on io_uring.
func TestEngineIOURing(t *testing.T) {
	out := runEngineChild(t, "allow")
	if strings.Contains(out, fallbackLine) {
		t.Skipf("this kernel refuses io_uring; the io_uring engine is not tested here:\n%s", out)
	}
}

// TestEngineChild is the child's side of TestEngineFallback and
// TestEngineIOURing; run alone it skips.
func TestEngineChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("runs as the child of TestEngineFallback and TestEngineIOURing")
	}
	if strings.HasPrefix(mode, "refuse-failed") {
		t.Fatal(mode)
	}
	if mode == "refuse" {
		_, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, 0, 0)
		if e != unix.EPERM {
			t.Fatalf("io_uring_setup under the filter: %v; want EPERM", e)
		}
	}
	// More pollers: each one tries io_uring again, and must not log again.
	if err := SetNumLoops(3); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = SetNumLoops(1) })
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	for range 3 {
		// Both ends on the library: the client's connection is served by the
		// same engine.
		c := dial(t, ln)
		if err := echoOnce(c, []byte("ping over whichever engine"), 5*time.Second); err != nil {
			t.Fatalf("echo: %v", err)
		}
		c.Close()
	}
	m := ReadMetrics()
	switch {
	case mode == "refuse" && (m.Engine != "epoll" || !m.EngineFallback):
		t.Fatalf("under the filter: Engine %q, EngineFallback %v; want epoll, true", m.Engine, m.EngineFallback)
	case mode == "allow" && m.EngineFallback:
		t.Logf("io_uring refused by this kernel: %v", poller.FallbackError())
	case mode == "allow" && m.Engine != "io_uring":
		t.Fatalf("Engine %q; want io_uring", m.Engine)
	}
	var text bytes.Buffer
	if err := WriteMetricsText(&text); err != nil {
		t.Fatal(err)
	}
	want := "netpoll_engine_fallback 1"
	if mode == "allow" && !m.EngineFallback {
		want = "netpoll_engine_io_uring 1"
	}
	if !strings.Contains(text.String(), want) {
		t.Fatalf("WriteMetricsText lacks %q:\n%s", want, text.String())
	}
}
