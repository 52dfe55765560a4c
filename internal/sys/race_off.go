//go:build !race

package sys

// raceEnabled reports whether the race detector is built in (see rawio_unix.go).
const raceEnabled = false
