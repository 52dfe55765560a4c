package main

import (
	"strconv"

	"github.com/ccb70390/netpoll"
)

// The reply writers put RESP2 replies straight into the connection's output
// buffer. A write into the buffer fails only on a closed connection, which
// the Flush that follows reports, so their errors are dropped here.

// writeLine writes prefix, s and CRLF into one Malloc'd run of the buffer.
func writeLine(w netpoll.Writer, prefix byte, s string) {
	buf, err := w.Malloc(1 + len(s) + 2)
	if err != nil {
		return
	}
	buf[0] = prefix
	copy(buf[1:], s)
	buf[len(buf)-2], buf[len(buf)-1] = '\r', '\n'
}

// writeSimple writes a simple string: "+OK\r\n".
func writeSimple(w netpoll.Writer, s string) { writeLine(w, '+', s) }

// writeError writes an error: "-ERR ...\r\n". msg must be one line.
func writeError(w netpoll.Writer, msg string) { writeLine(w, '-', msg) }

// writeNumber writes prefix and n and CRLF, formatted in place.
func writeNumber(w netpoll.Writer, prefix byte, n int64) {
	buf, err := w.Malloc(1 + intLen(n) + 2)
	if err != nil {
		return
	}
	b := strconv.AppendInt(append(buf[:0], prefix), n, 10)
	_ = append(b, '\r', '\n')
}

// writeInt writes an integer: ":42\r\n".
func writeInt(w netpoll.Writer, n int64) { writeNumber(w, ':', n) }

// writeArrayHeader writes the header of an array of n elements: "*2\r\n".
func writeArrayHeader(w netpoll.Writer, n int) { writeNumber(w, '*', int64(n)) }

// writeNil writes the null bulk string.
func writeNil(w netpoll.Writer) {
	_, _ = w.WriteString("$-1\r\n")
}

// writeBulk writes a stored value as a bulk string: "$5\r\nhello\r\n". A
// small value is copied with its framing; a large one goes in with
// WriteBinary, which references it until Flush instead of copying it. Stored
// values are never changed in place, so that is safe.
func writeBulk(w netpoll.Writer, v []byte) {
	if len(v) >= netpoll.BinaryInplaceThreshold {
		writeNumber(w, '$', int64(len(v)))
		_, _ = w.WriteBinary(v)
		_, _ = w.WriteString("\r\n")
		return
	}
	writeBulkCopy(w, v)
}

// writeBulkCopy writes a bulk string whose bytes it copies into one Malloc'd
// run with its framing. It is the one for arguments, which alias the input
// buffer: that is released before the Flush that sends the reply.
func writeBulkCopy(w netpoll.Writer, v []byte) {
	buf, err := w.Malloc(1 + intLen(int64(len(v))) + 2 + len(v) + 2)
	if err != nil {
		return
	}
	b := strconv.AppendInt(append(buf[:0], '$'), int64(len(v)), 10)
	b = append(b, '\r', '\n')
	b = append(b, v...)
	_ = append(b, '\r', '\n')
}

// intLen returns the length of n in decimal, sign included.
func intLen(n int64) int {
	if n >= 0 {
		return uintLen(uint64(n))
	}
	// -(n+1)+1 is |n| computed without overflowing at MinInt64.
	return 1 + uintLen(uint64(-(n+1))+1)
}

func uintLen(u uint64) int {
	d := 1
	for ; u >= 10; u /= 10 {
		d++
	}
	return d
}
