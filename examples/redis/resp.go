package main

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ccb70390/netpoll"
)

// errIncomplete reports that the buffered input holds only the start of a
// command. The handler returns without consuming anything; the event loop
// calls it again when more input arrives, and parsing starts over.
var errIncomplete = errors.New("redis: incomplete command")

// protocolError is a frame that is not RESP. The server answers it with an
// error reply and closes the connection, as Redis does, since the framing of
// whatever follows cannot be trusted.
type protocolError struct{ reason string }

func (e *protocolError) Error() string { return "Protocol error: " + e.reason }

// Limits, as Redis has them (src/server.h), but with a smaller bulk limit:
// this example keeps values in memory without eviction.
const (
	maxInline    = 64 << 10 // an inline command, or a "*n" / "$n" line
	maxMultibulk = 1 << 20  // arguments of one command
	maxBulk      = 8 << 20  // bytes of one argument
	maxFrame     = 64 << 20 // bytes of one command, like Redis's client-query-buffer-limit
)

// span is an argument, as offsets into the frame of its command.
type span struct{ off, n int }

// command is what parseCommand learns about the next command in the input.
// It holds offsets, not slices, so it stays valid after the input is consumed.
type command struct {
	inline bool   // a line of words rather than a RESP array
	args   []span // reused between commands
	size   int    // bytes of the whole frame
}

// parseCommand parses the next command buffered in r without consuming
// anything and without blocking: it only peeks at what r.Len reports. It
// returns errIncomplete if the command is not whole yet, a *protocolError if
// the input is not RESP, or nil with cmd filled in; the caller then consumes
// exactly cmd.size bytes. A command with no arguments (an empty line, or
// "*0") is valid: the caller skips it without a reply.
func parseCommand(r netpoll.Reader, cmd *command) error {
	cmd.inline, cmd.args, cmd.size = false, cmd.args[:0], 0
	avail := r.Len()
	if avail == 0 {
		return errIncomplete
	}
	first, err := r.Peek(1)
	if err != nil {
		return fmt.Errorf("redis: peek: %w", err)
	}
	if first[0] != '*' {
		buf, err := r.Peek(min(avail, maxInline+1))
		if err != nil {
			return fmt.Errorf("redis: peek: %w", err)
		}
		return parseInline(buf, cmd)
	}
	// The whole frame must be peeked at once: the offsets of the arguments
	// are known only after every length before them was read.
	buf, err := r.Peek(min(avail, maxFrame))
	if err != nil {
		return fmt.Errorf("redis: peek: %w", err)
	}
	err = parseMultibulk(buf, cmd)
	if errors.Is(err, errIncomplete) && len(buf) == maxFrame {
		return &protocolError{"too big request"}
	}
	return err
}

// parseInline splits the first line of buf into words separated by spaces
// or tabs. Redis also parses quoted words here; this server does not.
func parseInline(buf []byte, cmd *command) error {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > maxInline {
			return &protocolError{"too big inline request"}
		}
		return errIncomplete
	}
	cmd.inline, cmd.size = true, nl+1
	line := buf[:nl]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		start := i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			i++
		}
		if i > start {
			cmd.args = append(cmd.args, span{off: start, n: i - start})
		}
	}
	return nil
}

// parseMultibulk parses "*<n>\r\n" followed by n "$<len>\r\n<bytes>\r\n".
func parseMultibulk(buf []byte, cmd *command) error {
	count, pos, err := parseLength(buf, 0, '*', "mbulk count", maxMultibulk, "invalid multibulk length")
	if err != nil {
		return err
	}
	for range max(count, 0) {
		if pos == len(buf) {
			return errIncomplete
		}
		if buf[pos] != '$' {
			return &protocolError{fmt.Sprintf("expected '$', got '%c'", buf[pos])}
		}
		n, next, err := parseLength(buf, pos, '$', "bulk count", maxBulk, "invalid bulk length")
		if err != nil {
			return err
		}
		if n < 0 {
			return &protocolError{"invalid bulk length"}
		}
		if len(buf) < next+n+2 {
			return errIncomplete
		}
		if buf[next+n] != '\r' || buf[next+n+1] != '\n' {
			return &protocolError{"bulk not followed by CRLF"}
		}
		cmd.args = append(cmd.args, span{off: next, n: n})
		pos = next + n + 2
	}
	cmd.size = pos
	return nil
}

// parseLength parses the line "<prefix><decimal>\r\n" at buf[pos:] and
// returns the number and the offset after the line. A number above limit is
// invalid; a negative one is returned for the caller to judge ("*-1" is an
// empty command, "$-1" an error), as is any number below -1.
func parseLength(buf []byte, pos int, prefix byte, what string, limit int, invalid string) (n, next int, err error) {
	nl := bytes.IndexByte(buf[pos:], '\n')
	if nl < 0 {
		if len(buf)-pos > maxInline {
			return 0, 0, &protocolError{"too big " + what + " string"}
		}
		return 0, 0, errIncomplete
	}
	line := buf[pos : pos+nl]
	if len(line) < 2 || line[0] != prefix || line[len(line)-1] != '\r' {
		return 0, 0, &protocolError{invalid}
	}
	digits := line[1 : len(line)-1]
	neg := len(digits) > 0 && digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 10 {
		return 0, 0, &protocolError{invalid}
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, 0, &protocolError{invalid}
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	if n > limit || n < -1 {
		return 0, 0, &protocolError{invalid}
	}
	return n, pos + nl + 1, nil
}
