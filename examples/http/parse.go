package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/ccb70390/netpoll"
)

// errIncomplete reports that the buffered input holds only the start of a
// request. The handler returns without consuming anything; the event loop calls
// it again when more input arrives, and parsing starts over from the first byte.
var errIncomplete = errors.New("http: incomplete request")

// statusError is a request the server refuses: code is the status to answer
// with, after which the connection is closed, since the framing of whatever
// follows can no longer be trusted (RFC 9112 §6.3).
type statusError struct {
	code   int
	reason string
}

func (e *statusError) Error() string { return fmt.Sprintf("http: %d: %s", e.code, e.reason) }

func badRequest(reason string) error { return &statusError{code: 400, reason: reason} }

// limits bounds what one request may hold, so a peer cannot make the server
// buffer without bound.
type limits struct {
	header int // request line and header fields, with their line ends
	body   int // decoded body bytes
}

// defaultLimits are the limits of the example server: 8 KiB of header as most
// servers allow, and 1 MiB of body.
var defaultLimits = limits{header: 8 << 10, body: 1 << 20}

// maxHeaderFields bounds the number of header lines, answered with 431 past it.
const maxHeaderFields = 100

// route is what the server does with a request, decided while parsing so that
// no slice of the input outlives the parse.
type route uint8

const (
	routeNotFound route = iota
	routeRoot           // GET or HEAD /
	routeEcho           // POST /echo
	routeMethodNotAllowed
)

// span is a run of body bytes, as offsets from the first byte of the request.
type span struct{ off, n int }

// request is what parseRequest learns about the next request in the input.
// It holds offsets, not slices, so it stays valid after the input is consumed.
type request struct {
	route     route
	head      bool   // HEAD: answer like GET, without the body
	allow     string // the methods the target allows, for a 405
	minor     int    // the x of HTTP/1.x
	keepAlive bool
	// expectContinue is set when the client waits for "100 Continue" before it
	// sends the body (curl does for large bodies); it is set on errIncomplete too.
	expectContinue bool
	chunked        bool
	headerLen      int    // request line, fields and the empty line
	bodyLen        int    // decoded body bytes
	chunks         []span // where the body bytes are; reused between requests
	totalLen       int    // every byte of the request, body framing included
}

// reset clears req for the next parse, keeping the chunks array.
func (req *request) reset() {
	*req = request{chunks: req.chunks[:0]}
}

// parseRequest parses the next request buffered in r without consuming
// anything and without blocking: it only peeks at what r.Len reports. It
// returns errIncomplete if the request is not whole yet, a *statusError if it
// must be refused, or nil with req filled in; the caller then consumes exactly
// req.totalLen bytes. Peeked slices are not kept in req.
func parseRequest(r netpoll.Reader, req *request, lim limits) error {
	req.reset()
	avail := r.Len()
	if avail == 0 {
		return errIncomplete
	}
	buf, err := r.Peek(min(avail, lim.header))
	if err != nil {
		return fmt.Errorf("http: peek: %w", err)
	}
	headerLen := headerEnd(buf)
	if headerLen < 0 {
		if len(buf) >= lim.header {
			return &statusError{code: 431, reason: "header section too large"}
		}
		return errIncomplete
	}
	req.headerLen = headerLen
	fields, err := parseHeader(buf[:headerLen], req)
	if err != nil {
		return err
	}
	if err := parseFraming(fields, req, lim); err != nil {
		return err
	}
	if !req.chunked {
		req.totalLen = req.headerLen + req.bodyLen
		if req.bodyLen > 0 {
			req.chunks = append(req.chunks, span{off: req.headerLen, n: req.bodyLen})
		}
		if avail < req.totalLen {
			return errIncomplete
		}
		return nil
	}
	// A chunked body is framed by lines too: peek at all of it. The framing of
	// a body within the limit fits in the same budget again, plus a trailer
	// section no larger than a header section.
	budget := req.headerLen + 2*lim.body + lim.header
	buf, err = r.Peek(min(avail, budget))
	if err != nil {
		return fmt.Errorf("http: peek: %w", err)
	}
	err = parseChunked(buf, req, lim)
	if errors.Is(err, errIncomplete) && len(buf) >= budget {
		return &statusError{code: 413, reason: "chunked body too large"}
	}
	return err
}

// headerEnd returns the length of the header section at the start of buf,
// through the empty line that ends it, or -1 if that line is not in buf yet.
// Lines end in CRLF; a bare LF is accepted as RFC 9112 §2.2 allows.
func headerEnd(buf []byte) int {
	for i := 0; i < len(buf); {
		nl := bytes.IndexByte(buf[i:], '\n')
		if nl < 0 {
			return -1
		}
		line := buf[i : i+nl]
		i += nl + 1
		// Empty lines before the request line are skipped (RFC 9112 §2.2).
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			if !onlyLineEnds(buf[:i-nl-1]) {
				return i
			}
		}
	}
	return -1
}

// onlyLineEnds reports whether b holds nothing but CR and LF bytes.
func onlyLineEnds(b []byte) bool {
	for _, c := range b {
		if c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// headerFields are the field values that decide framing and connection reuse.
type headerFields struct {
	contentLength    int // -1 if absent
	transferEncoding []byte
	hasHost          bool
	expectContinue   bool
	closeToken       bool
	keepAliveToken   bool
}

// nextLine splits the first line off b, without its CRLF or LF.
func nextLine(b []byte) (line, rest []byte) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return b, nil
	}
	line, rest = b[:nl], b[nl+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseHeader parses the request line and the header fields of hdr, which
// headerEnd delimited, into req and the returned fields.
func parseHeader(hdr []byte, req *request) (headerFields, error) {
	f := headerFields{contentLength: -1}
	var line []byte
	for line, hdr = nextLine(hdr); len(line) == 0; line, hdr = nextLine(hdr) {
	}
	if err := parseRequestLine(line, req); err != nil {
		return f, err
	}
	for n := 0; ; n++ {
		line, hdr = nextLine(hdr)
		if len(line) == 0 {
			break
		}
		if n == maxHeaderFields {
			return f, &statusError{code: 431, reason: "too many header fields"}
		}
		if err := parseField(line, &f); err != nil {
			return f, err
		}
	}
	if req.minor >= 1 && !f.hasHost {
		return f, badRequest("HTTP/1.1 request without Host")
	}
	return f, nil
}

// parseRequestLine parses "METHOD SP target SP HTTP/1.x" (RFC 9112 §3).
func parseRequestLine(line []byte, req *request) error {
	method, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok || !isToken(method) {
		return badRequest("malformed request line")
	}
	target, version, ok := bytes.Cut(rest, []byte{' '})
	if !ok || len(target) == 0 || !isTarget(target) {
		return badRequest("malformed request target")
	}
	switch {
	case string(version) == "HTTP/1.1":
		req.minor = 1
	case string(version) == "HTTP/1.0":
		req.minor = 0
	case len(version) == 8 && bytes.HasPrefix(version, []byte("HTTP/")) &&
		isDigit(version[5]) && version[6] == '.' && isDigit(version[7]):
		return &statusError{code: 505, reason: "HTTP version not supported"}
	default:
		return badRequest("malformed HTTP version")
	}
	req.route = routeFor(method, target, req)
	return nil
}

// routeFor maps a method and target to what the server does.
func routeFor(method, target []byte, req *request) route {
	switch string(target) {
	case "/":
		switch string(method) {
		case "GET":
			return routeRoot
		case "HEAD":
			req.head = true
			return routeRoot
		}
		req.allow = "GET, HEAD"
		return routeMethodNotAllowed
	case "/echo":
		if string(method) == "POST" {
			return routeEcho
		}
		req.allow = "POST"
		return routeMethodNotAllowed
	}
	return routeNotFound
}

// parseField parses one "name: value" line into f.
func parseField(line []byte, f *headerFields) error {
	if line[0] == ' ' || line[0] == '\t' {
		// Obsolete line folding is refused (RFC 9112 §5.2).
		return badRequest("obsolete line folding")
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	// No whitespace is allowed between the name and the colon (RFC 9112 §5.1).
	if !ok || !isToken(name) {
		return badRequest("malformed header field")
	}
	value = bytes.Trim(value, " \t")
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return badRequest("control character in field value")
		}
	}
	switch {
	case asciiEqualFold(name, "Host"):
		if f.hasHost {
			return badRequest("more than one Host")
		}
		f.hasHost = true
	case asciiEqualFold(name, "Content-Length"):
		n, ok := parseDecimal(value)
		if !ok || (f.contentLength >= 0 && f.contentLength != n) {
			return badRequest("invalid Content-Length")
		}
		f.contentLength = n
	case asciiEqualFold(name, "Expect"):
		f.expectContinue = asciiEqualFold(value, "100-continue")
	case asciiEqualFold(name, "Transfer-Encoding"):
		if f.transferEncoding != nil {
			return badRequest("more than one Transfer-Encoding")
		}
		f.transferEncoding = value
	case asciiEqualFold(name, "Connection"):
		for tok := range bytes.SplitSeq(value, []byte{','}) {
			tok = bytes.Trim(tok, " \t")
			f.closeToken = f.closeToken || asciiEqualFold(tok, "close")
			f.keepAliveToken = f.keepAliveToken || asciiEqualFold(tok, "keep-alive")
		}
	}
	return nil
}

// parseFraming decides the body length and connection reuse from the fields
// (RFC 9112 §6.3 and §9.3).
func parseFraming(f headerFields, req *request, lim limits) error {
	if req.minor >= 1 {
		req.keepAlive = !f.closeToken
	} else {
		req.keepAlive = f.keepAliveToken && !f.closeToken
	}
	req.expectContinue = f.expectContinue && req.minor >= 1
	if f.transferEncoding != nil {
		// A request with both is a smuggling attempt or a broken client:
		// refuse it rather than guess (RFC 9112 §6.3, item 3).
		if f.contentLength >= 0 {
			return badRequest("both Transfer-Encoding and Content-Length")
		}
		if req.minor == 0 {
			return badRequest("Transfer-Encoding in HTTP/1.0")
		}
		if !asciiEqualFold(f.transferEncoding, "chunked") {
			return &statusError{code: 501, reason: "unsupported transfer coding"}
		}
		req.chunked = true
		return nil
	}
	if f.contentLength > lim.body {
		return &statusError{code: 413, reason: "body too large"}
	}
	req.bodyLen = max(f.contentLength, 0)
	return nil
}

// parseChunked parses the chunked body that follows the header in buf, which
// starts at the first byte of the request (RFC 9112 §7.1). It records where
// the data of each chunk is and the length of the whole request.
func parseChunked(buf []byte, req *request, lim limits) error {
	pos := req.headerLen
	for {
		nl := bytes.IndexByte(buf[pos:], '\n')
		if nl < 0 {
			return errIncomplete
		}
		line, _ := nextLine(buf[pos : pos+nl+1])
		pos += nl + 1
		sizeField, _, _ := bytes.Cut(line, []byte{';'}) // extensions are ignored
		size, ok := parseHex(bytes.TrimRight(sizeField, " \t"), lim.body)
		if !ok {
			if len(sizeField) > 0 && isHexDigits(sizeField) {
				return &statusError{code: 413, reason: "chunk too large"}
			}
			return badRequest("malformed chunk size")
		}
		if size == 0 {
			return parseTrailers(buf, pos, req, lim)
		}
		if req.bodyLen+size > lim.body {
			return &statusError{code: 413, reason: "body too large"}
		}
		if len(buf) < pos+size+1 {
			return errIncomplete
		}
		req.chunks = append(req.chunks, span{off: pos, n: size})
		req.bodyLen += size
		pos += size
		switch {
		case buf[pos] == '\n':
			pos++
		case buf[pos] == '\r' && len(buf) == pos+1:
			return errIncomplete
		case buf[pos] == '\r' && buf[pos+1] == '\n':
			pos += 2
		default:
			return badRequest("chunk data not followed by CRLF")
		}
	}
}

// parseTrailers skips the trailer section that starts at pos and ends the
// request; trailer fields are read and dropped.
func parseTrailers(buf []byte, pos int, req *request, lim limits) error {
	start := pos
	for {
		nl := bytes.IndexByte(buf[pos:], '\n')
		if nl < 0 {
			if len(buf)-start > lim.header {
				return &statusError{code: 431, reason: "trailer section too large"}
			}
			return errIncomplete
		}
		line, _ := nextLine(buf[pos : pos+nl+1])
		pos += nl + 1
		if len(line) == 0 {
			req.totalLen = pos
			return nil
		}
		if pos-start > lim.header {
			return &statusError{code: 431, reason: "trailer section too large"}
		}
		var f headerFields
		if err := parseField(line, &f); err != nil {
			return err
		}
	}
}

// parseDecimal parses a non-empty run of ASCII digits. A number too long
// for an int32 comes back as math.MaxInt32, which every limit refuses.
func parseDecimal(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = min(n*10+int(c-'0'), math.MaxInt32)
	}
	return n, true
}

// parseHex parses a chunk size; ok is false if b is not hex or exceeds limit.
func parseHex(b []byte, limit int) (n int, ok bool) {
	if len(b) == 0 {
		return 0, false
	}
	for _, c := range b {
		var d byte
		switch {
		case isDigit(c):
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int(d)
		if n > limit {
			return 0, false
		}
	}
	return n, true
}

func isHexDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) && !('a' <= c && c <= 'f') && !('A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken reports whether b is a non-empty token (RFC 9110 §5.6.2).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// isTarget reports whether b has no whitespace or control bytes.
func isTarget(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// asciiEqualFold compares b with the lower- or mixed-case ASCII word s,
// ignoring case, without allocating.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
