package netpoll

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// The protocol fuzz targets take a config byte and a stream. The stream is
// fed to the zero-copy framing in chunks, as the event loop sees it, and read
// whole by the copying path; both must yield the same messages and the same
// verdict, and writing the messages back must rebuild the bytes they came
// from. Bits of cfg pick the framing's parameters, the chunk size, and the
// LinkBuffer node size, so that messages straddle nodes.

func FuzzLengthPrefixed(f *testing.F) {
	for _, tt := range protocolCases()[:3] {
		f.Add(uint8(0x21), []byte(tt.stream))
	}
	f.Fuzz(func(t *testing.T, cfg uint8, stream []byte) {
		size := []int{1, 2, 4, 2}[cfg&3]
		order := binary.ByteOrder(binary.BigEndian)
		if cfg&4 != 0 {
			order = binary.LittleEndian
		}
		maxFrame := 1 + int(cfg>>3)*9 // 1 to 280: often exceeded, often not
		checkFraming(t, LengthPrefixed(size, order, maxFrame), cfg, stream)
	})
}

func FuzzDelimited(f *testing.F) {
	for _, tt := range protocolCases()[3:] {
		f.Add(uint8(0x13), []byte(tt.stream))
	}
	f.Fuzz(func(t *testing.T, cfg uint8, stream []byte) {
		delim := byte('\n')
		if cfg&1 != 0 {
			delim = 0
		}
		maxLine := 1 + int(cfg>>1)%40
		checkFraming(t, Delimited(delim, maxLine), cfg, stream)
	})
}

// checkFraming is the shared property of the fuzz targets.
func checkFraming(t *testing.T, p Protocol, cfg uint8, stream []byte) {
	withNodeSize(t, []int{64, 4096}[cfg>>7])
	chunk := 1 + int(cfg>>4)%7
	var chunks [][]byte
	for rest := stream; len(rest) > 0; {
		k := min(chunk, len(rest))
		chunks = append(chunks, rest[:k])
		rest = rest[k:]
	}
	msgs, left, err := frameChunks(t, p, chunks)
	copied, copyErr := frameCopy(p, stream)

	tooLarge := errors.Is(err, ErrFrameTooLarge)
	if err != nil && !tooLarge {
		t.Fatalf("zero-copy framing failed with %v; want only ErrFrameTooLarge", err)
	}
	if tooLarge != errors.Is(copyErr, ErrFrameTooLarge) {
		t.Fatalf("zero-copy error %v, copying error %v: they disagree on the oversized frame", err, copyErr)
	}
	if !tooLarge {
		// A stream cut inside a message: the copying path says so, the
		// event loop's framing keeps the bytes waiting for the rest.
		if partial := copyErr == io.ErrUnexpectedEOF; partial != (left > 0) || (copyErr != nil && !partial) {
			t.Fatalf("copying path ended with %v, zero-copy framing left %d bytes", copyErr, left)
		}
	}
	if got, want := joinMsgs(msgs), joinMsgs(copied); got != want {
		t.Fatalf("zero-copy messages %s; copying path %s", got, want)
	}
	if tooLarge {
		return
	}
	var rebuilt bytes.Buffer
	for _, m := range msgs {
		if err := p.Write(&rebuilt, m); err != nil {
			t.Fatalf("Write(%q) = %v", m, err)
		}
	}
	if consumed := stream[:len(stream)-left]; !bytes.Equal(rebuilt.Bytes(), consumed) {
		t.Fatalf("writing the messages back gives %q; want the %q they came from", rebuilt.Bytes(), consumed)
	}
}
