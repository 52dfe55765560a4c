module github.com/ccb70390/netpoll/conformance

go 1.26.0

require (
	github.com/ccb70390/netpoll v0.1.0
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.62.0
)

require golang.org/x/sys v0.50.0 // indirect
