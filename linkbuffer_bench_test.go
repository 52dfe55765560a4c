package netpoll

import (
	"bytes"
	"strconv"
	"testing"
)

// benchSizes are the message sizes of the write-then-read cycles.
var benchSizes = []int{64, 1 << 10, 4 << 10, 64 << 10}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// BenchmarkLinkBufferMallocFlushNextRelease is one message through a
// connection's buffer: reserve, fill, publish, read in place, release.
func BenchmarkLinkBufferMallocFlushNextRelease(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			buf := NewLinkBuffer()
			defer buf.Close()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				p, _ := buf.Malloc(size)
				p[0], p[size-1] = 1, 2
				buf.Flush()
				buf.Next(size)
				buf.Release()
			}
		})
	}
}

// BenchmarkBytesBufferMallocFlushNextRelease is the same cycle on
// bytes.Buffer, for comparison.
func BenchmarkBytesBufferMallocFlushNextRelease(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			var buf bytes.Buffer
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				buf.Grow(size)
				p := buf.AvailableBuffer()[:size]
				p[0], p[size-1] = 1, 2
				buf.Write(p)
				buf.Next(size)
			}
		})
	}
}

// BenchmarkLinkBufferWriteBinary writes a message below and one above
// BinaryInplaceThreshold (copied, then referenced) and reads it back.
func BenchmarkLinkBufferWriteBinary(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"small", 512}, {"large", 64 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := NewLinkBuffer()
			defer buf.Close()
			msg := make([]byte, bc.size)
			b.ReportAllocs()
			b.SetBytes(int64(bc.size))
			for b.Loop() {
				buf.WriteBinary(msg)
				buf.Flush()
				buf.Next(bc.size)
				buf.Release()
			}
		})
	}
}

// BenchmarkBytesBufferWriteBinary is the same cycle on bytes.Buffer.
func BenchmarkBytesBufferWriteBinary(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"small", 512}, {"large", 64 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			var buf bytes.Buffer
			msg := make([]byte, bc.size)
			b.ReportAllocs()
			b.SetBytes(int64(bc.size))
			for b.Loop() {
				buf.Write(msg)
				buf.Next(bc.size)
			}
		})
	}
}

// BenchmarkLinkBufferSliceAppend moves 1 KiB from an input buffer to an
// output buffer without copying, as a proxy does: Slice, then Append.
func BenchmarkLinkBufferSliceAppend(b *testing.B) {
	const size = 1 << 10
	in, out := NewLinkBuffer(), NewLinkBuffer()
	defer in.Close()
	defer out.Close()
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		p, _ := in.Malloc(size)
		p[0] = 1
		in.Flush()
		s, _ := in.Slice(size)
		in.Release()
		out.Append(s.(*LinkBuffer))
		out.Flush()
		out.Next(size)
		out.Release()
	}
}

// BenchmarkBytesBufferSliceAppend is the same hand-off with bytes.Buffer,
// which has to copy.
func BenchmarkBytesBufferSliceAppend(b *testing.B) {
	const size = 1 << 10
	var in, out bytes.Buffer
	msg := make([]byte, size)
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		in.Write(msg)
		out.Write(in.Next(size))
		out.Next(size)
	}
}
