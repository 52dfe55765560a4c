package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ccb70390/netpoll"
)

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

// drain parses and consumes every whole command in b as the server does,
// appending each command's arguments, or the protocol error that ends the
// stream, to out. It reports whether the stream ended with an error.
func drain(tb testing.TB, b *netpoll.LinkBuffer, out [][]string) ([][]string, bool) {
	tb.Helper()
	var cmd command
	for {
		err := parseCommand(b, &cmd)
		if errors.Is(err, errIncomplete) {
			return out, false
		}
		var pe *protocolError
		if errors.As(err, &pe) {
			return append(out, []string{"error: " + pe.reason}), true
		}
		if err != nil {
			tb.Fatalf("parseCommand() = %v", err)
		}
		var frame []byte
		if cmd.inline {
			frame, err = b.Until('\n')
		} else {
			frame, err = b.Next(cmd.size)
		}
		if err != nil || len(frame) != cmd.size {
			tb.Fatalf("read %d of a %d-byte frame: %v", len(frame), cmd.size, err)
		}
		args := []string{}
		for i := range cmd.args {
			args = append(args, string(arg(frame, cmd.args, i)))
		}
		out = append(out, args)
		if err := b.Release(); err != nil {
			tb.Fatalf("Release() = %v", err)
		}
	}
}

// parseSplit feeds input in pieces of n bytes (the last shorter), draining
// after each piece as the event loop would, and returns every command.
func parseSplit(tb testing.TB, input string, n int) [][]string {
	tb.Helper()
	b := netpoll.NewLinkBuffer()
	var out [][]string
	for len(input) > 0 {
		k := min(n, len(input))
		appendInput(tb, b, input[:k])
		input = input[k:]
		var failed bool
		if out, failed = drain(tb, b, out); failed {
			break
		}
	}
	return out
}

func TestParseCommand(t *testing.T) {
	big := strings.Repeat("v", 5000)
	tests := []struct {
		name  string
		input string
		want  [][]string
	}{
		{"ping", "*1\r\n$4\r\nPING\r\n", [][]string{{"PING"}}},
		{"set", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nv!\r\n", [][]string{{"SET", "k", "v\r\nv!"}}},
		{"empty bulk", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", [][]string{{"ECHO", ""}}},
		{"large bulk", "*2\r\n$4\r\nECHO\r\n$5000\r\n" + big + "\r\n", [][]string{{"ECHO", big}}},
		{"inline", "SET  k\tv\r\n", [][]string{{"SET", "k", "v"}}},
		{"inline LF", "PING\n", [][]string{{"PING"}}},
		{"empty inline", "\r\n", [][]string{{}}},
		{"empty multibulk", "*0\r\n*-1\r\n", [][]string{{}, {}}},
		{"pipelined", "PING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nECHO x\r\n", [][]string{{"PING"}, {"GET", "a"}, {"ECHO", "x"}}},
		{"incomplete multibulk", "*2\r\n$3\r\nGET\r\n$1\r\n", nil},
		{"incomplete bulk", "*1\r\n$4\r\nPI", nil},
		{"incomplete inline", "PING", nil},
		{"bad count", "*x\r\n", [][]string{{"error: invalid multibulk length"}}},
		{"negative count", "*-2\r\n", [][]string{{"error: invalid multibulk length"}}},
		{"count too large", "*1048577\r\n", [][]string{{"error: invalid multibulk length"}}},
		{"count without CR", "*1\n$4\r\nPING\r\n", [][]string{{"error: invalid multibulk length"}}},
		{"no dollar", "*1\r\n:4\r\n", [][]string{{"error: expected '$', got ':'"}}},
		{"bad bulk length", "*1\r\n$x\r\n", [][]string{{"error: invalid bulk length"}}},
		{"negative bulk", "*1\r\n$-1\r\n", [][]string{{"error: invalid bulk length"}}},
		{"bulk too large", "*1\r\n$8388609\r\n", [][]string{{"error: invalid bulk length"}}},
		{"bulk without CRLF", "*1\r\n$4\r\nPINGxx", [][]string{{"error: bulk not followed by CRLF"}}},
		{"inline too large", strings.Repeat("a", maxInline+1), [][]string{{"error: too big inline request"}}},
		{"ok then bad", "PING\r\n*1\r\n$1\r\nab\r\n", [][]string{{"PING"}, {"error: bulk not followed by CRLF"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{len(tt.input), 1, 2, 3, 7, 4096} {
				if n < 64 && len(tt.input) > 8<<10 {
					continue // each piece re-peeks the whole input: quadratic
				}
				if got := parseSplit(t, tt.input, n); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("pieces of %d: parsed %.200q; want %.200q", n, got, tt.want)
				}
			}
		})
	}
}

// FuzzParseCommand checks that no input makes the parser panic, and that an
// input parses to the same commands whether it arrives whole or in pieces.
func FuzzParseCommand(f *testing.F) {
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"), uint8(2))
	f.Add([]byte("PING\r\nECHO a b\n*0\r\n*-1\r\n"), uint8(0))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$-1\r\n"), uint8(5))
	f.Add([]byte("*1\r\n$4\r\nPINGxx"), uint8(3))
	f.Fuzz(func(t *testing.T, input []byte, split uint8) {
		whole := parseSplit(t, string(input), len(input)+1)
		pieces := parseSplit(t, string(input), int(split)+1)
		if !reflect.DeepEqual(whole, pieces) {
			t.Errorf("whole input parsed to %q; in pieces of %d to %q", whole, int(split)+1, pieces)
		}
	})
}
