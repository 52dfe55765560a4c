package netpoll

import (
	"context"
	"log/slog"
	"sync"
)

// version is this library's release. It must match the VERSION file at the
// module's root (TestVersionMatchesFile), which cmd/netpoll-switch stamps on
// the copies it writes.
const version = "v0.1.0"

// referenceVersion is the release of github.com/cloudwego/netpoll whose API
// and behaviour this library tracks.
const referenceVersion = "v0.7.2"

// announceOnce makes the first NewEventLoop of a process log which library
// is in use: a Kitex or Hertz service switched with cmd/netpoll-switch can
// see it in its logs (MIGRATING.md). One line per process, at Info level.
var announceOnce sync.Once

func announce() {
	announceOnce.Do(func() { announceTo(currentLogger()) })
}

// announceTo writes the line announce logs. The library's name is a string,
// not an import path, so the switch's rewritten copy keeps saying it.
func announceTo(l *slog.Logger) {
	l.LogAttrs(context.Background(), slog.LevelInfo, "netpoll: github.com/ccb70390/netpoll in use",
		slog.String("version", version),
		slog.String("replaces", "github.com/cloudwego/netpoll "+referenceVersion))
}
