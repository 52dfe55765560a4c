package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ccb70390/netpoll"
)

// testLimits are small so that the limit cases stay small.
var testLimits = limits{header: 512, body: 64}

// parsed is what one request in a stream parsed to, comparable across splits.
type parsed struct {
	route     route
	head      bool
	keepAlive bool
	body      string
	status    int // non-zero if the request was refused; the stream ends there
}

// bufferOf returns a LinkBuffer holding the pieces, each written and flushed
// on its own so that they may sit in separate nodes.
func bufferOf(tb testing.TB, pieces ...string) *netpoll.LinkBuffer {
	tb.Helper()
	b := netpoll.NewLinkBuffer()
	for _, p := range pieces {
		appendInput(tb, b, p)
	}
	return b
}

// appendInput writes p to b and flushes it, as the poller does with input.
func appendInput(tb testing.TB, b *netpoll.LinkBuffer, p string) {
	tb.Helper()
	if len(p) == 0 {
		return
	}
	buf, err := b.Malloc(len(p))
	if err != nil {
		tb.Fatalf("Malloc(%d) = %v", len(p), err)
	}
	copy(buf, p)
	if err := b.Flush(); err != nil {
		tb.Fatalf("Flush() = %v", err)
	}
}

// drain parses and consumes every whole request in b, as onRequest does,
// and appends what each parsed to out. It reports whether the stream ended
// with a refused request.
func drain(tb testing.TB, b *netpoll.LinkBuffer, lim limits, out []parsed) ([]parsed, bool) {
	tb.Helper()
	var req request
	for {
		err := parseRequest(b, &req, lim)
		if errors.Is(err, errIncomplete) {
			return out, false
		}
		var se *statusError
		if errors.As(err, &se) {
			return append(out, parsed{status: se.code}), true
		}
		if err != nil {
			tb.Fatalf("parseRequest() = %v", err)
		}
		whole, err := b.Peek(req.totalLen)
		if err != nil {
			tb.Fatalf("Peek(totalLen=%d) with Len()=%d: %v", req.totalLen, b.Len(), err)
		}
		var body strings.Builder
		for _, c := range req.chunks {
			body.Write(whole[c.off : c.off+c.n])
		}
		if body.Len() != req.bodyLen {
			tb.Fatalf("chunks hold %d bytes; bodyLen = %d", body.Len(), req.bodyLen)
		}
		out = append(out, parsed{route: req.route, head: req.head, keepAlive: req.keepAlive, body: body.String()})
		if err := b.Skip(req.totalLen); err != nil {
			tb.Fatalf("Skip(%d) = %v", req.totalLen, err)
		}
		if err := b.Release(); err != nil {
			tb.Fatalf("Release() = %v", err)
		}
	}
}

// parseSplit feeds input to a buffer in pieces of size n (the last shorter),
// draining after each piece as the event loop would, and returns every request.
func parseSplit(tb testing.TB, input string, n int, lim limits) []parsed {
	tb.Helper()
	b := netpoll.NewLinkBuffer()
	var out []parsed
	for len(input) > 0 {
		k := min(n, len(input))
		appendInput(tb, b, input[:k])
		input = input[k:]
		var refused bool
		if out, refused = drain(tb, b, lim, out); refused {
			break
		}
	}
	return out
}

func TestParseRequest(t *testing.T) {
	ok := func(r route, body string) parsed { return parsed{route: r, keepAlive: true, body: body} }
	tests := []struct {
		name  string
		input string
		want  []parsed
	}{
		{"get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", []parsed{ok(routeRoot, "")}},
		{"head", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", []parsed{{route: routeRoot, head: true, keepAlive: true}}},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", []parsed{ok(routeRoot, "")}},
		{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", []parsed{ok(routeRoot, "")}},
		{"content-length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", []parsed{ok(routeEcho, "hello")}},
		{"repeated equal content-length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi", []parsed{ok(routeEcho, "hi")}},
		{"chunked", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\n",
			[]parsed{ok(routeEcho, "hello!")}},
		{"chunked with trailers", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n",
			[]parsed{ok(routeEcho, "0123456789")}},
		{"pipelined", "GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nxGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			[]parsed{ok(routeRoot, ""), ok(routeEcho, "x"), {route: routeNotFound}}},
		{"connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n", []parsed{{route: routeRoot}}},
		{"http/1.0", "GET / HTTP/1.0\r\n\r\n", []parsed{{route: routeRoot}}},
		{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", []parsed{ok(routeRoot, "")}},
		{"method not allowed", "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n", []parsed{ok(routeMethodNotAllowed, "")}},
		{"body at the limit", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("b", 64),
			[]parsed{ok(routeEcho, strings.Repeat("b", 64))}},
		{"incomplete header", "GET / HTTP/1.1\r\nHost: a\r\n", nil},
		{"incomplete body", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhell", nil},
		{"incomplete chunk", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r", nil},
		{"no host", "GET / HTTP/1.1\r\n\r\n", []parsed{{status: 400}}},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", []parsed{{status: 400}}},
		{"bad request line", "GET /\r\nHost: a\r\n\r\n", []parsed{{status: 400}}},
		{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", []parsed{{status: 400}}},
		{"bad version", "GET / HTTQ/1.1\r\nHost: a\r\n\r\n", []parsed{{status: 400}}},
		{"version 2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", []parsed{{status: 505}}},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", []parsed{{status: 400}}},
		{"line folding", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", []parsed{{status: 400}}},
		{"bad content-length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", []parsed{{status: 400}}},
		{"conflicting content-length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", []parsed{{status: 400}}},
		{"te and cl", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []parsed{{status: 400}}},
		{"unknown coding", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", []parsed{{status: 501}}},
		{"bad chunk size", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", []parsed{{status: 400}}},
		{"chunk without CRLF", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", []parsed{{status: 400}}},
		{"body too large", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 65\r\n\r\n", []parsed{{status: 413}}},
		{"huge content-length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", []parsed{{status: 413}}},
		{"chunked too large", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + strings.Repeat("c", 64) + "\r\n1\r\n", []parsed{{status: 413}}},
		{"huge chunk", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFF\r\n", []parsed{{status: 413}}},
		{"header too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("h", 600), []parsed{{status: 431}}},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("a:\n", 101) + "\r\n", []parsed{{status: 431}}},
		{"ok then bad", "GET / HTTP/1.1\r\nHost: a\r\n\r\nBAD\r\n\r\n", []parsed{ok(routeRoot, ""), {status: 400}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := testLimits
			for _, n := range []int{len(tt.input), 1, 2, 3, 7, 16} {
				got := parseSplit(t, tt.input, n, lim)
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("pieces of %d: parsed %+v; want %+v", n, got, tt.want)
				}
			}
		})
	}
}

// TestParseRequestAcrossNodes checks a request that lies across many nodes of
// the buffer, as it does when it arrives in many reads.
func TestParseRequestAcrossNodes(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 1024)
	input := fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	pieces := make([]string, 0, len(input)/1000+1)
	for s := input; len(s) > 0; s = s[min(1000, len(s)):] {
		pieces = append(pieces, s[:min(1000, len(s))])
	}
	b := bufferOf(t, pieces...)
	got, _ := drain(t, b, defaultLimits, nil)
	want := []parsed{{route: routeEcho, keepAlive: true, body: body}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed %d requests, first body %d bytes; want 1 of %d", len(got), len(got[0].body), len(body))
	}
}

// FuzzParseRequest checks that no input makes the parser panic, and that an
// input parses to the same requests whether it arrives whole or in pieces.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(3))
	f.Add([]byte("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.0\r\n\r\n"), uint8(1))
	f.Add([]byte("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n"), uint8(7))
	f.Add([]byte("\r\nGET / HTTP/1.1\nHost: a\nConnection: close\n\n"), uint8(2))
	f.Fuzz(func(t *testing.T, input []byte, split uint8) {
		whole := parseSplit(t, string(input), len(input)+1, testLimits)
		pieces := parseSplit(t, string(input), int(split)+1, testLimits)
		if !reflect.DeepEqual(whole, pieces) {
			t.Errorf("whole input parsed to %+v; in pieces of %d to %+v", whole, int(split)+1, pieces)
		}
	})
}
