package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccb70390/netpoll/examples/internal/extest"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOptions...)
}

// clientTimeout bounds every run of curl; wrk runs for loadDuration.
const (
	clientTimeout = 20 * time.Second
	loadDuration  = "2s"
)

// curlCase is one curl run and what it must print: curl's -w format puts the
// status code on the last line, after the body.
type curlCase struct {
	name   string
	args   []string // after the URL's path, which is path
	path   string
	stdin  []byte
	status int
	body   string // checked if not empty
	header string // a line that must be among the response headers, if not empty
}

func curlCases(tb testing.TB) []curlCase {
	tb.Helper()
	dir := tb.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			tb.Fatal(err)
		}
		return "@" + p
	}
	mid := bytes.Repeat([]byte("0123456789abcdef"), 900<<10/16) // under the 1 MiB limit
	big := bytes.Repeat([]byte("x"), 2<<20)
	return []curlCase{
		{name: "get root", path: "/", status: 200, body: rootBody},
		{name: "head root", path: "/", args: []string{"-I"}, status: 200, header: "Content-Length: " + strconv.Itoa(len(rootBody))},
		{name: "echo", path: "/echo", args: []string{"--data-binary", "hello, echo"}, status: 200, body: "hello, echo"},
		{name: "echo chunked", path: "/echo", args: []string{"-H", "Transfer-Encoding: chunked", "--data-binary", file("small", []byte("chunked body\n"))},
			status: 200, body: "chunked body\n"},
		{name: "echo large", path: "/echo", args: []string{"--data-binary", file("mid", mid)}, status: 200, body: string(mid)},
		{name: "echo large chunked", path: "/echo", args: []string{"-H", "Transfer-Encoding: chunked", "--data-binary", file("mid", mid)},
			status: 200, body: string(mid)},
		{name: "expect continue", path: "/echo", args: []string{"-H", "Expect: 100-continue", "--data-binary", "after continue"},
			status: 200, body: "after continue"},
		{name: "connection close", path: "/", args: []string{"-H", "Connection: close"}, status: 200, header: "Connection: close"},
		{name: "not found", path: "/nowhere", status: 404},
		{name: "method not allowed", path: "/echo", status: 405, header: "Allow: POST"},
		{name: "body too large", path: "/echo", args: []string{"--data-binary", file("big", big)}, status: 413},
		{name: "header too large", path: "/", args: []string{"-H", "X-Big: " + strings.Repeat("h", 9<<10)}, status: 431},
		{name: "malformed header", path: "/", args: []string{"-H", "Bad Name: x"}, status: 400},
		{name: "malformed content-length", path: "/echo", args: []string{"-H", "Content-Length: 1x", "--data-binary", "a"}, status: 400},
	}
}

// runCurl runs one curlCase against the server at addr and checks its answer.
func runCurl(t *testing.T, curl, addr string, tc curlCase) {
	t.Helper()
	args := append([]string{"-s", "-S", "-D", "-", "-o", "-", "-w", "\n%{http_code}", "http://" + addr + tc.path}, tc.args...)
	out := extest.Command(t, clientTimeout, tc.stdin, curl, args...)
	head, rest, ok := strings.Cut(out, "\r\n\r\n")
	if !ok {
		t.Fatalf("curl printed no header section: %q", out)
	}
	if strings.HasPrefix(head, "HTTP/1.1 100") {
		head, rest, _ = strings.Cut(rest, "\r\n\r\n")
	}
	i := strings.LastIndexByte(rest, '\n')
	body, code := rest[:i], rest[i+1:]
	if code != strconv.Itoa(tc.status) {
		t.Errorf("status %s; want %d\n%s", code, tc.status, head)
	}
	if tc.body != "" && body != tc.body {
		t.Errorf("body is %d bytes %.40q; want %d bytes %.40q", len(body), body, len(tc.body), tc.body)
	}
	if tc.header != "" && !strings.Contains(head+"\r\n", "\r\n"+tc.header+"\r\n") {
		t.Errorf("no header line %q in\n%s", tc.header, head)
	}
}

func TestCurl(t *testing.T) {
	curl := extest.Client(t, "curl")
	addr := extest.StartServer(t, run)
	for _, tc := range curlCases(t) {
		t.Run(tc.name, func(t *testing.T) { runCurl(t, curl, addr, tc) })
	}
}

// TestCurlNetHTTP runs the successful cases against the net/http baseline, so
// that compare.sh is known to measure two servers doing the same work.
func TestCurlNetHTTP(t *testing.T) {
	curl := extest.Client(t, "curl")
	addr := extest.StartServer(t, runNetHTTP)
	for _, tc := range curlCases(t) {
		if tc.status != 200 {
			continue
		}
		t.Run(tc.name, func(t *testing.T) { runCurl(t, curl, addr, tc) })
	}
}

// TestCurlKeepAlive checks that curl reuses one connection for two requests.
func TestCurlKeepAlive(t *testing.T) {
	curl := extest.Client(t, "curl")
	addr := extest.StartServer(t, run)
	url := "http://" + addr + "/"
	out := extest.Command(t, clientTimeout, nil, curl, "-s", "-S", "-w", "%{num_connects} ", "-o", "/dev/null", url, "-o", "/dev/null", url)
	if got := strings.Fields(out); !slices.Equal(got, []string{"1", "0"}) {
		t.Errorf("connects per request = %q; want [1 0] (the second request reuses the connection)", got)
	}
}

// TestCurlPipelined sends two requests in one write through curl's raw TCP
// (telnet://) mode; the second asks to close, so curl ends when the server
// has answered both, in order.
func TestCurlPipelined(t *testing.T) {
	curl := extest.Client(t, "curl")
	addr := extest.StartServer(t, run)
	pair := "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst" +
		"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nsecond\r\n0\r\n\r\n"
	out := extest.Command(t, clientTimeout, []byte(pair), curl, "-s", "-S", "telnet://"+addr)
	re := regexp.MustCompile(`HTTP/1\.1 200 OK\r\n(?:[^\r\n]+\r\n)*\r\n(first|second)`)
	var bodies []string
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		bodies = append(bodies, m[1])
	}
	if !slices.Equal(bodies, []string{"first", "second"}) {
		t.Errorf("answers carry bodies %q; want [first second]; curl printed:\n%s", bodies, out)
	}
}

// TestCurlMalformed sends raw malformed requests through curl's telnet://
// mode: each must get its status and then a closed connection.
func TestCurlMalformed(t *testing.T) {
	curl := extest.Client(t, "curl")
	addr := extest.StartServer(t, run)
	tests := []struct {
		name   string
		input  string
		status string
	}{
		{"garbage", "hello\r\n\r\n", "400"},
		{"no host", "GET / HTTP/1.1\r\n\r\n", "400"},
		{"bad chunk", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "400"},
		{"http/2 line", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", "505"},
		{"smuggling", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := extest.Command(t, clientTimeout, []byte(tt.input), curl, "-s", "-S", "telnet://"+addr)
			if want := "HTTP/1.1 " + tt.status + " "; !strings.HasPrefix(out, want) {
				t.Errorf("answer %.60q; want it to start with %q", out, want)
			}
			if !strings.Contains(out, "\r\nConnection: close\r\n") {
				t.Errorf("answer %q does not say Connection: close", out)
			}
		})
	}
}

// pipelineScript makes wrk send depth requests per write, as wrk's own
// pipeline example does.
const pipelineScript = `
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
`

// TestWrk loads the server with wrk, plain and pipelined, and checks that
// every answer was a 200 and no socket failed.
func TestWrk(t *testing.T) {
	wrk := extest.Client(t, "wrk")
	addr := extest.StartServer(t, run)
	script := filepath.Join(t.TempDir(), "pipeline.lua")
	if err := os.WriteFile(script, []byte(pipelineScript), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"keep-alive", nil},
		{"pipelined", []string{"-s", script}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-t", "1", "-c", "16", "-d", loadDuration}, tt.args...)
			out := extest.Command(t, clientTimeout, nil, wrk, append(args, "http://"+addr+"/")...)
			checkWrk(t, out)
		})
	}
}

// checkWrk fails the test unless wrk's report shows requests and no errors.
func checkWrk(tb testing.TB, out string) {
	tb.Helper()
	m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		tb.Errorf("wrk made no requests:\n%s", out)
	}
	for _, bad := range []string{"Socket errors", "Non-2xx"} {
		if strings.Contains(out, bad) {
			tb.Errorf("wrk reports %s:\n%s", bad, out)
		}
	}
}
