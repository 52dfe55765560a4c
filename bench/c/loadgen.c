/*
 * loadgen: a one-thread epoll load generator for echo servers on loopback.
 *
 * It must cost less per request than any server it drives, so it does the
 * least a client can: one write and one read per message, level-triggered
 * epoll, no copies beyond the kernel's, no per-request allocation.
 *
 * Modes (-m):
 *   closed  N connections; each sends an S-byte message, waits for all S bytes
 *           of the echo, and repeats. Reports requests/s and MB/s.
 *   open    a fixed total rate R spread over N connections, scheduled by the
 *           clock. Latency is taken from the scheduled send time, not the real
 *           one, so a stalled server is charged for the requests it delayed
 *           (the coordinated-omission correction that wrk2 makes).
 *   stream  N connections each keep up to -W bytes in flight in 64 KiB writes
 *           while reading the echo back. Reports MB/s of echoed bytes.
 *   idle    opens N connections, pings each once so the server has surely
 *           accepted it, reads the server's RSS, and holds them for -t seconds.
 *
 * With -p PID the server's CPU time (utime+stime from /proc/PID/stat) and RSS
 * (VmRSS from /proc/PID/status) are read at the exact edges of the measured
 * window, so warm-up and connection set-up are never charged to a request.
 * With -k it also sends SIGUSR1 to the server when the window opens and
 * SIGUSR2 when it closes (our Go servers start and stop profiles on them).
 *
 * Output: one line "RESULT key=value ..." on stdout; diagnostics on stderr.
 * Every connection is closed with SO_LINGER 0 (RST), so thousands of runs
 * leave no TIME_WAIT sockets that would exhaust the ephemeral ports.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define PING_LEN 4
#define CONNECT_BATCH 500
#define MAX_EVENTS 1024

/* HDR-style histogram: 2^SUB_BITS linear sub-buckets per power of two, so
 * each recorded value is kept to within 1/128 (<0.8%) of its true size. */
#define SUB_BITS 7
#define SUB_COUNT (1 << SUB_BITS)
#define HIST_SIZE ((64 - SUB_BITS + 1) * SUB_COUNT)

struct conn {
	int fd;
	int dead;
	uint32_t events;   /* what epoll currently watches for this fd */
	size_t to_write;   /* bytes of the current message not yet written */
	size_t to_read;    /* bytes of the current echo not yet read */
	int busy;          /* open mode: a request is outstanding */
	uint64_t k_sent;   /* open mode: requests sent (and so the next index) */
	uint64_t k_due;    /* open mode: requests whose scheduled time passed */
};

static struct {
	const char *mode;
	struct sockaddr_in addr;
	int conns;
	size_t size;
	double duration;
	double warmup;
	double rate;
	double hold;
	pid_t pid;
	int mark;
	uint64_t window;
} opt = {
	.mode = "closed",
	.conns = 100,
	.size = 64,
	.duration = 5,
	.warmup = 1,
	.hold = 5,
	.window = 4 * CHUNK,
};

static struct conn *conns;
static int epfd;
static char *sendbuf;
static char recvbuf[CHUNK];
static uint64_t hist[HIST_SIZE];
static uint64_t errors;

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int hist_index(uint64_t v)
{
	if (v < SUB_COUNT)
		return (int)v;
	int e = 63 - __builtin_clzll(v);
	int shift = e - SUB_BITS;
	return (shift + 1) * SUB_COUNT + (int)((v >> shift) - SUB_COUNT);
}

/* hist_value returns the middle of bucket idx. */
static uint64_t hist_value(int idx)
{
	if (idx < SUB_COUNT)
		return (uint64_t)idx;
	int shift = idx / SUB_COUNT - 1;
	uint64_t m = (uint64_t)(idx % SUB_COUNT + SUB_COUNT);
	return (m << shift) + ((1ull << shift) >> 1);
}

static uint64_t hist_percentile(double p)
{
	uint64_t total = 0, seen = 0;
	for (int i = 0; i < HIST_SIZE; i++)
		total += hist[i];
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)(p / 100.0 * (double)total + 0.5);
	if (want < 1)
		want = 1;
	for (int i = 0; i < HIST_SIZE; i++) {
		seen += hist[i];
		if (seen >= want)
			return hist_value(i);
	}
	return 0;
}

/* server_cpu_ticks returns utime+stime of the server in clock ticks, or -1. */
static long long server_cpu_ticks(void)
{
	if (opt.pid <= 0)
		return -1;
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)opt.pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: fields are counted
	 * from the last ')'. utime and stime are fields 14 and 15 (proc(5)). */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long long ut = 0, st = 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

/* server_rss_kb returns VmRSS of the server in KiB, or -1. */
static long server_rss_kb(void)
{
	if (opt.pid <= 0)
		return -1;
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)opt.pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void signal_server(int sig)
{
	if (opt.mark && opt.pid > 0)
		kill(opt.pid, sig);
}

static void watch(struct conn *c, uint32_t events)
{
	if (c->events == events)
		return;
	struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - conns)};
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl");
	c->events = events;
}

static void kill_conn(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	if (errors < 5)
		fprintf(stderr, "loadgen: conn %d: %s\n", (int)(c - conns), why);
	errors++;
	c->dead = 1;
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

static void close_all(void)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	for (int i = 0; i < opt.conns; i++) {
		if (conns[i].fd < 0)
			continue;
		setsockopt(conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(conns[i].fd);
		conns[i].fd = -1;
	}
}

/* ping_batch sends PING_LEN bytes on conns [lo, hi) and waits for every echo,
 * which proves the server accepted and registered each connection. */
static void ping_batch(int lo, int hi)
{
	for (int i = lo; i < hi; i++) {
		if (write(conns[i].fd, sendbuf, PING_LEN) != PING_LEN)
			die("ping write");
		conns[i].to_read = PING_LEN;
	}
	int left = hi - lo;
	uint64_t deadline = now_ns() + 10000000000ull;
	struct epoll_event evs[MAX_EVENTS];
	while (left > 0) {
		if (now_ns() > deadline) {
			fprintf(stderr, "loadgen: %d of %d connections never echoed the ping\n", left, hi - lo);
			exit(2);
		}
		int n = epoll_wait(epfd, evs, MAX_EVENTS, 100);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int j = 0; j < n; j++) {
			struct conn *c = &conns[evs[j].data.u32];
			ssize_t r = read(c->fd, recvbuf, c->to_read);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				fprintf(stderr, "loadgen: ping: connection %d closed by server\n", (int)(c - conns));
				exit(2);
			}
			c->to_read -= (size_t)r;
			if (c->to_read == 0)
				left--;
		}
	}
}

static void connect_all(void)
{
	conns = calloc((size_t)opt.conns, sizeof *conns);
	if (!conns)
		die("calloc");
	for (int lo = 0; lo < opt.conns; lo += CONNECT_BATCH) {
		int hi = lo + CONNECT_BATCH < opt.conns ? lo + CONNECT_BATCH : opt.conns;
		for (int i = lo; i < hi; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			if (fd < 0)
				die("socket");
			/* Blocking connect: on loopback it returns once the handshake is
			 * done; the batch size keeps us under the accept backlog. */
			if (connect(fd, (struct sockaddr *)&opt.addr, sizeof opt.addr) < 0)
				die("connect");
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			conns[i].fd = fd;
			conns[i].events = EPOLLIN;
			struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
			if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
				die("epoll_ctl add");
		}
		ping_batch(lo, hi);
	}
}

/* try_write writes what remains of the current message; it watches for
 * EPOLLOUT only while the socket is full. */
static void try_write(struct conn *c)
{
	while (c->to_write > 0) {
		size_t n = c->to_write < CHUNK ? c->to_write : CHUNK;
		ssize_t w = write(c->fd, sendbuf, n);
		if (w < 0) {
			if (errno == EAGAIN) {
				watch(c, EPOLLIN | EPOLLOUT);
				return;
			}
			kill_conn(c, strerror(errno));
			return;
		}
		c->to_write -= (size_t)w;
	}
	watch(c, EPOLLIN);
}

static void start_message(struct conn *c)
{
	c->to_write = opt.size;
	c->to_read = opt.size;
	try_write(c);
}

/* read_some reads what is buffered (one read call) and returns the byte
 * count, or -1 once the connection is dead. */
static ssize_t read_some(struct conn *c, size_t max)
{
	if (max > sizeof recvbuf)
		max = sizeof recvbuf;
	ssize_t r = read(c->fd, recvbuf, max);
	if (r > 0)
		return r;
	if (r < 0 && errno == EAGAIN)
		return 0;
	kill_conn(c, r == 0 ? "closed by server" : strerror(errno));
	return -1;
}

struct window {
	uint64_t start, end;
	long long cpu0, cpu1;
	uint64_t self0, self1; /* our own CPU time, ns */
	long long busy0, busy1; /* whole machine, ticks */
	long rss;
};

/* machine_busy_ticks is the non-idle time of all CPUs from /proc/stat. The
 * machine is shared: busy time that is neither the server's nor ours is
 * reported as other_util, so a disturbed run can be seen and discarded. */
static long long machine_busy_ticks(void)
{
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	unsigned long long v[8] = {0};
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		       &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 8)
		return -1;
	/* user nice system idle iowait irq softirq steal: drop idle and iowait. */
	return (long long)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
}

/* self_cpu_ns is the generator's own CPU time: a utilisation near 1.0 means
 * the generator, not the server, set the pace of a closed-loop run. */
static uint64_t self_cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

static void open_window(struct window *w, uint64_t t)
{
	w->cpu0 = server_cpu_ticks();
	w->self0 = self_cpu_ns();
	w->busy0 = machine_busy_ticks();
	signal_server(SIGUSR1);
	w->start = t;
}

static void close_window(struct window *w, uint64_t t)
{
	w->end = t;
	signal_server(SIGUSR2);
	w->cpu1 = server_cpu_ticks();
	w->self1 = self_cpu_ns();
	w->busy1 = machine_busy_ticks();
	w->rss = server_rss_kb();
}

static void print_common(const struct window *w, uint64_t reqs, uint64_t bytes)
{
	double secs = (double)(w->end - w->start) / 1e9;
	if (secs <= 0)
		secs = 1e-9;
	long tck = sysconf(_SC_CLK_TCK);
	printf(" conns=%d size=%zu secs=%.3f reqs=%llu rps=%.0f mbps=%.2f errors=%llu rss_kb=%ld",
	       opt.conns, opt.size, secs, (unsigned long long)reqs, (double)reqs / secs,
	       (double)bytes / secs / 1e6, (unsigned long long)errors, w->rss);
	double gen = (double)(w->self1 - w->self0) / 1e9 / secs;
	double machine = (double)(w->busy1 - w->busy0) / (double)tck / secs;
	printf(" gen_util=%.3f machine_util=%.3f", gen, machine);
	if (w->cpu0 >= 0 && w->cpu1 >= 0 && reqs > 0) {
		double cpu_us = (double)(w->cpu1 - w->cpu0) * 1e6 / (double)tck;
		printf(" cpu_s=%.3f cpu_us_per_req=%.3f cpu_util=%.3f other_util=%.3f", cpu_us / 1e6,
		       cpu_us / (double)reqs, cpu_us / 1e6 / secs, machine - gen - cpu_us / 1e6 / secs);
	}
}

static void run_closed(void)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t t0 = now_ns();
	uint64_t t_mark = t0 + (uint64_t)(opt.warmup * 1e9);
	uint64_t t_end = t_mark + (uint64_t)(opt.duration * 1e9);
	uint64_t done = 0, done_at_mark = 0;
	int measuring = 0;
	struct window w = {0};
	for (int i = 0; i < opt.conns; i++)
		start_message(&conns[i]);
	for (;;) {
		uint64_t t = now_ns();
		if (!measuring && t >= t_mark) {
			measuring = 1;
			done_at_mark = done;
			open_window(&w, t);
			/* The window is as long as asked even if we were descheduled
			 * past its planned start. */
			t_mark = t;
			t_end = t + (uint64_t)(opt.duration * 1e9);
		}
		if (measuring && t >= t_end) {
			close_window(&w, t);
			break;
		}
		int n = epoll_wait(epfd, evs, MAX_EVENTS, 5);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int j = 0; j < n; j++) {
			struct conn *c = &conns[evs[j].data.u32];
			if (c->dead)
				continue;
			if (evs[j].events & EPOLLOUT)
				try_write(c);
			if (!(evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				continue;
			ssize_t r = read_some(c, c->to_read);
			if (r <= 0)
				continue;
			c->to_read -= (size_t)r;
			if (c->to_read == 0) {
				done++;
				start_message(c);
			}
		}
	}
	uint64_t reqs = done - done_at_mark;
	printf("RESULT mode=closed");
	print_common(&w, reqs, reqs * opt.size);
	printf("\n");
}

static void run_stream(void)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t t0 = now_ns();
	uint64_t t_mark = t0 + (uint64_t)(opt.warmup * 1e9);
	uint64_t t_end = t_mark + (uint64_t)(opt.duration * 1e9);
	uint64_t bytes = 0, bytes_at_mark = 0;
	int measuring = 0;
	struct window w = {0};
	for (int i = 0; i < opt.conns; i++) {
		conns[i].to_write = opt.window;
		try_write(&conns[i]);
	}
	for (;;) {
		uint64_t t = now_ns();
		if (!measuring && t >= t_mark) {
			measuring = 1;
			bytes_at_mark = bytes;
			open_window(&w, t);
			/* The window is as long as asked even if we were descheduled
			 * past its planned start. */
			t_mark = t;
			t_end = t + (uint64_t)(opt.duration * 1e9);
		}
		if (measuring && t >= t_end) {
			close_window(&w, t);
			break;
		}
		int n = epoll_wait(epfd, evs, MAX_EVENTS, 5);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int j = 0; j < n; j++) {
			struct conn *c = &conns[evs[j].data.u32];
			if (c->dead)
				continue;
			if (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
				ssize_t r = read_some(c, CHUNK);
				if (r < 0)
					continue;
				bytes += (uint64_t)r;
				/* Refill the window: each echoed byte allows one more. */
				c->to_write += (size_t)r;
			}
			try_write(c);
		}
	}
	uint64_t got = bytes - bytes_at_mark;
	printf("RESULT mode=stream window=%llu", (unsigned long long)opt.window);
	/* A "request" here is one 64 KiB chunk echoed, for the CPU figure. */
	print_common(&w, got / CHUNK, got);
	printf("\n");
}

/* Waits shorter than this poll rather than sleep (see run_open). */
#define SPIN_NS 200000

static uint64_t sched_ns(uint64_t t0, int c, uint64_t k)
{
	double idx = (double)k * opt.conns + c;
	return t0 + (uint64_t)(idx * 1e9 / opt.rate);
}

static void open_send(struct conn *c)
{
	c->busy = 1;
	start_message(c);
}

static void run_open(void)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t t0 = now_ns();
	uint64_t t_mark = t0 + (uint64_t)(opt.warmup * 1e9);
	uint64_t t_end = t_mark + (uint64_t)(opt.duration * 1e9);
	uint64_t next = 0; /* next global request index to fall due */
	uint64_t done = 0, late_max = 0;
	int measuring = 0;
	struct window w = {0};
	for (;;) {
		uint64_t t = now_ns();
		if (!measuring && t >= t_mark) {
			measuring = 1;
			open_window(&w, t);
			/* The window is as long as asked even if we were descheduled
			 * past its planned start. */
			t_mark = t;
			t_end = t + (uint64_t)(opt.duration * 1e9);
		}
		if (measuring && t >= t_end) {
			close_window(&w, t);
			break;
		}
		/* Requests fall due by the clock, whatever the server does. */
		for (;;) {
			int ci = (int)(next % (uint64_t)opt.conns);
			uint64_t k = next / (uint64_t)opt.conns;
			if (sched_ns(t0, ci, k) > t)
				break;
			struct conn *c = &conns[ci];
			c->k_due++;
			if (!c->busy && !c->dead)
				open_send(c);
			next++;
		}
		/* Wait until the next request falls due, with nanosecond
		 * precision (epoll_pwait2, timer slack set to 1 ns in main).
		 * A wait shorter than SPIN_NS polls instead of sleeping: at tens
		 * of thousands of requests a second a sleeping generator pays a
		 * wake-up per request, which made it cost more CPU per request
		 * than the servers it measures and put its own queueing into
		 * their tail latency (gen_util 0.92 at 70k req/s). Its core is
		 * its own (taskset), so polling takes nothing from the server. */
		uint64_t due = sched_ns(t0, (int)(next % (uint64_t)opt.conns), next / (uint64_t)opt.conns);
		t = now_ns();
		uint64_t wait = due > t ? due - t : 0;
		if (wait < SPIN_NS)
			wait = 0;
		if (wait > 1000000)
			wait = 1000000;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)wait};
		int n = epoll_pwait2(epfd, evs, MAX_EVENTS, &ts, NULL);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		if (n <= 0)
			continue;
		t = now_ns();
		for (int j = 0; j < n; j++) {
			int ci = (int)evs[j].data.u32;
			struct conn *c = &conns[ci];
			if (c->dead)
				continue;
			if (evs[j].events & EPOLLOUT)
				try_write(c);
			if (!(evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				continue;
			ssize_t r = read_some(c, c->to_read);
			if (r <= 0)
				continue;
			c->to_read -= (size_t)r;
			if (c->to_read > 0)
				continue;
			uint64_t s = sched_ns(t0, ci, c->k_sent);
			if (s >= t_mark && s < t_end) {
				uint64_t lat = t - s;
				hist[hist_index(lat)]++;
				done++;
				if (lat > late_max)
					late_max = lat;
			}
			c->k_sent++;
			c->busy = 0;
			/* A request that fell due while this one was out goes now;
			 * its latency still counts from when it was due. */
			if (c->k_sent < c->k_due)
				open_send(c);
		}
	}
	uint64_t unfinished = 0;
	for (int i = 0; i < opt.conns; i++)
		unfinished += conns[i].k_due - conns[i].k_sent;
	printf("RESULT mode=open rate=%.0f", opt.rate);
	print_common(&w, done, done * opt.size);
	printf(" p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f unfinished=%llu\n",
	       (double)hist_percentile(50) / 1e3, (double)hist_percentile(90) / 1e3,
	       (double)hist_percentile(99) / 1e3, (double)hist_percentile(99.9) / 1e3,
	       (double)late_max / 1e3, (unsigned long long)unfinished);
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen -a 127.0.0.1:PORT [-m closed|open|stream|idle] [-c conns] [-s size]\n"
		"               [-d secs] [-w warmup] [-r rate] [-t hold] [-W window] [-p pid] [-k]\n");
	exit(2);
}

static void parse_addr(const char *s)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof host)
		usage();
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	opt.addr.sin_family = AF_INET;
	opt.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1)
		usage();
	/* Loopback only: this tool is never pointed at another machine. */
	if ((ntohl(opt.addr.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "loadgen: refusing non-loopback address %s\n", s);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	int ch;
	const char *addr = NULL;
	while ((ch = getopt(argc, argv, "a:m:c:s:d:w:r:t:W:p:k")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'm': opt.mode = optarg; break;
		case 'c': opt.conns = atoi(optarg); break;
		case 's': opt.size = (size_t)atol(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 't': opt.hold = atof(optarg); break;
		case 'W': opt.window = (uint64_t)atoll(optarg); break;
		case 'p': opt.pid = (pid_t)atoi(optarg); break;
		case 'k': opt.mark = 1; break;
		default: usage();
		}
	}
	if (!addr || opt.conns <= 0 || opt.size == 0)
		usage();
	parse_addr(addr);
	signal(SIGPIPE, SIG_IGN);
	/* The default 50 us timer slack would blur the open-loop schedule. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	size_t bufsize = opt.size > CHUNK ? opt.size : CHUNK;
	sendbuf = malloc(bufsize);
	if (!sendbuf)
		die("malloc");
	memset(sendbuf, 'x', bufsize);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");

	if (strcmp(opt.mode, "idle") == 0) {
		long before = server_rss_kb();
		uint64_t t0 = now_ns();
		connect_all();
		double setup = (double)(now_ns() - t0) / 1e9;
		/* Let the server settle (GC, page faults of the last accepts). */
		sleep_s(1.0);
		long after = server_rss_kb();
		long long cpu = server_cpu_ticks();
		sleep_s(opt.hold > 1.0 ? opt.hold - 1.0 : 0);
		long later = server_rss_kb();
		long long cpu2 = server_cpu_ticks();
		long peak = later > after ? later : after;
		printf("RESULT mode=idle conns=%d setup_s=%.3f rss_before_kb=%ld rss_after_kb=%ld "
		       "rss_end_kb=%ld bytes_per_conn=%.0f idle_cpu_ticks=%lld\n",
		       opt.conns, setup, before, after, later,
		       (double)(peak - before) * 1024.0 / opt.conns,
		       cpu >= 0 && cpu2 >= 0 ? cpu2 - cpu : -1);
	} else {
		connect_all();
		if (strcmp(opt.mode, "closed") == 0)
			run_closed();
		else if (strcmp(opt.mode, "stream") == 0)
			run_stream();
		else if (strcmp(opt.mode, "open") == 0) {
			if (opt.rate <= 0)
				usage();
			run_open();
		} else
			usage();
	}
	fflush(stdout);
	close_all();
	return errors > 0 ? 1 : 0;
}
