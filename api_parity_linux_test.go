package netpoll

// The epoll names of the reference exist on Linux only, as there.
var (
	_ func(int) (int, error)                    = EpollCreate
	_ func(int, int, int, *epollevent) error    = EpollCtl
	_ func(int, []epollevent, int) (int, error) = EpollWait
	_ int                                       = EPOLLET
)
