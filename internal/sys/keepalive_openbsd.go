package sys

// setKeepAlivePeriod does nothing: OpenBSD has no per-socket keep-alive timers,
// only the net.inet.tcp.keepidle and keepintvl sysctls.
func setKeepAlivePeriod(fd, secs int) error { return nil }
