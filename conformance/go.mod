module github.com/ccb70390/netpoll/conformance

go 1.26.0

replace github.com/ccb70390/netpoll => ../

require (
	github.com/ccb70390/netpoll v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.62.0
)

require golang.org/x/sys v0.50.0 // indirect
