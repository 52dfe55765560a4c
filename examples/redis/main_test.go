package main

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
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

// clientTimeout bounds every run of a client program.
const clientTimeout = 30 * time.Second

// cliArgs returns the redis-cli arguments that reach the server at addr.
func cliArgs(tb testing.TB, addr string) []string {
	tb.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	return []string{"-h", host, "-p", port}
}

func TestRedisCLI(t *testing.T) {
	cli := extest.Client(t, "redis-cli")
	base := cliArgs(t, extest.StartServer(t, run))
	// The cases run in order on one keyspace; redis-cli prints replies raw,
	// as it does when its output is not a terminal.
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"ping", "hello world"}, "hello world"},
		{[]string{"ECHO", "line1\nline2"}, "line1\nline2"},
		{[]string{"GET", "k"}, ""},
		{[]string{"SET", "k", "v1"}, "OK"},
		{[]string{"GET", "k"}, "v1"},
		{[]string{"EXISTS", "k", "k", "nope"}, "2"},
		{[]string{"INCR", "n"}, "1"},
		{[]string{"INCR", "n"}, "2"},
		{[]string{"INCR", "k"}, "ERR value is not an integer or out of range"},
		{[]string{"SET", "max", "9223372036854775807"}, "OK"},
		{[]string{"INCR", "max"}, "ERR increment or decrement would overflow"},
		{[]string{"MSET", "a", "1", "b", "2"}, "OK"},
		{[]string{"MGET", "a", "nope", "b"}, "1\n\n2"},
		{[]string{"DEL", "a", "b", "nope"}, "2"},
		{[]string{"EXISTS", "a"}, "0"},
		{[]string{"MSET", "a"}, "ERR wrong number of arguments for 'mset' command"},
		{[]string{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{[]string{"SET", "k", "v", "NX"}, "ERR syntax error"},
		{[]string{"FLY", "me", "away"}, "ERR unknown command 'FLY', with args beginning with: 'me' 'away' "},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := extest.Command(t, clientTimeout, nil, cli, append(base, tt.args...)...)
			if got = strings.TrimRight(got, "\n"); got != tt.want {
				t.Errorf("redis-cli %q printed %q; want %q", tt.args, got, tt.want)
			}
		})
	}
}

// script is a session of commands, one a line, that redis-cli reads from
// standard input and sends one by one on one connection.
const script = `PING
SET greeting hello
GET greeting
NOSUCH greeting x
INCR counter
INCR counter
INCR greeting
MSET a 1 b 2 c 3
MGET a b c missing
EXISTS a b missing a
DEL a b missing
EXISTS a b
ECHO "two words"
GET
SET only
MSET a
`

// TestRedisCLIMatchesRedisServer runs the same session against this server
// and a real redis-server and wants the same output, byte for byte.
func TestRedisCLIMatchesRedisServer(t *testing.T) {
	cli := extest.Client(t, "redis-cli")
	real := startRedisServer(t)
	ours := cliArgs(t, extest.StartServer(t, run))
	want := extest.Command(t, clientTimeout, []byte(script), cli, "-s", real)
	got := extest.Command(t, clientTimeout, []byte(script), cli, ours...)
	if got != want {
		t.Errorf("redis-server answered:\n%s\nthis server answered:\n%s", want, got)
	}
}

// startRedisServer starts redis-server on a unix socket under t.TempDir, with
// persistence off, and returns the socket path once it answers PING.
func startRedisServer(tb testing.TB) string {
	tb.Helper()
	server := extest.Client(tb, "redis-server")
	cli := extest.Client(tb, "redis-cli")
	dir := tb.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, server, "--port", "0", "--unixsocket", sock, "--save", "",
		"--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := extest.TryCommand(tb, clientTimeout, nil, cli, "-s", sock, "PING")
		if err == nil && out == "PONG\n" {
			return sock
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server not answering on %s: %q, %v", sock, out, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a child process, bounded by deadline
	}
}

// TestRedisCLIPipe sends inline and RESP commands, pipelined in one stream,
// through redis-cli --pipe, which counts the replies and the error replies.
func TestRedisCLIPipe(t *testing.T) {
	cli := extest.Client(t, "redis-cli")
	base := cliArgs(t, extest.StartServer(t, run))
	var in strings.Builder
	const n = 1000
	for i := range n {
		k := strconv.Itoa(i)
		if i%2 == 0 {
			in.WriteString("SET key:" + k + " " + k + "\r\n")
		} else {
			in.WriteString("*3\r\n$3\r\nSET\r\n$" + strconv.Itoa(len("key:"+k)) + "\r\nkey:" + k + "\r\n$" + strconv.Itoa(len(k)) + "\r\n" + k + "\r\n")
		}
	}
	in.WriteString("NOSUCH\r\n")
	// redis-cli --pipe exits 1 when a reply was an error, as the last one is.
	out, err := extest.TryCommand(t, clientTimeout, []byte(in.String()), cli, append(base, "--pipe")...)
	var ce *extest.CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Stderr, "unknown command 'NOSUCH'") {
		t.Errorf("redis-cli --pipe failed with %v; want it to report the unknown command", err)
	}
	if want := "errors: 1, replies: " + strconv.Itoa(n+1); !strings.Contains(out, want) {
		t.Errorf("redis-cli --pipe printed %q; want %q", out, want)
	}
	got := extest.Command(t, clientTimeout, nil, cli, append(base, "MGET", "key:0", "key:999")...)
	if got != "0\n999\n" {
		t.Errorf("MGET key:0 key:999 = %q; want \"0\\n999\\n\"", got)
	}
}

// TestRedisCLIMalformed sends frames that are not RESP through redis-cli
// --pipe: the server answers a protocol error and closes, which redis-cli
// reports by failing with the error reply.
func TestRedisCLIMalformed(t *testing.T) {
	cli := extest.Client(t, "redis-cli")
	base := cliArgs(t, extest.StartServer(t, run))
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"bad count", "*x\r\n", "ERR Protocol error: invalid multibulk length"},
		{"bad bulk length", "*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"},
		{"no dollar", "*1\r\n+PING\r\n", "ERR Protocol error: expected '$', got '+'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extest.TryCommand(t, clientTimeout, []byte("PING\r\n"+tt.input+"PING\r\n"), cli, append(base, "--pipe")...)
			var ce *extest.CommandError
			if !errors.As(err, &ce) || !strings.Contains(ce.Stderr, tt.want) {
				t.Errorf("redis-cli --pipe failed with %v; want a failure that prints %q", err, tt.want)
			}
		})
	}
}

// TestRedisBenchmark loads the server with redis-benchmark, pipelined, and
// checks that every test reports a rate.
func TestRedisBenchmark(t *testing.T) {
	bench := extest.Client(t, "redis-benchmark")
	base := cliArgs(t, extest.StartServer(t, run))
	out := extest.Command(t, 2*clientTimeout, nil, bench,
		append(base, "-t", "ping,set,get", "-P", "16", "-n", "20000", "-c", "16", "-q")...)
	// With -q, redis-benchmark rewrites a progress line with CRs; the final
	// figure of each test follows the last CR of its line.
	re := regexp.MustCompile(`([A-Z_]+): ([0-9.]+) requests per second`)
	var tests []string
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		if rate, err := strconv.ParseFloat(m[2], 64); err != nil || rate <= 0 {
			t.Errorf("%s: rate %q", m[1], m[2])
		}
		tests = append(tests, m[1])
	}
	if want := "PING_INLINE PING_MBULK SET GET"; strings.Join(tests, " ") != want {
		t.Errorf("redis-benchmark reported %q; want %q:\n%s", tests, want, out)
	}
}
