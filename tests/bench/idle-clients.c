/*
 * idle-clients.c — a cheap load client that opens many idle WebSockets and keeps them open.
 *
 * A test tool for scripts/bench.sh's "idle" section (docs/BENCHMARKS.md, "100,000 idle
 * WebSockets"): one process, one epoll loop, raw sockets and a hand-written handshake, so that
 * a connection costs the client a descriptor and a few hundred bytes, far below what the
 * servers spend on it. Each connection binds a source address from --from upwards, --per-addr
 * connections to each (past the ephemeral port range and gateway.max_conns_per_addr), sends the
 * upgrade with subprotocol ephemeral.v1, and counts as ready once the server's first text frame
 * (the welcome) has arrived. Then it stays idle and answers pings. At most --in-flight
 * handshakes run at once, so that the servers' accept queues never overflow.
 *
 * Prints "ready=N failed=N seconds=S" once every connection is ready or failed (or at SIGUSR1,
 * with those still in their handshake as "pending=N"), then the same with "closed=N" when stdin
 * closes or SIGTERM comes, and exits. Never framing of the product:
 * the servers use libwebsockets.
 */
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
#include <time.h>
#include <unistd.h>

#define IDLE_BUF 512 /* the upgrade answer and the welcome frame fit */

enum idle_state { IDLE_NONE, IDLE_CONNECTING, IDLE_HANDSHAKE, IDLE_READY, IDLE_DEAD };

struct idle_conn {
	unsigned char state;
	unsigned short got;
	char *buf; /* during the handshake only */
};

struct idle_run {
	struct sockaddr_in target;
	struct in_addr from;
	int per_addr, total, in_flight_max;
	const char *path, *origin;
	int ep, opened, in_flight, ready, failed, closed;
	struct idle_conn *conns; /* by descriptor */
	int nconns;
};

static volatile sig_atomic_t idle_stop, idle_report;

static void idle_on_signal(int sig)
{
	(void)sig;
	idle_stop = 1;
}

static void idle_on_usr1(int sig)
{
	(void)sig;
	idle_report = 1;
}

static double idle_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void idle_fail(struct idle_run *r, int fd)
{
	struct idle_conn *c = &r->conns[fd];
	if (c->state == IDLE_READY)
		r->closed++;
	else if (c->state == IDLE_CONNECTING || c->state == IDLE_HANDSHAKE) {
		r->failed++;
		r->in_flight--;
	}
	free(c->buf);
	c->buf = NULL;
	c->state = IDLE_DEAD;
	close(fd);
}

/* Opens the next connection: its own source address every per_addr connections. */
static int idle_open(struct idle_run *r)
{
	int k = r->opened++;
	struct sockaddr_in src = {.sin_family = AF_INET};
	src.sin_addr.s_addr = htonl(ntohl(r->from.s_addr) + (uint32_t)(k / r->per_addr));
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || fd >= r->nconns) {
		if (fd >= 0)
			close(fd);
		r->failed++;
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    (connect(fd, (struct sockaddr *)&r->target, sizeof(r->target)) < 0 &&
	     errno != EINPROGRESS)) {
		close(fd);
		r->failed++;
		return -1;
	}
	struct idle_conn *c = &r->conns[fd];
	c->state = IDLE_CONNECTING;
	c->got = 0;
	c->buf = malloc(IDLE_BUF);
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.fd = fd};
	epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev);
	r->in_flight++;
	return 0;
}

static void idle_send_upgrade(struct idle_run *r, int fd)
{
	char req[512];
	int n = snprintf(
	    req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ephemeral.v1\r\n%s%s%s\r\n",
	    r->path, inet_ntoa(r->target.sin_addr), ntohs(r->target.sin_port),
	    r->origin ? "Origin: " : "", r->origin ? r->origin : "", r->origin ? "\r\n" : "");
	if (write(fd, req, (size_t)n) != n) {
		idle_fail(r, fd);
		return;
	}
	r->conns[fd].state = IDLE_HANDSHAKE;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	epoll_ctl(r->ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Ready once the 101 and one whole text frame (the welcome) are in. */
static void idle_read_handshake(struct idle_run *r, int fd)
{
	struct idle_conn *c = &r->conns[fd];
	ssize_t n = read(fd, c->buf + c->got, IDLE_BUF - 1 - c->got);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		idle_fail(r, fd);
		return;
	}
	c->got = (unsigned short)(c->got + n);
	c->buf[c->got] = '\0';
	char *end = strstr(c->buf, "\r\n\r\n");
	if (end == NULL)
		return;
	if (strncmp(c->buf, "HTTP/1.1 101", 12) != 0) {
		idle_fail(r, fd);
		return;
	}
	unsigned char *f = (unsigned char *)end + 4;
	size_t have = (size_t)(c->buf + c->got - (char *)f);
	if (have < 2)
		return;
	size_t len = f[1] & 0x7f, head = 2;
	if (len == 126) {
		if (have < 4)
			return;
		len = (size_t)f[2] << 8 | f[3];
		head = 4;
	}
	if (have < head + len) {
		if (c->got >= IDLE_BUF - 1)
			idle_fail(r, fd); /* a welcome larger than the buffer: not ours */
		return;
	}
	free(c->buf);
	c->buf = NULL;
	c->state = IDLE_READY;
	r->in_flight--;
	r->ready++;
}

/* Idle: the only thing a server sends is a ping now and then; answer it (masked, as a client). */
static void idle_read_ready(struct idle_run *r, int fd)
{
	unsigned char b[256], pong[2 + 4 + 125];
	ssize_t n = read(fd, b, sizeof(b));
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		idle_fail(r, fd);
		return;
	}
	if (n >= 2 && (b[0] & 0x0f) == 0x9 && (b[1] & 0x7f) <= 125 && n >= 2 + (b[1] & 0x7f)) {
		size_t len = b[1] & 0x7f;
		pong[0] = 0x8a;
		pong[1] = (unsigned char)(0x80 | len);
		memset(pong + 2, 0, 4); /* a zero mask: the payload goes as it is */
		memcpy(pong + 6, b + 2, len);
		if (write(fd, pong, 6 + len) < 0)
			idle_fail(r, fd);
	}
}

int main(int argc, char **argv)
{
	struct idle_run r = {.per_addr = 200, .in_flight_max = 128, .path = "/ws"};
	const char *target = NULL, *from = "127.0.0.2";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--target") == 0)
			target = argv[i + 1];
		else if (strcmp(argv[i], "--connections") == 0)
			r.total = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--from") == 0)
			from = argv[i + 1];
		else if (strcmp(argv[i], "--per-addr") == 0)
			r.per_addr = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--in-flight") == 0)
			r.in_flight_max = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--path") == 0)
			r.path = argv[i + 1];
		else if (strcmp(argv[i], "--origin") == 0)
			r.origin = argv[i + 1];
	}
	char host[64];
	int port = 0;
	if (target == NULL || sscanf(target, "%63[^:]:%d", host, &port) != 2 || r.total <= 0 ||
	    r.per_addr <= 0 || r.in_flight_max <= 0 ||
	    inet_pton(AF_INET, host, &r.target.sin_addr) != 1 ||
	    inet_pton(AF_INET, from, &r.from) != 1) {
		fprintf(stderr, "usage: idle-clients --target IP:PORT --connections N [--from IP] "
				"[--per-addr N] [--in-flight N] [--path /ws] [--origin O]\n");
		return 2;
	}
	r.target.sin_family = AF_INET;
	r.target.sin_port = htons((uint16_t)port);
	r.nconns = r.total + 64;
	r.conns = calloc((size_t)r.nconns, sizeof(*r.conns));
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	signal(SIGTERM, idle_on_signal);
	signal(SIGINT, idle_on_signal);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, idle_on_usr1);
	struct epoll_event in = {.events = EPOLLIN, .data.fd = 0};
	epoll_ctl(r.ep, EPOLL_CTL_ADD, 0, &in); /* stdin closed: stop */

	double start = idle_now();
	int reported = 0;
	struct epoll_event evs[256];
	while (!idle_stop) {
		while (r.opened < r.total && r.in_flight < r.in_flight_max)
			idle_open(&r);
		if (!reported && (r.ready + r.failed >= r.total || idle_report)) {
			printf("ready=%d failed=%d pending=%d seconds=%.1f\n", r.ready, r.failed,
			       r.in_flight, idle_now() - start);
			fflush(stdout);
			reported = 1;
		}
		int n = epoll_wait(r.ep, evs, 256, 1000);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == 0) {
				idle_stop = 1;
				break;
			}
			struct idle_conn *c = &r.conns[fd];
			if (c->state == IDLE_CONNECTING) {
				int err = 0;
				socklen_t len = sizeof(err);
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
				if (err || (evs[i].events & (EPOLLERR | EPOLLHUP)))
					idle_fail(&r, fd);
				else
					idle_send_upgrade(&r, fd);
			} else if (c->state == IDLE_HANDSHAKE) {
				idle_read_handshake(&r, fd);
			} else if (c->state == IDLE_READY) {
				idle_read_ready(&r, fd);
			}
		}
	}
	printf("ready=%d failed=%d closed=%d seconds=%.1f\n", r.ready, r.failed, r.closed,
	       idle_now() - start);
	return 0;
}
