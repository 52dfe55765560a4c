module github.com/ccb70390/netpoll

go 1.25

require (
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.38.0
)
