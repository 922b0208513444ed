/*
 * relay-client.c — a cheap load client for relay throughput (docs/BENCHMARKS.md, "Side by side").
 *
 * A test tool: one process, one epoll loop, raw sockets and hand-written framing, so that its
 * own CPU stays far below the servers' (the lws-based ephemeral-bench spends ~10 ms per MiB in
 * lws's client receive parser). Holders announce their blobs and answer each request with one
 * binary frame sent by writev straight from the blob (client frames carry a zero mask, which
 * leaves the payload as it is); requesters keep --window wants open each and skip the bytes of
 * each blob they receive, reading only its first 32 bytes (the hash: the servers check every
 * blob already). Prints key=value lines like ephemeral-bench: wants_per_s, mb_per_s, errors,
 * cpu_NAME_us_per_want for every --watch NAME=PID and for itself (client), and
 * ctxsw_NAME_per_want: the times its threads were switched in (voluntary and not), which on a
 * loaded path is the count of wake-ups a want costs, and rundelay_NAME_us_per_want: how long its
 * threads waited, runnable, for a core (/proc/PID/task/TID/schedstat): the machine's share.
 *
 * Closed loop by default (--window wants open per requester, a random blob each). With --rate R
 * it is open loop instead: a timerfd paces R wants a second, issued round-robin over the
 * requesters (a requester with --max-inflight open wants is passed over; when all are, the want
 * waits in the client), each for the next blob not already wanted (so the servers never coalesce
 * two wants), and each want's latency runs from its intended start, not from when it was sent:
 * a stall anywhere, client included, shows (no coordinated omission). Prints lat_p50/p90/p99/
 * p999/max_us, and the machine's noise meanwhile from a probe thread that sleeps 1 ms at a time
 * and records how late it wakes (noise_p99_us, noise_max_us). --lat-dump FILE writes every
 * want (ms into the window of its intended start, latency µs, µs from its write to its end, µs
 * from its write to the holder reading the request, µs from there to the end) and FILE.noise
 * every probe sample (ms into the window, µs late). The split says which half of the path a
 * tail is in: want → request (the requester's server finding a holder) or request → blob
 * (the holder's answer travelling back).
 *
 * --perf-control FIFO writes "enable" to FIFO as the measured window starts and "disable" as it
 * ends: the control FIFO of a `perf stat -D -1 --control fifo:FIFO` counting the servers' system
 * calls (tests/bench/side-by-side.sh, SIDE_SYSCALLS), so that they cover the window the CPU
 * figures cover. Counted, not timed: the figure does not move with the machine's other load.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "pending.h"
#include "samples.h"

#define RC_MAX_WATCH  16
#define RC_RX_SCRATCH (256 * 1024)
#define RC_TEXT_MAX   (64 * 1024)
#define RC_PACE_EVENT UINT32_MAX /* epoll data of the pacing timerfd */

struct rc_out {
	struct rc_out *next;
	uint8_t *buf; /* frame header (+ text or hash), owned */
	size_t buf_len;
	const uint8_t *data; /* blob bytes, not owned */
	size_t data_len;
	size_t off;
};

struct rc_conn {
	int fd, holder, ready, counts;
	int held; /* blobs a holder announced */
	uint64_t rng;
	int open_wants;
	/* receiving: the upgrade, then frames */
	int upgraded;
	uint8_t hdr[14];
	size_t hdr_len;
	uint64_t remaining;
	int text;
	char *tbuf;
	size_t tlen;
	uint8_t hash[32];
	size_t hash_got;
	struct rc_out *out_head, *out_tail;
};

/* A blob's hash prefix and index, sorted by prefix: finds a blob from its hash in O(log n). */
struct rc_key {
	uint64_t prefix;
	size_t idx;
};

static struct {
	struct sockaddr_in target;
	const char *path;
	int holders, requesters, window;
	int copies; /* holders of each blob (--copies) */
	size_t blob_size, nblobs;
	double warmup, duration;
	uint8_t *blobs;
	uint8_t (*hash)[32];
	struct rc_key *keys;
	struct rc_conn *conns;
	int nconns, ep;
	long long done, bytes, errors;
	int measuring;
	struct {
		char name[32];
		int pid;
		double cpu0, sw0, wait0;
	} watch[RC_MAX_WATCH];
	int nwatch;
	/* open loop (--rate): pacing, the wants in flight per blob, the latency samples */
	double rate;
	int max_inflight, pace_fd, rr;
	int64_t t_start, win0, win1; /* ns, monotonic; the window counts intended starts */
	uint64_t offered;
	struct pending pend;	   /* wants due while no requester has room */
	size_t cursor;		   /* the next blob to want */
	int64_t *t_sched, *t_sent; /* per blob: intended start and write time of its open want */
	int64_t *t_req;		   /* per blob: when its holder read the request for it */
	uint8_t *busy;		   /* per blob: a want of it is open */
	int64_t *lat, *lat_at, *lat_sent, *lat_req, *lat_deliver;
	size_t nlat, caplat;
	long long skipped, deferred, window_open;
	const char *lat_dump;
	const char *perf_ctl; /* --perf-control FIFO, or NULL */
} R;

static struct noise_probe probe; /* (samples.h) */

static int64_t rc_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double rc_now(void)
{
	return (double)rc_ns() / 1e9;
}

/* utime + stime of a process, all threads, in microseconds. */
static double rc_cpu_us(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* Context switches of a process, all threads (/proc/PID/task/TID/status), and in *wait the µs
 * its threads spent runnable but waiting for a core (schedstat's run_delay). */
static double rc_ctxsw(int pid, double *wait)
{
	char path[300], line[128];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	double sum = 0;
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", pid, e->d_name);
		FILE *f = fopen(path, "r");
		unsigned long n;
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %lu", &n) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %lu", &n) == 1)
				sum += (double)n;
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", pid, e->d_name);
		f = fopen(path, "r");
		unsigned long long run, delay;
		if (f && fscanf(f, "%llu %llu", &run, &delay) == 2)
			*wait += (double)delay / 1e3;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return sum;
}

/* Writes what the socket takes of o; 1 when all of it went, 0 when the socket is full. */
static int rc_write(struct rc_conn *c, struct rc_out *o)
{
	for (;;) {
		struct iovec iov[2];
		int k = 0;
		if (o->off < o->buf_len)
			iov[k++] = (struct iovec){o->buf + o->off, o->buf_len - o->off};
		size_t doff = o->off > o->buf_len ? o->off - o->buf_len : 0;
		if (o->data_len > doff)
			iov[k++] = (struct iovec){(void *)(o->data + doff), o->data_len - doff};
		if (k == 0)
			return 1;
		ssize_t w = writev(c->fd, iov, k);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return 0;
		if (w < 0) {
			fprintf(stderr, "relay-client: write failed\n");
			exit(1);
		}
		o->off += (size_t)w;
	}
}

/* Sends at once when nothing waits before it (one system call, no epoll change); queues the
 * rest and asks for EPOLLOUT. */
static void rc_queue(struct rc_conn *c, uint8_t *buf, size_t len, const uint8_t *data, size_t dlen)
{
	struct rc_out o1 = {.buf = buf, .buf_len = len, .data = data, .data_len = dlen};
	if (c->out_head == NULL && rc_write(c, &o1)) {
		free(buf);
		return;
	}
	struct rc_out *o = malloc(sizeof(*o));
	*o = o1;
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(c - R.conns)};
	epoll_ctl(R.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* A client frame header with a zero mask; returns its length. */
static size_t rc_header(uint8_t *h, int opcode, uint64_t len)
{
	h[0] = (uint8_t)(0x80 | opcode);
	size_t n;
	if (len < 126) {
		h[1] = (uint8_t)(0x80 | len);
		n = 2;
	} else if (len < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		n = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	memset(h + n, 0, 4);
	return n + 4;
}

static void rc_send_text(struct rc_conn *c, const char *text, size_t len)
{
	uint8_t *b = malloc(14 + len);
	size_t h = rc_header(b, 1, len);
	memcpy(b + h, text, len);
	rc_queue(c, b, h + len, NULL, 0);
}

static void rc_hex(const uint8_t *h, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
	out[64] = '\0';
}

static uint64_t rc_prefix(const uint8_t *h)
{
	uint64_t p;
	memcpy(&p, h, sizeof(p));
	return p;
}

static int rc_key_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct rc_key *)a)->prefix, y = ((const struct rc_key *)b)->prefix;
	return x < y ? -1 : x > y;
}

/* The index of the blob with this hash, or -1. */
static long rc_find(const uint8_t *h)
{
	size_t lo = 0, hi = R.nblobs;
	uint64_t p = rc_prefix(h);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (R.keys[mid].prefix < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < R.nblobs && R.keys[lo].prefix == p; lo++)
		if (memcmp(R.hash[R.keys[lo].idx], h, 32) == 0)
			return (long)R.keys[lo].idx;
	return -1;
}

static int rc_nibble(char x)
{
	return x >= '0' && x <= '9' ? x - '0' : x >= 'a' && x <= 'f' ? x - 'a' + 10 : -1;
}

static long rc_blob_of(const char *hex)
{
	uint8_t h[32];
	for (int i = 0; i < 32; i++) {
		int a = rc_nibble(hex[2 * i]), b = a < 0 ? -1 : rc_nibble(hex[2 * i + 1]);
		if (b < 0)
			return -1;
		h[i] = (uint8_t)(a << 4 | b);
	}
	return rc_find(h);
}

static void rc_send_want(struct rc_conn *c, size_t b)
{
	char msg[128];
	strcpy(msg, "{\"type\":\"want\",\"hash\":\"");
	rc_hex(R.hash[b], msg + 23);
	strcpy(msg + 23 + 64, "\"}");
	rc_send_text(c, msg, 23 + 64 + 2);
	c->open_wants++;
}

static void rc_want_next(struct rc_conn *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	rc_send_want(c, (size_t)(c->rng % R.nblobs));
}

/* Open loop: one want with intended start t_ref, on the next requester with room. */
static void rc_rate_issue(int64_t t_ref)
{
	for (int k = 0; k < R.requesters; k++) {
		struct rc_conn *c = &R.conns[R.holders + R.rr];
		R.rr = (R.rr + 1) % R.requesters;
		if (c->open_wants >= R.max_inflight)
			continue;
		size_t b = R.cursor, n = 0;
		while (R.busy[b] && n++ < R.nblobs)
			b = (b + 1) % R.nblobs;
		if (R.busy[b]) {
			R.skipped++; /* every blob wanted already: far behind */
			return;
		}
		R.cursor = (b + 1) % R.nblobs;
		R.busy[b] = 1;
		R.t_sched[b] = t_ref;
		R.t_req[b] = 0;
		rc_send_want(c, b);
		R.t_sent[b] = rc_ns();
		if (t_ref >= R.win0 && t_ref < R.win1)
			R.window_open++;
		return;
	}
	R.deferred++;
	pending_push(&R.pend, t_ref);
}

/* The pacing timer: issues every want due by now (all of them if the client woke late). */
static void rc_rate_due(void)
{
	uint64_t ticks;
	if (read(R.pace_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	double per = 1e9 / R.rate;
	uint64_t due = (uint64_t)((double)(rc_ns() - R.t_start) / per) + 1;
	while (R.offered < due)
		rc_rate_issue(R.t_start + (int64_t)((double)R.offered++ * per));
}

static void rc_record(size_t b, int64_t now)
{
	int64_t ref = R.t_sched[b];
	if (ref < R.win0 || ref >= R.win1)
		return;
	R.window_open--;
	if (R.nlat == R.caplat) {
		R.caplat = R.caplat ? R.caplat * 2 : 65536;
		R.lat = realloc(R.lat, R.caplat * sizeof(*R.lat));
		R.lat_at = realloc(R.lat_at, R.caplat * sizeof(*R.lat_at));
		R.lat_sent = realloc(R.lat_sent, R.caplat * sizeof(*R.lat_sent));
		R.lat_req = realloc(R.lat_req, R.caplat * sizeof(*R.lat_req));
		R.lat_deliver = realloc(R.lat_deliver, R.caplat * sizeof(*R.lat_deliver));
		if (R.lat == NULL || R.lat_at == NULL || R.lat_sent == NULL || R.lat_req == NULL ||
		    R.lat_deliver == NULL) {
			fprintf(stderr, "relay-client: out of memory\n");
			exit(1);
		}
	}
	R.lat[R.nlat] = now - ref;
	R.lat_at[R.nlat] = ref - R.win0;
	R.lat_req[R.nlat] = R.t_req[b] ? R.t_req[b] - R.t_sent[b] : 0;
	R.lat_deliver[R.nlat] = R.t_req[b] ? now - R.t_req[b] : 0;
	R.lat_sent[R.nlat++] = now - R.t_sent[b];
}

/* A want ended: b is its blob when known (open loop), ok whether the blob came. */
static void rc_want_done(struct rc_conn *c, long b, size_t bytes, int ok)
{
	c->open_wants--;
	if (R.measuring) {
		if (ok) {
			R.done++;
			R.bytes += (long long)bytes;
		} else {
			R.errors++;
		}
	}
	if (R.rate <= 0) {
		rc_want_next(c);
		return;
	}
	if (b >= 0 && R.busy[b]) {
		R.busy[b] = 0;
		if (ok)
			rc_record((size_t)b, rc_ns());
		else if (R.t_sched[b] >= R.win0 && R.t_sched[b] < R.win1)
			R.window_open--;
	}
	int64_t t_ref;
	if (pending_pop(&R.pend, &t_ref))
		rc_rate_issue(t_ref);
}

static void rc_on_text(struct rc_conn *c, char *t, size_t len)
{
	t[len] = '\0';
	const char *hash = strstr(t, "\"hash\":\"");
	if (strstr(t, "\"type\":\"request\"") && hash && c->holder) {
		long b = rc_blob_of(hash + 8);
		if (b < 0)
			return;
		if (R.rate > 0 && R.busy[b] && R.t_req[b] == 0)
			R.t_req[b] = rc_ns();
		uint8_t *h = malloc(14 + 32);
		size_t n = rc_header(h, 2, 32 + R.blob_size);
		memcpy(h + n, R.hash[b], 32);
		rc_queue(c, h, n + 32, R.blobs + (size_t)b * R.blob_size, R.blob_size);
	} else if (strstr(t, "\"type\":\"count\"")) {
		c->counts++;
	} else if (strstr(t, "\"type\":\"error\"")) {
		if (!c->holder && hash)
			rc_want_done(c, rc_blob_of(hash + 8), 0, 0);
		else
			R.errors++;
	}
}

/* Frames from the server: unmasked. Binary payloads are skipped but for their first 32 bytes. */
static void rc_on_bytes(struct rc_conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (c->remaining == 0 && c->hdr_len < 2) {
			c->hdr[c->hdr_len++] = *p++;
			n--;
			continue;
		}
		if (c->remaining == 0) {
			size_t need = (c->hdr[1] & 0x7f) == 126	  ? 4
				      : (c->hdr[1] & 0x7f) == 127 ? 10
								  : 2;
			while (c->hdr_len < need && n > 0) {
				c->hdr[c->hdr_len++] = *p++;
				n--;
			}
			if (c->hdr_len < need)
				return;
			uint64_t len = c->hdr[1] & 0x7f;
			if (len == 126)
				len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
			else if (len == 127)
				for (int i = 0; i < 8; i++)
					len = (len << 8) | c->hdr[2 + i];
			int op = c->hdr[0] & 0x0f;
			c->hdr_len = 0;
			c->text = op == 1;
			c->tlen = 0;
			c->hash_got = 0;
			if (op == 9 || op == 8 || op == 10 || len == 0) {
				c->remaining = len; /* pings are rare here: skipped */
				if (len == 0 && op == 2)
					rc_want_done(c, -1, 0, 1);
				if (len == 0)
					continue;
			}
			c->remaining = len;
			if (op == 2)
				c->remaining =
				    len | (1ULL << 63); /* mark: a blob, counted at its end */
			continue;
		}
		uint64_t left = c->remaining & ~(1ULL << 63);
		int blob = (c->remaining >> 63) != 0;
		size_t k = left < n ? (size_t)left : n;
		if (c->text && c->tlen + k < RC_TEXT_MAX) {
			memcpy(c->tbuf + c->tlen, p, k);
			c->tlen += k;
		}
		if (blob && c->hash_got < 32) {
			size_t h = 32 - c->hash_got < k ? 32 - c->hash_got : k;
			memcpy(c->hash + c->hash_got, p, h);
			c->hash_got += h;
		}
		left -= k;
		p += k;
		n -= k;
		c->remaining = left | (blob ? (1ULL << 63) : 0);
		if (left == 0) {
			c->remaining = 0;
			if (c->text)
				rc_on_text(c, c->tbuf, c->tlen);
			else if (blob)
				rc_want_done(c, R.rate > 0 ? rc_find(c->hash) : -1, R.blob_size, 1);
		}
	}
}
static int rc_connect(struct rc_conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&R.target, sizeof(R.target)) < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char req[512];
	int n =
	    snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: "
		     "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ephemeral.v1\r\n\r\n",
		     R.path, inet_ntoa(R.target.sin_addr), ntohs(R.target.sin_port));
	if (write(c->fd, req, (size_t)n) != n)
		return -1;
	/* Blocking until the 101 is in; whatever follows it is frames. */
	char buf[4096];
	size_t got = 0;
	char *end = NULL;
	while (end == NULL && got < sizeof(buf) - 1) {
		ssize_t r = read(c->fd, buf + got, sizeof(buf) - 1 - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (end == NULL || strncmp(buf, "HTTP/1.1 101", 12) != 0)
		return -1;
	c->tbuf = malloc(RC_TEXT_MAX + 1);
	rc_on_bytes(c, (uint8_t *)end + 4, got - (size_t)(end + 4 - buf));
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - R.conns)};
	return epoll_ctl(R.ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Writes the queue as far as the socket takes it. */
static void rc_flush(struct rc_conn *c)
{
	while (c->out_head) {
		struct rc_out *o = c->out_head;
		if (!rc_write(c, o))
			return;
		c->out_head = o->next;
		if (c->out_head == NULL)
			c->out_tail = NULL;
		free(o->buf);
		free(o);
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - R.conns)};
	epoll_ctl(R.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void rc_loop(double until)
{
	static uint8_t scratch[RC_RX_SCRATCH];
	struct epoll_event evs[64];
	while (rc_now() < until) {
		int n = epoll_wait(R.ep, evs, 64, 10);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == RC_PACE_EVENT) {
				rc_rate_due();
				continue;
			}
			struct rc_conn *c = &R.conns[evs[i].data.u32];
			if (evs[i].events & EPOLLOUT)
				rc_flush(c);
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				ssize_t r = read(c->fd, scratch, sizeof(scratch));
				if (r == 0 || (r < 0 && errno != EAGAIN)) {
					fprintf(stderr, "relay-client: connection %d closed\n",
						(int)(c - R.conns));
					exit(1);
				}
				if (r > 0)
					rc_on_bytes(c, scratch, (size_t)r);
			}
		}
	}
}

/* Open loop: paces wants over warm-up and window, then lets the window's wants finish (still
 * pacing, so that the last ones meet the same load) for at most 5 s. */
static void rc_run_rate(void)
{
	R.busy = calloc(R.nblobs, 1);
	R.t_sched = calloc(R.nblobs, sizeof(*R.t_sched));
	R.t_sent = calloc(R.nblobs, sizeof(*R.t_sent));
	R.t_req = calloc(R.nblobs, sizeof(*R.t_req));
	R.pace_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	long per = (long)(1e9 / R.rate);
	struct itimerspec its = {{per / 1000000000, per % 1000000000},
				 {per / 1000000000, per % 1000000000}};
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = RC_PACE_EVENT};
	if (R.pace_fd < 0 || timerfd_settime(R.pace_fd, 0, &its, NULL) < 0 ||
	    epoll_ctl(R.ep, EPOLL_CTL_ADD, R.pace_fd, &ev) < 0) {
		fprintf(stderr, "relay-client: cannot start the pacing timer\n");
		exit(1);
	}
	R.t_start = rc_ns();
	R.win0 = R.t_start + (int64_t)(R.warmup * 1e9);
	R.win1 = R.win0 + (int64_t)(R.duration * 1e9);
	probe.win0 = R.win0;
	probe.win1 = R.win1;
	noise_probe_start(&probe);
	rc_loop((double)R.win0 / 1e9);
	R.measuring = 1;
}

static void rc_report_rate(void)
{
	printf("offered_per_s=%.0f\nskipped=%lld\ndeferred=%lld\nunfinished=%lld\n", R.rate,
	       R.skipped, R.deferred, R.window_open);
	noise_probe_stop(&probe);
	if (R.lat_dump) {
		char path[4096];
		FILE *f = fopen(R.lat_dump, "w");
		for (size_t i = 0; f && i < R.nlat; i++)
			fprintf(f, "%.3f %.0f %.0f %.0f %.0f\n", (double)R.lat_at[i] / 1e6,
				(double)R.lat[i] / 1e3, (double)R.lat_sent[i] / 1e3,
				(double)R.lat_req[i] / 1e3, (double)R.lat_deliver[i] / 1e3);
		if (f)
			fclose(f);
		snprintf(path, sizeof(path), "%s.noise", R.lat_dump);
		f = fopen(path, "w");
		for (size_t i = 0; f && i < probe.n; i++)
			fprintf(f, "%.3f %.0f\n", (double)probe.at[i] / 1e6,
				(double)probe.late[i] / 1e3);
		if (f)
			fclose(f);
	}
	samples_sort(R.lat, R.nlat);
	samples_sort(R.lat_sent, R.nlat);
	samples_sort(R.lat_req, R.nlat);
	samples_sort(R.lat_deliver, R.nlat);
	printf("lat_samples=%zu\n", R.nlat);
	printf("lat_p50_us=%.0f\nlat_p90_us=%.0f\nlat_p99_us=%.0f\nlat_p999_us=%.0f\n"
	       "lat_max_us=%.0f\n",
	       samples_pct(R.lat, R.nlat, 50), samples_pct(R.lat, R.nlat, 90),
	       samples_pct(R.lat, R.nlat, 99), samples_pct(R.lat, R.nlat, 99.9),
	       samples_pct(R.lat, R.nlat, 100));
	printf("sent_p50_us=%.0f\nsent_p90_us=%.0f\nsent_p99_us=%.0f\n",
	       samples_pct(R.lat_sent, R.nlat, 50), samples_pct(R.lat_sent, R.nlat, 90),
	       samples_pct(R.lat_sent, R.nlat, 99));
	printf("want_to_request_p50_us=%.0f\nwant_to_request_p99_us=%.0f\n",
	       samples_pct(R.lat_req, R.nlat, 50), samples_pct(R.lat_req, R.nlat, 99));
	printf("request_to_blob_p50_us=%.0f\nrequest_to_blob_p99_us=%.0f\n",
	       samples_pct(R.lat_deliver, R.nlat, 50), samples_pct(R.lat_deliver, R.nlat, 99));
	samples_sort(probe.late, probe.n);
	printf("noise_p99_us=%.0f\nnoise_max_us=%.0f\n", samples_pct(probe.late, probe.n, 99),
	       samples_pct(probe.late, probe.n, 100));
}

static int rc_opt(int argc, char **argv, int i, const char *name)
{
	return strcmp(argv[i], name) == 0 && i + 1 < argc;
}

/* Whether holder h holds blob b: the --copies holders b, b + 1, ... (mod --holders) do. */
static int rc_holds(int h, size_t b)
{
	size_t first = b % (size_t)R.holders, hh = (size_t)h;
	return (hh + (size_t)R.holders - first) % (size_t)R.holders < (size_t)R.copies;
}

/* Tells the perf stat behind --perf-control FIFO to count ("enable") or stop ("disable"). */
static void rc_perf_control(const char *cmd)
{
	if (R.perf_ctl == NULL)
		return;
	int fd = open(R.perf_ctl, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
		fprintf(stderr, "relay-client: %s: cannot write to %s: %s\n", cmd, R.perf_ctl,
			strerror(errno));
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	const char *target = NULL;
	R.path = "/";
	R.holders = 8;
	R.copies = 1;
	R.requesters = 8;
	R.window = 2;
	R.blob_size = 1 << 20;
	R.nblobs = 64;
	R.warmup = 1;
	R.duration = 5;
	R.max_inflight = 60;
	for (int i = 1; i < argc; i++) {
		if (rc_opt(argc, argv, i, "--target"))
			target = argv[++i];
		else if (rc_opt(argc, argv, i, "--path"))
			R.path = argv[++i];
		else if (rc_opt(argc, argv, i, "--holders"))
			R.holders = atoi(argv[++i]);
		else if (rc_opt(argc, argv, i, "--copies"))
			R.copies = atoi(argv[++i]);
		else if (rc_opt(argc, argv, i, "--requesters"))
			R.requesters = atoi(argv[++i]);
		else if (rc_opt(argc, argv, i, "--window"))
			R.window = atoi(argv[++i]);
		else if (rc_opt(argc, argv, i, "--blob-size"))
			R.blob_size = (size_t)atol(argv[++i]);
		else if (rc_opt(argc, argv, i, "--blobs"))
			R.nblobs = (size_t)atol(argv[++i]);
		else if (rc_opt(argc, argv, i, "--warmup"))
			R.warmup = atof(argv[++i]);
		else if (rc_opt(argc, argv, i, "--duration"))
			R.duration = atof(argv[++i]);
		else if (rc_opt(argc, argv, i, "--rate"))
			R.rate = atof(argv[++i]);
		else if (rc_opt(argc, argv, i, "--max-inflight"))
			R.max_inflight = atoi(argv[++i]);
		else if (rc_opt(argc, argv, i, "--lat-dump"))
			R.lat_dump = argv[++i];
		else if (rc_opt(argc, argv, i, "--perf-control"))
			R.perf_ctl = argv[++i];
		else if (rc_opt(argc, argv, i, "--watch") && R.nwatch < RC_MAX_WATCH) {
			const char *eq = strchr(argv[++i], '=');
			if (eq == NULL || eq - argv[i] >= 31)
				continue;
			memcpy(R.watch[R.nwatch].name, argv[i], (size_t)(eq - argv[i]));
			R.watch[R.nwatch++].pid = atoi(eq + 1);
		}
	}
	char host[64];
	int port;
	if (target == NULL || sscanf(target, "%63[^:]:%d", host, &port) != 2 ||
	    inet_pton(AF_INET, host, &R.target.sin_addr) != 1 || R.holders < 1 || R.copies < 1 ||
	    R.copies > R.holders || R.requesters < 1 || R.window < 1 || R.nblobs < 1 ||
	    R.rate < 0 || R.max_inflight < 1) {
		fprintf(
		    stderr,
		    "usage: relay-client --target IP:PORT [--path /ws] [--holders N] [--copies K] "
		    "[--requesters N] [--window K] [--blob-size B] [--blobs N] "
		    "[--warmup S] [--duration S] [--watch NAME=PID]... [--perf-control FIFO]\n"
		    "       open loop: --rate WANTS_PER_S [--max-inflight N] "
		    "[--lat-dump FILE]\n");
		return 2;
	}
	R.target.sin_family = AF_INET;
	R.target.sin_port = htons((uint16_t)port);

	/* Blobs of this run only (a salt from the clock), hashed once. */
	R.blobs = malloc(R.blob_size * R.nblobs);
	R.hash = malloc(32 * R.nblobs);
	uint64_t x = (uint64_t)(rc_now() * 1e9) | 1;
	for (size_t i = 0; i < R.blob_size * R.nblobs / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(R.blobs + 8 * i, &x, 8);
	}
	R.keys = malloc(R.nblobs * sizeof(*R.keys));
	for (size_t i = 0; i < R.nblobs; i++) {
		SHA256(R.blobs + i * R.blob_size, R.blob_size, R.hash[i]);
		R.keys[i] = (struct rc_key){rc_prefix(R.hash[i]), i};
	}
	qsort(R.keys, R.nblobs, sizeof(*R.keys), rc_key_cmp);

	R.ep = epoll_create1(0);
	R.nconns = R.holders + R.requesters;
	R.conns = calloc((size_t)R.nconns, sizeof(*R.conns));
	for (int i = 0; i < R.nconns; i++) {
		R.conns[i].holder = i < R.holders;
		R.conns[i].rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		if (rc_connect(&R.conns[i]) < 0) {
			fprintf(stderr, "relay-client: cannot connect to %s\n", target);
			return 1;
		}
	}
	/* Holders announce theirs (lists of 512), then wait for a count of each. Blob b is held by
	 * the --copies holders b, b + 1, ... (mod --holders). */
	char *list = malloc(64 + 67 * 512);
	for (int h = 0; h < R.holders; h++) {
		size_t n = 0, len = 0, held = 0, last = R.nblobs;
		for (size_t b = 0; b < R.nblobs; b++)
			if (rc_holds(h, b))
				last = b;
		for (size_t b = 0; b < R.nblobs; b++) {
			if (!rc_holds(h, b))
				continue;
			len += (size_t)sprintf(list + len,
					       n ? ",\"" : "{\"type\":\"have\",\"hashes\":[\"");
			rc_hex(R.hash[b], list + len);
			len += 64;
			list[len++] = '"';
			held++;
			if (++n == 512 || b == last) {
				len += (size_t)sprintf(list + len, "]}");
				rc_send_text(&R.conns[h], list, len);
				n = len = 0;
			}
		}
		R.conns[h].held = (int)held;
	}
	double deadline = rc_now() + 20;
	for (int h = 0; h < R.holders; h++)
		while (R.conns[h].counts < R.conns[h].held && rc_now() < deadline)
			rc_loop(rc_now() + 0.01);
	if (R.rate > 0) {
		rc_run_rate();
	} else {
		for (int r = R.holders; r < R.nconns; r++)
			for (int k = 0; k < R.window; k++)
				rc_want_next(&R.conns[r]);
		rc_loop(rc_now() + R.warmup);
		R.measuring = 1;
	}
	rc_perf_control("enable\n");
	double t0 = rc_now(), self0 = rc_cpu_us(getpid()), selfwait0 = 0;
	double selfsw0 = rc_ctxsw(getpid(), &selfwait0);
	for (int w = 0; w < R.nwatch; w++) {
		R.watch[w].cpu0 = rc_cpu_us(R.watch[w].pid);
		R.watch[w].sw0 = rc_ctxsw(R.watch[w].pid, &R.watch[w].wait0);
	}
	rc_loop(t0 + R.duration);
	rc_perf_control("disable\n");
	double secs = rc_now() - t0;
	R.measuring = 0;
	double self1 = rc_cpu_us(getpid()), selfwait1 = 0;
	double selfsw1 = rc_ctxsw(getpid(), &selfwait1);
	double cpu1[RC_MAX_WATCH], sw1[RC_MAX_WATCH], wait1[RC_MAX_WATCH];
	for (int w = 0; w < R.nwatch; w++) {
		cpu1[w] = rc_cpu_us(R.watch[w].pid);
		wait1[w] = 0;
		sw1[w] = rc_ctxsw(R.watch[w].pid, &wait1[w]);
	}
	for (double end = rc_now() + 5; R.rate > 0 && R.window_open > 0 && rc_now() < end;)
		rc_loop(rc_now() + 0.01);
	long long done = R.done > 0 ? R.done : 1;
	printf("wants=%lld\n", R.done);
	printf("wants_per_s=%.0f\n", (double)R.done / secs);
	printf("mb_per_s=%.1f\n", (double)R.bytes / secs / 1e6);
	printf("errors=%lld\n", R.errors);
	for (int w = 0; w < R.nwatch; w++)
		printf("cpu_%s_us_per_want=%.1f\n", R.watch[w].name,
		       (cpu1[w] - R.watch[w].cpu0) / (double)done);
	printf("cpu_client_us_per_want=%.1f\n", (self1 - self0) / (double)done);
	for (int w = 0; w < R.nwatch; w++)
		printf("ctxsw_%s_per_want=%.2f\n", R.watch[w].name,
		       (sw1[w] - R.watch[w].sw0) / (double)done);
	printf("ctxsw_client_per_want=%.2f\n", (selfsw1 - selfsw0) / (double)done);
	for (int w = 0; w < R.nwatch; w++)
		printf("rundelay_%s_us_per_want=%.1f\n", R.watch[w].name,
		       (wait1[w] - R.watch[w].wait0) / (double)done);
	printf("rundelay_client_us_per_want=%.1f\n", (selfwait1 - selfwait0) / (double)done);
	if (R.rate > 0)
		rc_report_rate();
	return 0;
}
