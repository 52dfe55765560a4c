package netpoll

import (
	"syscall"

	"github.com/ccb70390/netpoll/internal/sys"
)

// epollevent is the kernel's struct epoll_event.
type epollevent = sys.EpollEvent

// EPOLLET is the edge-triggered flag of epoll, as a positive int.
const EPOLLET = -syscall.EPOLLET

// EpollCreate calls epoll_create1.
func EpollCreate(flag int) (fd int, err error) { return sys.EpollCreate(flag) }

// EpollCtl calls epoll_ctl.
func EpollCtl(epfd, op, fd int, event *epollevent) (err error) {
	return sys.EpollCtl(epfd, op, fd, event)
}

// EpollWait calls epoll_wait.
func EpollWait(epfd int, events []epollevent, msec int) (n int, err error) {
	return sys.EpollWait(epfd, events, msec)
}
