module github.com/ccb70390/netpoll/examples/slogzap

go 1.25

require (
	github.com/ccb70390/netpoll v0.1.0
	go.uber.org/zap v1.28.0
	go.uber.org/zap/exp v0.3.0
)

require (
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/sys v0.38.0 // indirect
)
