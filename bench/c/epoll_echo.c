/*
 * epoll_echo: the floor of the comparison. One thread, level-triggered epoll,
 * non-blocking sockets, one read and one write per burst of input; nothing a
 * Go library could skip.
 *
 * Input is read into one shared 64 KiB buffer and written straight back.
 * Only what the socket refuses is copied into a per-connection backlog; while
 * a backlog exists the connection stops reading (EPOLLOUT only), so a client
 * that does not read cannot grow our memory without bound.
 *
 * usage: epoll_echo -addr 127.0.0.1:PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)
#define MAX_EVENTS 512

struct backlog {
	char *data;
	size_t off, len;
};

static struct backlog *pending; /* indexed by fd; NULL data when nothing waits */
static int max_fds;
static int epfd;
static char buf[BUF];

static void die(const char *what)
{
	fprintf(stderr, "epoll_echo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void drop(int fd)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	free(pending[fd].data);
	pending[fd] = (struct backlog){0};
	close(fd);
}

static void set_events(int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		die("epoll_ctl mod");
}

static void accept_all(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			if (errno == EMFILE || errno == ENFILE) {
				fprintf(stderr, "epoll_echo: accept: %s\n", strerror(errno));
				return;
			}
			die("accept4");
		}
		if (fd >= max_fds) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl add");
	}
}

/* send_or_keep writes p[0:n]; what the socket refuses is kept for EPOLLOUT.
 * Returns -1 when the connection is gone. */
static int send_or_keep(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -1;
			struct backlog *b = &pending[fd];
			b->data = malloc(n);
			if (!b->data)
				return -1;
			memcpy(b->data, p, n);
			b->off = 0;
			b->len = n;
			set_events(fd, EPOLLOUT);
			return 0;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void on_readable(int fd)
{
	ssize_t r = read(fd, buf, sizeof buf);
	if (r > 0) {
		if (send_or_keep(fd, buf, (size_t)r) < 0)
			drop(fd);
		return;
	}
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	drop(fd);
}

static void on_writable(int fd)
{
	struct backlog *b = &pending[fd];
	while (b->off < b->len) {
		ssize_t w = write(fd, b->data + b->off, b->len - b->off);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			drop(fd);
			return;
		}
		b->off += (size_t)w;
	}
	free(b->data);
	*b = (struct backlog){0};
	set_events(fd, EPOLLIN | EPOLLRDHUP);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1:0";
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-addr") == 0 || strcmp(argv[i], "--addr") == 0) && i + 1 < argc)
			addr = argv[++i];
		else if (strncmp(argv[i], "-addr=", 6) == 0)
			addr = argv[i] + 6;
	}
	char host[64];
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof host) {
		fprintf(stderr, "usage: epoll_echo -addr 127.0.0.1:PORT\n");
		return 2;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "epoll_echo: bad address %s\n", addr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	max_fds = (int)sysconf(_SC_OPEN_MAX);
	if (max_fds < 1024)
		max_fds = 1024;
	pending = calloc((size_t)max_fds, sizeof *pending);
	if (!pending)
		die("calloc");

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die("bind");
	if (listen(lfd, SOMAXCONN) < 0)
		die("listen");
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0)
		die("epoll_ctl listener");
	socklen_t sl = sizeof sa;
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	printf("epoll_echo listening on %s:%d\n", host, ntohs(sa.sin_port));
	fflush(stdout);

	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint32_t e = evs[i].events;
			if (fd == lfd) {
				accept_all(lfd);
				continue;
			}
			if (e & EPOLLOUT) {
				on_writable(fd);
				continue;
			}
			/* EPOLLRDHUP may come with unread data: read until the read
			 * itself says EOF, which drops the connection. */
			if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				on_readable(fd);
		}
	}
}
