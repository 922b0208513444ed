/*
 * ephemeral-bench — load client for Ephemeral's WebSocket gateways (docs/BENCHMARKS.md).
 *
 * One process, one libwebsockets event loop, many client connections speaking ephemeral.v1
 * straight to the gateways. Three modes:
 *
 *   relay  closed loop: H holders hold B distinct random blobs of one size (blob i is held by
 *          holder i % H); M requesters keep K wants each in flight. A hash is never wanted twice
 *          at once (the hub would coalesce the wants into one transfer), so every completed want
 *          is one transfer from a holder. Reports relayed MB/s, answered wants/s, latency.
 *   rate   open loop: wants are issued at a fixed rate (a timerfd paces them, not the answers),
 *          spread round-robin over the requesters; latency is measured from each want's
 *          intended start, so a stall anywhere (client included) shows in the percentiles.
 *   idle   opens C WebSockets to one gateway, waits for every welcome, and reads the gateway's
 *          VmRSS (/proc/PID/status) at checkpoints: memory per idle connection.
 *
 * Every byte sent and received goes through libwebsockets' client API: lws frames and masks what
 * lws_write() is given, and hands back payload in LWS_CALLBACK_CLIENT_RECEIVE, reassembled here
 * until lws_is_final_fragment(). Text messages are built and parsed by the project's own
 * common/wsmsg.c (jansson), hashes converted and computed by common/util.c (OpenSSL), as in the
 * gateway and the terminal client: the client speaks exactly what they speak. Requesters never send
 * have, so they are never asked for a blob; every received blob is compared byte for byte with what
 * its holder sent. A probe thread measures how late the machine lets a 1 ms sleep wake up. Results
 * are printed as key=value lines on standard output (scripts/bench.sh reads them); progress and
 * errors go to standard error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <math.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "pending.h"
#include "samples.h"
#include "util.h"
#include "wsmsg.h"

#define MAX_WATCH    8
#define MAX_CHECKPTS 16
#define PROTO_NAME   "ephemeral.v1"
#define TICK_NS	     (5 * 1000000L) /* phase checks */

enum mode { MODE_RELAY, MODE_RATE, MODE_IDLE };
enum role { ROLE_HOLDER, ROLE_REQUESTER, ROLE_IDLE };
enum phase { PH_CONNECT, PH_ANNOUNCE, PH_RUN, PH_DRAIN, PH_DONE };

/* An outgoing item: a text message (owned), a want (built when written) or a blob frame. */
enum item_kind { IT_TEXT, IT_WANT, IT_BLOB };
struct item {
	enum item_kind kind;
	uint32_t blob;
	char *text;
	size_t len;
};

struct queue {
	struct item *v;
	size_t head, len, cap;
};

struct conn {
	struct lws *wsi;
	int idx;
	enum role role;
	int open, welcomed, closed;
	/* text reassembly */
	uint8_t *trx;
	size_t trx_len, trx_cap;
	/* binary reception (requesters) */
	int rx_binary;
	size_t rx_off;
	uint8_t rx_head[HASH_LEN];
	int64_t rx_blob; /* -1: not identified yet or unknown */
	int rx_bad;
	/* sending */
	struct queue q;
	size_t tx_off; /* bytes of the head blob message already written */
	/* holders: hashes whose first count arrived (announce barrier) */
	size_t held, counted;
	/* requesters: wants in flight */
	int inflight;
};

struct watch {
	char name[32];
	int pid;
	double cpu0, cpu1;   /* all threads */
	double main0, main1; /* the main thread: the event loop, which cannot use two cores */
};

struct bench {
	const char *path; /* the upgrade's path: /ws through a web server */
	enum mode mode;
	/* options */
	char holder_host[64], want_host[64];
	int holder_port, want_port;
	int holders, requesters, window;
	size_t blob_size, blobs;
	double rate;
	double warmup_s, duration_s, drain_s;
	int connections, checkpoint_every, idle_pid;
	int extra_idle;	 /* relay and rate: idle connections held open on the holders' gateway */
	size_t tx_chunk; /* a blob message is written in fragments of this size; 0: one frame */
	size_t rx_buf;
	int check;
	const char *operator_ep;
	const char *lat_dump; /* file for every latency sample */
	struct watch watch[MAX_WATCH];
	int nwatch;
	/* blobs: blob i is pool[i * stride, i * stride + blob_size) */
	uint8_t *pool;
	size_t stride;
	uint8_t (*hash)[HASH_LEN];
	struct wsmsg msg; /* the last text message received, parsed */
	uint8_t *counted; /* holder heard the first count for blob i */
	int32_t *owner;	  /* requester with the blob in flight, or -1 */
	int64_t *t_sched; /* intended start (rate) or enqueue time (relay), ns */
	int64_t *t_sent;  /* when the want left the client, ns */
	uint64_t *lut_key;
	uint32_t *lut_val;
	size_t lut_mask;
	size_t cursor;
	/* connections */
	struct conn *conns;
	int nconns, nopen, nwelcomed, nconnecting, next_to_connect;
	/* loop */
	struct lws_context *ctx;
	struct lws_vhost *vhost;
	int tick_fd, pace_fd; /* timerfds: phases, and the open-loop pacing */
	enum phase phase;
	int64_t t_start, t_win0, t_win1, t_phase;
	uint64_t issued, completed, completed_bytes, errors, not_found, mismatches, protocol_errors;
	uint64_t c_win0, b_win0, c_win1, b_win1, e_win0, e_win1;
	uint64_t unfinished; /* wants still open (or waiting in the client) when the run ended */
	uint64_t rate_skipped, rate_offered, rate_deferred;
	int max_inflight; /* per requester: below the gateway's gateway.max_wants */
	/* open loop: wants due while every requester had max_inflight open (intended starts) */
	struct pending pend;
	/* latency samples (ns), kept for wants whose reference time falls in the window */
	int64_t *lat, *lat_sent, *lat_at;
	size_t nlat, caplat;
	/* cpu */
	double self_cpu0, self_cpu1;
	json_t *hub0, *hub1;
	/* idle mode */
	long rss0, rss_at[MAX_CHECKPTS];
	int conns_at[MAX_CHECKPTS], ncheck;
	long hub_rss0, hub_rss_at[MAX_CHECKPTS];
	int hub_pid;
	int next_checkpoint;
	int64_t settle_until;
	/* scratch for writes: LWS_PRE of headroom, then tx_cap bytes (lws masks in place) */
	uint8_t *tx_scratch;
	size_t tx_cap;
	int failed;
	char fail_reason[256];
	volatile sig_atomic_t interrupted;
};

static struct bench B;

static struct noise_probe probe; /* (samples.h) */

/* --------------------------------------------------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	if (B.failed)
		return;
	B.failed = 1;
	va_start(ap, fmt);
	vsnprintf(B.fail_reason, sizeof(B.fail_reason), fmt, ap);
	va_end(ap);
	logf_("FAILED: %s", B.fail_reason);
	B.phase = PH_DONE;
	if (B.ctx)
		lws_cancel_service(B.ctx);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL) {
		fprintf(stderr, "bench: out of memory\n");
		exit(2);
	}
	return p;
}

static const uint8_t *blob_data(size_t i)
{
	return B.pool + i * B.stride;
}

/* hash -> blob index; the first 8 bytes of a SHA-256 are key enough for a few million blobs. */
static uint64_t lut_hkey(const uint8_t *h)
{
	uint64_t k;
	memcpy(&k, h, 8);
	return k | 1; /* 0 marks an empty slot */
}

static void lut_build(void)
{
	size_t cap = 16;
	while (cap < B.blobs * 2)
		cap *= 2;
	B.lut_key = xcalloc(cap, sizeof(*B.lut_key));
	B.lut_val = xcalloc(cap, sizeof(*B.lut_val));
	B.lut_mask = cap - 1;
	for (size_t i = 0; i < B.blobs; i++) {
		uint64_t k = lut_hkey(B.hash[i]);
		size_t s = (size_t)(k * 0x9E3779B97F4A7C15ull >> 17) & B.lut_mask;
		while (B.lut_key[s])
			s = (s + 1) & B.lut_mask;
		B.lut_key[s] = k;
		B.lut_val[s] = (uint32_t)i;
	}
}

static int64_t lut_find(const uint8_t *h)
{
	uint64_t k = lut_hkey(h);
	size_t s = (size_t)(k * 0x9E3779B97F4A7C15ull >> 17) & B.lut_mask;
	for (; B.lut_key[s]; s = (s + 1) & B.lut_mask)
		if (B.lut_key[s] == k && memcmp(B.hash[B.lut_val[s]], h, HASH_LEN) == 0)
			return B.lut_val[s];
	return -1;
}

static void blobs_make(void)
{
	/* Blob i is a window of one random pool, 64 bytes further than blob i - 1: every blob is
	 * distinct random content, and many blobs cost little memory. */
	B.stride = 64;
	size_t pool = B.blob_size + B.stride * B.blobs;
	B.pool = xcalloc(pool, 1);
	for (size_t off = 0; off < pool; off += 1 << 20) {
		size_t n = pool - off < (1u << 20) ? pool - off : 1u << 20;
		if (RAND_bytes(B.pool + off, (int)n) != 1) {
			fprintf(stderr, "bench: RAND_bytes failed\n");
			exit(2);
		}
	}
	B.hash = xcalloc(B.blobs, HASH_LEN);
	for (size_t i = 0; i < B.blobs; i++) {
		if (hash_compute(blob_data(i), B.blob_size, B.hash[i]) < 0) {
			fprintf(stderr, "bench: SHA-256 failed\n");
			exit(2);
		}
	}
	lut_build();
	B.counted = xcalloc(B.blobs, 1);
	B.owner = xcalloc(B.blobs, sizeof(*B.owner));
	B.t_sched = xcalloc(B.blobs, sizeof(*B.t_sched));
	B.t_sent = xcalloc(B.blobs, sizeof(*B.t_sent));
	for (size_t i = 0; i < B.blobs; i++)
		B.owner[i] = -1;
}

/* --------------------------------------------------------------------------------------------- */
/* Queues */

static void q_push(struct queue *q, struct item it)
{
	if (q->len == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 16;
		struct item *n = xcalloc(ncap, sizeof(*n));
		for (size_t i = 0; i < q->len; i++)
			n[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = n;
		q->head = 0;
		q->cap = ncap;
	}
	q->v[(q->head + q->len) % q->cap] = it;
	q->len++;
}

static struct item *q_front(struct queue *q)
{
	return q->len ? &q->v[q->head] : NULL;
}

static void q_pop(struct queue *q)
{
	q->head = (q->head + 1) % q->cap;
	q->len--;
}

static void conn_want_write(struct conn *c)
{
	if (c->wsi && c->open)
		lws_callback_on_writable(c->wsi);
}

/* Queues a text message built by common/wsmsg.c (NULL: out of memory) and asks to write. */
static void queue_text(struct conn *c, char *text)
{
	if (text == NULL) {
		fail("out of memory");
		return;
	}
	q_push(&c->q, (struct item){.kind = IT_TEXT, .text = text, .len = strlen(text)});
	conn_want_write(c);
}

/* --------------------------------------------------------------------------------------------- */
/* CPU, memory and hub figures */

static double self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of a process (tid 0) or of one of its threads. */
static double proc_cpu(int pid, int tid)
{
	char path[64], buf[1024];
	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	/* After ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime(14) stime(15). */
	unsigned long long ut = 0, st = 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Asks the hub's operator endpoint for its stats (one REQ round trip, 2 s at most). */
static json_t *hub_stats(void)
{
	if (B.operator_ep == NULL)
		return NULL;
	void *zctx = zmq_ctx_new();
	void *s = zmq_socket(zctx, ZMQ_REQ);
	int zero = 0, to = 2000;
	json_t *out = NULL;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &to, sizeof(to));
	zmq_setsockopt(s, ZMQ_SNDTIMEO, &to, sizeof(to));
	if (zmq_connect(s, B.operator_ep) == 0 && zmq_send(s, "stats", 5, 0) == 5) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, 0) >= 0)
			out = json_loadb(zmq_msg_data(&m), zmq_msg_size(&m), 0, NULL);
		zmq_msg_close(&m);
	}
	zmq_close(s);
	zmq_ctx_term(zctx);
	return out;
}

static long long hub_delta(const char *key)
{
	if (B.hub0 == NULL || B.hub1 == NULL)
		return -1;
	json_t *a = json_object_get(B.hub0, key), *b = json_object_get(B.hub1, key);
	if (!json_is_integer(a) || !json_is_integer(b))
		return -1;
	return (long long)(json_integer_value(b) - json_integer_value(a));
}

static void window_mark(int end)
{
	int64_t now = now_ns();
	if (!end) {
		B.t_win0 = now;
		B.c_win0 = B.completed;
		B.b_win0 = B.completed_bytes;
		B.e_win0 = B.errors;
		B.self_cpu0 = self_cpu();
		for (int i = 0; i < B.nwatch; i++) {
			B.watch[i].cpu0 = proc_cpu(B.watch[i].pid, 0);
			B.watch[i].main0 = proc_cpu(B.watch[i].pid, B.watch[i].pid);
		}
		B.hub0 = hub_stats();
		/* The hub round trip above must not eat into the window. */
		B.t_win0 = now_ns();
		probe.win0 = B.t_win0;
	} else {
		B.t_win1 = now;
		probe.win1 = now;
		B.c_win1 = B.completed;
		B.b_win1 = B.completed_bytes;
		B.e_win1 = B.errors;
		B.self_cpu1 = self_cpu();
		for (int i = 0; i < B.nwatch; i++) {
			B.watch[i].cpu1 = proc_cpu(B.watch[i].pid, 0);
			B.watch[i].main1 = proc_cpu(B.watch[i].pid, B.watch[i].pid);
		}
		B.hub1 = hub_stats();
	}
}

static int in_window(int64_t t)
{
	return B.t_win0 && t >= B.t_win0 && (B.t_win1 == 0 || t < B.t_win1);
}

/* --------------------------------------------------------------------------------------------- */
/* Wants */

static int next_free_blob(size_t *out)
{
	for (size_t tries = 0; tries < B.blobs; tries++) {
		size_t i = B.cursor;
		B.cursor = (B.cursor + 1) % B.blobs;
		if (B.owner[i] < 0) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

static int issue_want(struct conn *c, int64_t t_ref)
{
	size_t i;
	if (next_free_blob(&i) < 0)
		return -1;
	B.owner[i] = c->idx;
	B.t_sched[i] = t_ref;
	B.t_sent[i] = 0;
	c->inflight++;
	B.issued++;
	q_push(&c->q, (struct item){.kind = IT_WANT, .blob = (uint32_t)i});
	conn_want_write(c);
	return 0;
}

static void fill_window(struct conn *c)
{
	if (B.mode != MODE_RELAY || B.phase != PH_RUN || c->role != ROLE_REQUESTER)
		return;
	while (c->inflight < B.window)
		if (issue_want(c, now_ns()) < 0)
			break;
}

static void record_latency(size_t i, int64_t now)
{
	int64_t ref = B.t_sched[i];
	if (!in_window(B.mode == MODE_RATE ? ref : now))
		return;
	if (B.nlat == B.caplat) {
		B.caplat = B.caplat ? B.caplat * 2 : 65536;
		B.lat = realloc(B.lat, B.caplat * sizeof(*B.lat));
		B.lat_sent = realloc(B.lat_sent, B.caplat * sizeof(*B.lat_sent));
		B.lat_at = realloc(B.lat_at, B.caplat * sizeof(*B.lat_at));
		if (B.lat == NULL || B.lat_sent == NULL || B.lat_at == NULL) {
			fprintf(stderr, "bench: out of memory\n");
			exit(2);
		}
	}
	B.lat[B.nlat] = now - ref;
	B.lat_at[B.nlat] = ref - B.t_win0;
	B.lat_sent[B.nlat] = B.t_sent[i] ? now - B.t_sent[i] : now - ref;
	B.nlat++;
}

static void rate_issue(int64_t t_ref);

static void want_done(struct conn *c, size_t i, int ok)
{
	int64_t now = now_ns();
	if (ok) {
		B.completed++;
		B.completed_bytes += B.blob_size;
		record_latency(i, now);
	}
	B.owner[i] = -1;
	c->inflight--;
	fill_window(c);
	int64_t t_ref;
	if (B.mode == MODE_RATE && (B.phase == PH_RUN || B.phase == PH_DRAIN) &&
	    pending_pop(&B.pend, &t_ref))
		rate_issue(t_ref);
}

/* --------------------------------------------------------------------------------------------- */
/* Receiving */

static void on_text(struct conn *c, const char *text, size_t len)
{
	struct wsmsg *m = &B.msg;
	struct wsmsg_error err;
	if (wsmsg_parse_server(text, len, m, &err) < 0) {
		B.protocol_errors++;
		logf_("conn %d: unparsable text from gateway: %s", c->idx, err.message);
		return;
	}
	int64_t bi = m->has_hash && B.blobs ? lut_find(m->hash) : -1;

	switch (m->type) {
	case WSMSG_WELCOME:
		if (!c->welcomed) {
			c->welcomed = 1;
			B.nwelcomed++;
		}
		if (m->number < B.blob_size)
			fail("the gateway's max_blob %llu is below the blob size %zu",
			     (unsigned long long)m->number, B.blob_size);
		break;
	case WSMSG_REQUEST:
		if (c->role == ROLE_HOLDER && bi >= 0 &&
		    (size_t)bi % (size_t)B.holders == (size_t)c->idx) {
			q_push(&c->q, (struct item){.kind = IT_BLOB, .blob = (uint32_t)bi});
			conn_want_write(c);
		} else {
			/* Not ours: say so, as a well-behaved client would. */
			B.protocol_errors++;
			queue_text(c, wsmsg_client_hash(WSMSG_DECLINE, m->hash));
		}
		break;
	case WSMSG_COUNT:
		/* The first count of each held hash tells the holder the hub has its have. */
		if (c->role == ROLE_HOLDER && bi >= 0 && !B.counted[bi]) {
			B.counted[bi] = 1;
			c->counted++;
		}
		break;
	case WSMSG_ERROR:
		B.errors++;
		if (strcmp(m->code, "not_found") == 0)
			B.not_found++;
		if (B.errors <= 5)
			logf_("conn %d: error %s: %s", c->idx, m->code, m->message);
		if (c->role == ROLE_REQUESTER && bi >= 0 && B.owner[bi] == c->idx)
			want_done(c, (size_t)bi, 0);
		break;
	default:
		B.protocol_errors++;
	}
}

static void on_binary_part(struct conn *c, const uint8_t *in, size_t len, int final)
{
	/* The first 32 bytes name the blob; the rest is compared with what the holder sent. */
	if (c->rx_off < HASH_LEN) {
		size_t k = HASH_LEN - c->rx_off < len ? HASH_LEN - c->rx_off : len;
		memcpy(c->rx_head + c->rx_off, in, k);
		c->rx_off += k;
		in += k;
		len -= k;
		if (c->rx_off == HASH_LEN) {
			c->rx_blob = lut_find(c->rx_head);
			if (c->rx_blob < 0 || B.owner[c->rx_blob] != c->idx) {
				B.protocol_errors++;
				c->rx_bad = 1;
				logf_("conn %d: a blob it did not want (or did not want now)",
				      c->idx);
			}
		}
	}
	if (len && !c->rx_bad && c->rx_blob >= 0) {
		size_t off = c->rx_off - HASH_LEN;
		if (off + len > B.blob_size ||
		    (B.check && memcmp(blob_data((size_t)c->rx_blob) + off, in, len) != 0)) {
			c->rx_bad = 1;
			B.mismatches++;
			fail("conn %d: received bytes differ from the blob sent", c->idx);
		}
	}
	c->rx_off += len;
	if (!final)
		return;
	if (c->rx_off < HASH_LEN)
		B.protocol_errors++; /* a binary frame too short to name a blob */
	if (!c->rx_bad && c->rx_blob >= 0) {
		if (c->rx_off != HASH_LEN + B.blob_size) {
			B.mismatches++;
			fail("conn %d: received %zu bytes for a %zu-byte blob", c->idx,
			     c->rx_off - HASH_LEN, B.blob_size);
		} else {
			want_done(c, (size_t)c->rx_blob, 1);
		}
	}
	c->rx_off = 0;
	c->rx_blob = -1;
	c->rx_bad = 0;
}

static void on_receive(struct conn *c, struct lws *wsi, const void *in, size_t len)
{
	if (lws_is_first_fragment(wsi)) {
		c->rx_binary = lws_frame_is_binary(wsi);
		c->trx_len = 0;
		c->rx_off = 0;
		c->rx_blob = -1;
		c->rx_bad = 0;
	}
	int final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
	if (c->rx_binary) {
		on_binary_part(c, in, len, final);
		return;
	}
	if (c->trx_len + len + lws_remaining_packet_payload(wsi) > WSMSG_MAX_TEXT) {
		B.protocol_errors++;
		fail("conn %d: a text message from the gateway over 64 KiB", c->idx);
		return;
	}
	if (buf_append(&c->trx, &c->trx_len, &c->trx_cap, in, len,
		       lws_remaining_packet_payload(wsi), WSMSG_MAX_TEXT) < 0) {
		fprintf(stderr, "bench: out of memory\n");
		exit(2);
	}
	if (final) {
		on_text(c, (const char *)c->trx, c->trx_len);
		c->trx_len = 0;
	}
}

/* --------------------------------------------------------------------------------------------- */
/* Sending: one item after another while the socket takes them. */

/* Sizes one blob frame's payload; copies bytes [off, off + n) of [hash][blob] to dst. */
static void blob_copy(uint32_t blob, size_t off, uint8_t *dst, size_t n)
{
	size_t k = 0;
	if (off < HASH_LEN) {
		k = HASH_LEN - off < n ? HASH_LEN - off : n;
		memcpy(dst, B.hash[blob] + off, k);
	}
	if (n > k)
		memcpy(dst + k, blob_data(blob) + (off + k - HASH_LEN), n - k);
}

/* Writes queued messages while lws's last write went out whole: one lws_write() per message (or
 * per fragment of a blob), lws adds the frame header in the LWS_PRE headroom and masks the
 * payload in place. lws_write() takes everything it is given and keeps what the socket refused;
 * lws_partial_buffered() says so without a system call (lws_send_pipe_choked() would poll()), and
 * lws sends the rest before the next LWS_CALLBACK_CLIENT_WRITEABLE. */
static int conn_writable(struct conn *c)
{
	uint8_t *p = B.tx_scratch + LWS_PRE;
	struct item *it;
	while ((it = q_front(&c->q)) != NULL) {
		if (it->kind == IT_TEXT) {
			if (it->len > B.tx_cap) {
				fail("conn %d: a %zu-byte message does not fit the write buffer",
				     c->idx, it->len);
				return -1;
			}
			memcpy(p, it->text, it->len);
			if (lws_write(c->wsi, p, it->len, LWS_WRITE_TEXT) < (int)it->len)
				return -1;
			free(it->text);
			q_pop(&c->q);
		} else if (it->kind == IT_WANT) {
			char *want = wsmsg_client_hash(WSMSG_WANT, B.hash[it->blob]);
			size_t n = want ? strlen(want) : 0;
			if (want == NULL || n > B.tx_cap) {
				free(want);
				fail("conn %d: cannot build a want", c->idx);
				return -1;
			}
			memcpy(p, want, n);
			free(want);
			B.t_sent[it->blob] = now_ns();
			if (lws_write(c->wsi, p, n, LWS_WRITE_TEXT) < (int)n)
				return -1;
			q_pop(&c->q);
		} else {
			/* [hash][blob], one frame as browsers send it unless --tx-chunk asks for
			 * fragments; lws masks in place, so the bytes are copied to the scratch. */
			size_t total = HASH_LEN + B.blob_size, off = c->tx_off;
			size_t n = total - off < B.tx_cap ? total - off : B.tx_cap;
			blob_copy(it->blob, off, p, n);
			int flags = off == 0 ? LWS_WRITE_BINARY : LWS_WRITE_CONTINUATION;
			if (off + n < total)
				flags |= LWS_WRITE_NO_FIN;
			if (lws_write(c->wsi, p, n, (enum lws_write_protocol)flags) < (int)n)
				return -1;
			c->tx_off += n;
			if (c->tx_off == total) {
				c->tx_off = 0;
				q_pop(&c->q);
			}
		}
		if (lws_partial_buffered(c->wsi))
			break;
	}
	if (c->q.len)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* --------------------------------------------------------------------------------------------- */
/* Connections */

static void conn_start(struct conn *c)
{
	struct lws_client_connect_info ci;
	int holder = c->role == ROLE_HOLDER;
	const char *host = holder ? B.holder_host : B.want_host;
	int port = holder ? B.holder_port : B.want_port;
	char hosthdr[96];
	snprintf(hosthdr, sizeof(hosthdr), "%s:%d", host, port);
	memset(&ci, 0, sizeof(ci));
	ci.context = B.ctx;
	ci.address = host;
	ci.port = port;
	ci.path = B.path;
	ci.host = hosthdr;
	ci.origin = hosthdr;
	ci.protocol = PROTO_NAME;
	ci.ietf_version_or_minus_one = -1;
	ci.userdata = c;
	ci.pwsi = &c->wsi;
	/* Idle connections bind to a local protocol with a small receive buffer: the server still
	 * sees ephemeral.v1 offered. */
	if (c->role == ROLE_IDLE)
		ci.local_protocol_name = "bench-idle";
	B.nconnecting++;
	if (lws_client_connect_via_info(&ci) == NULL) {
		B.nconnecting--;
		fail("cannot start a connection to %s", hosthdr);
	}
}

static void conn_open_more(void)
{
	/* At most 256 handshakes at once: a burst of thousands would overflow the listen queue
	 * and turn into one-second SYN retries. */
	int limit = B.mode == MODE_IDLE ? B.next_checkpoint : B.nconns;
	while (B.next_to_connect < limit && B.nconnecting < 256 && !B.failed)
		conn_start(&B.conns[B.next_to_connect++]);
}

static int bench_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			  size_t len)
{
	struct conn *c = user; /* connect info's userdata: there is no per-session allocation */
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		B.nconnecting--;
		fail("connection failed: %s", in ? (const char *)in : "(no reason)");
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->wsi = wsi;
		c->open = 1;
		B.nopen++;
		B.nconnecting--;
		conn_open_more();
		if (c->q.len)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		on_receive(c, wsi, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (B.phase == PH_DONE)
			return 0;
		return conn_writable(c);
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c && c->open) {
			c->open = 0;
			c->closed = 1;
			B.nopen--;
			if (B.phase != PH_DONE)
				fail("conn %d closed by the gateway", c->idx);
		}
		return 0;
	default:
		return 0;
	}
}

/* --------------------------------------------------------------------------------------------- */
/* Open-loop pacing: a timerfd ticks at the want rate; each tick issues what is due by now. */

/* Issues one open-loop want with its intended start, on the next requester with room (each
 * keeps fewer than max_inflight open, under the gateway's cap); when none has room the want
 * waits in the client, and the wait counts in its latency, as a real client's would. */
static void rate_issue(int64_t t_ref)
{
	static int rr;
	for (int k = 0; k < B.requesters; k++) {
		struct conn *c = &B.conns[B.holders + rr];
		rr = (rr + 1) % B.requesters;
		if (c->inflight >= B.max_inflight)
			continue;
		if (issue_want(c, t_ref) < 0)
			B.rate_skipped++; /* every blob in flight: the system is not keeping up */
		return;
	}
	B.rate_deferred++;
	pending_push(&B.pend, t_ref);
}

static void rate_issue_due(void)
{
	int64_t now = now_ns();
	double per = 1e9 / B.rate;
	uint64_t due = (uint64_t)((double)(now - B.t_start) / per) + 1;
	while (B.rate_offered < due) {
		int64_t t_ref = B.t_start + (int64_t)((double)B.rate_offered * per);
		B.rate_offered++;
		rate_issue(t_ref);
	}
}

static void tick(void);

static int timer_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			  size_t len)
{
	(void)user;
	(void)in;
	(void)len;
	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	int fd = (int)lws_get_socket_fd(wsi);
	uint64_t expirations;
	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -1;
	if (fd == B.pace_fd) {
		if (B.phase == PH_RUN)
			rate_issue_due();
	} else {
		tick();
	}
	return 0;
}

/* lws 4.1 rounds a sub-millisecond wait for its own timers down to a zero poll timeout, which
 * spins; periodic timerfds in the same poll set wake the loop precisely and cost nothing. */
static int timer_start(long interval_ns)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return -1;
	struct itimerspec its = {
	    .it_interval = {interval_ns / 1000000000, interval_ns % 1000000000},
	    .it_value = {interval_ns / 1000000000, interval_ns % 1000000000}};
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		close(fd);
		return -1;
	}
	lws_sock_file_fd_type u;
	u.filefd = (lws_filefd_type)fd;
	if (lws_adopt_descriptor_vhost(B.vhost, LWS_ADOPT_RAW_FILE_DESC, u, "bench-timer", NULL) ==
	    NULL) {
		close(fd);
		return -1;
	}
	return fd;
}

/* --------------------------------------------------------------------------------------------- */
/* Phases, driven by a 1 ms tick */

static void announce(void)
{
	/* Each holder says have for its blobs, at most WSMSG_MAX_HASHES a message. */
	static uint8_t list[WSMSG_MAX_HASHES][HASH_LEN];
	for (int h = 0; h < B.holders; h++) {
		struct conn *c = &B.conns[h];
		size_t n = 0;
		for (size_t i = (size_t)h; i < B.blobs; i += (size_t)B.holders) {
			memcpy(list[n++], B.hash[i], HASH_LEN);
			c->held++;
			if (n == WSMSG_MAX_HASHES || i + (size_t)B.holders >= B.blobs) {
				queue_text(c, wsmsg_client_hashes(
						  WSMSG_HAVE, (const uint8_t(*)[HASH_LEN])list, n));
				n = 0;
			}
		}
		conn_want_write(c);
	}
}

static int holders_ready(void)
{
	for (int h = 0; h < B.holders; h++)
		if (B.conns[h].counted < B.conns[h].held)
			return 0;
	return 1;
}

static void idle_checkpoint(void)
{
	int k = B.ncheck;
	B.conns_at[k] = B.nwelcomed;
	B.rss_at[k] = proc_rss_kb(B.idle_pid);
	B.hub_rss_at[k] = B.hub_pid ? proc_rss_kb(B.hub_pid) : -1;
	B.ncheck++;
	logf_("%d idle connections: gateway VmRSS %ld kB", B.nwelcomed, B.rss_at[k]);
}

static void tick(void)
{
	int64_t now = now_ns();
	if (B.interrupted)
		fail("interrupted");
	switch (B.phase) {
	case PH_CONNECT:
		if (B.mode == MODE_IDLE) {
			/* Each checkpoint: stop opening, let the gateway settle, read its RSS. */
			int target = B.next_checkpoint;
			if (B.nwelcomed >= target && B.nconnecting == 0) {
				if (B.settle_until == 0)
					B.settle_until = now + 500 * 1000000LL;
				if (now >= B.settle_until) {
					B.settle_until = 0;
					idle_checkpoint();
					if (target >= B.nconns) {
						B.phase = PH_DONE;
						break;
					}
					B.next_checkpoint += B.checkpoint_every;
					if (B.next_checkpoint > B.nconns)
						B.next_checkpoint = B.nconns;
				}
			} else {
				conn_open_more();
			}
		} else if (B.nwelcomed == B.nconns) {
			announce();
			B.phase = PH_ANNOUNCE;
			B.t_phase = now;
		}
		if (now - B.t_phase > 30 * 1000000000LL)
			fail("connections not up after 30 s (%d of %d welcomed)", B.nwelcomed,
			     B.nconns);
		break;
	case PH_ANNOUNCE:
		if (holders_ready()) {
			logf_("%d holders hold %zu blobs of %zu bytes; starting", B.holders,
			      B.blobs, B.blob_size);
			B.phase = PH_RUN;
			B.t_start = B.t_phase = now;
			if (B.mode == MODE_RATE) {
				B.pace_fd = timer_start((long)(1e9 / B.rate));
				if (B.pace_fd < 0)
					fail("cannot start the pacing timer: %s", strerror(errno));
			} else {
				for (int r = 0; r < B.requesters; r++)
					fill_window(&B.conns[B.holders + r]);
			}
		} else if (now - B.t_phase > 20 * 1000000000LL) {
			fail("the hub did not confirm the holders' blobs within 20 s");
		}
		break;
	case PH_RUN:
		if (B.t_win0 == 0 && now - B.t_start >= (int64_t)(B.warmup_s * 1e9))
			window_mark(0);
		if (B.t_win0 && now - B.t_win0 >= (int64_t)(B.duration_s * 1e9)) {
			window_mark(1);
			B.phase = PH_DRAIN;
			B.t_phase = now;
		}
		break;
	case PH_DRAIN: {
		uint64_t inflight = 0;
		for (int r = 0; r < B.requesters; r++)
			inflight += (uint64_t)B.conns[B.holders + r].inflight;
		if ((inflight == 0 && B.pend.len == 0) ||
		    now - B.t_phase > (int64_t)(B.drain_s * 1e9)) {
			B.unfinished = inflight + B.pend.len;
			if (B.unfinished)
				logf_("%" PRIu64 " wants unanswered after the drain", B.unfinished);
			B.phase = PH_DONE;
		}
		break;
	}
	case PH_DONE:
		break;
	}
	if (B.phase == PH_DONE)
		lws_cancel_service(B.ctx);
}

/* --------------------------------------------------------------------------------------------- */
/* Results */

static void print_results(void)
{
	double win = (double)(B.t_win1 - B.t_win0) / 1e9;
	printf("mode=%s\n", B.mode == MODE_RELAY ? "relay" : B.mode == MODE_RATE ? "rate" : "idle");
	if (B.mode == MODE_IDLE) {
		int n = B.conns_at[B.ncheck - 1];
		long grow = B.rss_at[B.ncheck - 1] - B.rss0;
		printf("connections=%d\n", n);
		printf("gw_rss0_kb=%ld\n", B.rss0);
		printf("gw_rss_kb=%ld\n", B.rss_at[B.ncheck - 1]);
		printf("gw_bytes_per_conn=%.0f\n", n ? grow * 1024.0 / n : 0.0);
		/* Least-squares slope over the checkpoints: the marginal cost of one more. */
		double sx = 0, sy = 0, sxx = 0, sxy = 0;
		for (int i = 0; i < B.ncheck; i++) {
			double x = B.conns_at[i], y = (double)B.rss_at[i] * 1024.0;
			sx += x;
			sy += y;
			sxx += x * x;
			sxy += x * y;
		}
		double den = B.ncheck * sxx - sx * sx;
		printf("gw_marginal_bytes_per_conn=%.0f\n",
		       den > 0 ? (B.ncheck * sxy - sx * sy) / den : 0.0);
		printf("gw_rss_checkpoints=");
		for (int i = 0; i < B.ncheck; i++)
			printf("%s%d:%ld", i ? "," : "", B.conns_at[i], B.rss_at[i]);
		printf("\n");
		if (B.hub_pid) {
			long hg = B.hub_rss_at[B.ncheck - 1] - B.hub_rss0;
			printf("hub_bytes_per_conn=%.0f\n", n ? hg * 1024.0 / n : 0.0);
		}
		return;
	}
	uint64_t done = B.c_win1 - B.c_win0, bytes = B.b_win1 - B.b_win0;
	printf("blob_size=%zu\nblobs=%zu\nholders=%d\nrequesters=%d\n", B.blob_size, B.blobs,
	       B.holders, B.requesters);
	if (B.mode == MODE_RELAY)
		printf("window=%d\n", B.window);
	else
		printf("offered_per_s=%.0f\n", B.rate);
	printf("seconds=%.3f\n", win);
	printf("completed=%" PRIu64 "\n", done);
	printf("wants_per_s=%.0f\n", win > 0 ? (double)done / win : 0.0);
	printf("mb_per_s=%.1f\n", win > 0 ? (double)bytes / win / 1e6 : 0.0);
	printf("errors=%" PRIu64 "\nnot_found=%" PRIu64 "\nmismatches=%" PRIu64
	       "\nprotocol_errors=%" PRIu64 "\n",
	       B.e_win1 - B.e_win0, B.not_found, B.mismatches, B.protocol_errors);
	if (B.mode == MODE_RATE)
		printf("skipped=%" PRIu64 "\ndeferred=%" PRIu64 "\n", B.rate_skipped,
		       B.rate_deferred);
	printf("unfinished=%" PRIu64 "\n", B.unfinished);
	FILE *dump = B.lat_dump ? fopen(B.lat_dump, "w") : NULL;
	for (size_t i = 0; dump && i < B.nlat; i++)
		fprintf(dump, "%.3f %.0f\n", (double)B.lat_at[i] / 1e6, (double)B.lat[i] / 1e3);
	if (dump)
		fclose(dump);
	samples_sort(B.lat, B.nlat);
	samples_sort(B.lat_sent, B.nlat);
	printf("lat_samples=%zu\n", B.nlat);
	printf("lat_p50_us=%.0f\nlat_p90_us=%.0f\nlat_p99_us=%.0f\nlat_p999_us=%.0f\nlat_max_us=%."
	       "0f\n",
	       samples_pct(B.lat, B.nlat, 50), samples_pct(B.lat, B.nlat, 90),
	       samples_pct(B.lat, B.nlat, 99), samples_pct(B.lat, B.nlat, 99.9),
	       samples_pct(B.lat, B.nlat, 100));
	printf("sent_p50_us=%.0f\nsent_p99_us=%.0f\n", samples_pct(B.lat_sent, B.nlat, 50),
	       samples_pct(B.lat_sent, B.nlat, 99));
	samples_sort(probe.late, probe.n);
	printf("noise_p99_us=%.0f\nnoise_max_us=%.0f\nnoise_stalled_pct=%.1f\n",
	       samples_pct(probe.late, probe.n, 99), samples_pct(probe.late, probe.n, 100),
	       win > 0 ? (double)probe.late_total / 1e9 / win * 100 : 0.0);
	/* CPU per answered want is what a noisy machine distorts least: it says what a want costs
	 * each process, whatever share of the cores the neighbours left us. */
	double per = done ? 1e6 / (double)done : 0;
	printf("cpu_client_pct=%.0f\n", win > 0 ? (B.self_cpu1 - B.self_cpu0) / win * 100 : 0.0);
	printf("cpu_client_us_per_want=%.1f\n", (B.self_cpu1 - B.self_cpu0) * per);
	for (int i = 0; i < B.nwatch; i++) {
		struct watch *w = &B.watch[i];
		if (w->cpu0 < 0 || w->cpu1 < 0 || win <= 0)
			continue;
		printf("cpu_%s_pct=%.0f\n", w->name, (w->cpu1 - w->cpu0) / win * 100);
		printf("cpu_%s_main_pct=%.0f\n", w->name, (w->main1 - w->main0) / win * 100);
		printf("cpu_%s_us_per_want=%.1f\n", w->name, (w->cpu1 - w->cpu0) * per);
		printf("cpu_%s_main_us_per_want=%.1f\n", w->name, (w->main1 - w->main0) * per);
	}
	if (B.hub0 && B.hub1) {
		printf("hub_requests_served=%lld\n", hub_delta("requests_served"));
		printf("hub_requests_failed=%lld\n", hub_delta("requests_failed"));
		printf("hub_bytes_relayed=%lld\n", hub_delta("bytes_relayed"));
	}
}

/* --------------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ephemeral-bench relay|rate|idle [options]\n"
	    "  --holder-gw HOST:PORT   gateway the holders use (idle: the gateway measured)\n"
	    "  --want-gw HOST:PORT     gateway the requesters use (default: the holders')\n"
	    "  --path PATH             WebSocket path (default /; /ws through a web server)\n"
	    "  --holders N             holder connections (default 4)\n"
	    "  --requesters N          requester connections (default 4)\n"
	    "  --window K              wants in flight per requester, relay (default 4)\n"
	    "  --blob-size BYTES       size of every blob (default 1048576)\n"
	    "  --blobs N               distinct blobs (default 64)\n"
	    "  --rate R                wants per second, rate mode (default 5000)\n"
	    "  --max-inflight N        rate mode: open wants per requester at most (default 60,\n"
	    "                          under gateway.max_wants); the rest wait in the client\n"
	    "  --warmup S --duration S seconds before and of the measured window (1, 5)\n"
	    "  --connections C         idle mode: connections to open (default 5000)\n"
	    "  --idle N                relay, rate: also hold N idle connections open on the\n"
	    "                          holders' gateway while measuring\n"
	    "  --checkpoint N          idle mode: read RSS every N connections (default 1000)\n"
	    "  --gw-pid PID            idle mode: the gateway whose VmRSS is read\n"
	    "  --hub-pid PID           idle mode: also read the hub's VmRSS\n"
	    "  --watch NAME=PID        report the CPU use of PID over the window (repeatable)\n"
	    "  --operator EP           hub operator endpoint: report the hub's counters' deltas\n"
	    "  --tx-chunk BYTES        send each blob in fragments of BYTES (default 0: one\n"
	    "                          frame per blob, as browsers send it)\n"
	    "  --rx-buffer BYTES       client receive buffer, lws rx_buffer_size (default\n"
	    "                          262144)\n"
	    "  --no-check              do not compare received bytes with the blobs\n"
	    "  --lat-dump FILE         write each latency sample: ms into the window, latency "
	    "us\n");
}

static int parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || (size_t)(colon - s) >= hostlen)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = atoi(colon + 1);
	return *port > 0 && *port < 65536 ? 0 : -1;
}

static void on_signal(int sig)
{
	(void)sig;
	B.interrupted = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"holder-gw", required_argument, NULL, 'g'},
	    {"want-gw", required_argument, NULL, 'G'},
	    {"holders", required_argument, NULL, 'H'},
	    {"requesters", required_argument, NULL, 'M'},
	    {"window", required_argument, NULL, 'K'},
	    {"blob-size", required_argument, NULL, 's'},
	    {"blobs", required_argument, NULL, 'b'},
	    {"rate", required_argument, NULL, 'r'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"duration", required_argument, NULL, 'd'},
	    {"connections", required_argument, NULL, 'C'},
	    {"checkpoint", required_argument, NULL, 'k'},
	    {"gw-pid", required_argument, NULL, 'p'},
	    {"hub-pid", required_argument, NULL, 'P'},
	    {"watch", required_argument, NULL, 'W'},
	    {"operator", required_argument, NULL, 'o'},
	    {"tx-chunk", required_argument, NULL, 't'},
	    {"rx-buffer", required_argument, NULL, 'x'},
	    {"no-check", no_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {"idle", required_argument, NULL, 'I'},
	    {"lat-dump", required_argument, NULL, 'D'},
	    {"max-inflight", required_argument, NULL, 'F'},
	    {"path", required_argument, NULL, 'U'},
	    {NULL, 0, NULL, 0},
	};
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "relay") == 0)
		B.mode = MODE_RELAY;
	else if (strcmp(argv[1], "rate") == 0)
		B.mode = MODE_RATE;
	else if (strcmp(argv[1], "idle") == 0)
		B.mode = MODE_IDLE;
	else {
		usage(strcmp(argv[1], "-h") && strcmp(argv[1], "--help") ? stderr : stdout);
		return strcmp(argv[1], "-h") && strcmp(argv[1], "--help") ? 2 : 0;
	}
	B.path = "/";
	B.holders = 4;
	B.requesters = 4;
	B.window = 4;
	B.blob_size = 1 << 20;
	B.blobs = 64;
	B.rate = 5000;
	B.max_inflight = 60;
	B.warmup_s = 1;
	B.duration_s = 5;
	B.drain_s = 3;
	B.connections = 5000;
	B.checkpoint_every = 1000;
	B.tx_chunk = 0;
	B.rx_buf = 256 * 1024;
	B.check = 1;
	B.pace_fd = B.tick_fd = -1;
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'g':
			if (parse_hostport(optarg, B.holder_host, sizeof(B.holder_host),
					   &B.holder_port) < 0)
				goto bad;
			break;
		case 'G':
			if (parse_hostport(optarg, B.want_host, sizeof(B.want_host), &B.want_port) <
			    0)
				goto bad;
			break;
		case 'H':
			B.holders = atoi(optarg);
			break;
		case 'M':
			B.requesters = atoi(optarg);
			break;
		case 'K':
			B.window = atoi(optarg);
			break;
		case 's':
			B.blob_size = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'b':
			B.blobs = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'r':
			B.rate = atof(optarg);
			break;
		case 'w':
			B.warmup_s = atof(optarg);
			break;
		case 'd':
			B.duration_s = atof(optarg);
			break;
		case 'C':
			B.connections = atoi(optarg);
			break;
		case 'k':
			B.checkpoint_every = atoi(optarg);
			break;
		case 'p':
			B.idle_pid = atoi(optarg);
			break;
		case 'P':
			B.hub_pid = atoi(optarg);
			break;
		case 'W': {
			const char *eq = strchr(optarg, '=');
			if (eq == NULL || B.nwatch == MAX_WATCH ||
			    (size_t)(eq - optarg) >= sizeof(B.watch[0].name))
				goto bad;
			struct watch *w = &B.watch[B.nwatch++];
			memcpy(w->name, optarg, (size_t)(eq - optarg));
			w->pid = atoi(eq + 1);
			break;
		}
		case 'o':
			B.operator_ep = optarg;
			break;
		case 't':
			B.tx_chunk = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'x':
			B.rx_buf = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'n':
			B.check = 0;
			break;
		case 'I':
			B.extra_idle = atoi(optarg);
			break;
		case 'D':
			B.lat_dump = optarg;
			break;
		case 'F':
			B.max_inflight = atoi(optarg);
			break;
		case 'U':
			B.path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc || B.holder_port == 0)
		goto bad;
	if (B.want_port == 0) {
		memcpy(B.want_host, B.holder_host, sizeof(B.want_host));
		B.want_port = B.holder_port;
	}
	if (B.mode == MODE_IDLE) {
		if (B.idle_pid <= 0 || B.connections <= 0 || B.checkpoint_every <= 0)
			goto bad;
		B.holders = B.requesters = 0;
		B.blobs = 0;
		B.blob_size = 0;
	} else {
		if (B.holders <= 0 || B.requesters <= 0 || B.window <= 0 || B.blob_size == 0 ||
		    B.rate <= 0 || B.duration_s <= 0 || (B.tx_chunk && B.tx_chunk < 256) ||
		    B.max_inflight <= 0)
			goto bad;
		/* Open loop: in flight is rate x latency, a few dozen; 256 spare hashes are plenty,
		 * and a want that finds none free is counted as skipped. */
		size_t inflight =
		    B.mode == MODE_RELAY ? (size_t)B.requesters * (size_t)B.window : 128;
		if (B.blobs < inflight * 2) {
			fprintf(stderr,
				"bench: --blobs %zu is too few for %zu wants in flight (need twice "
				"as many distinct hashes, or the hub would coalesce)\n",
				B.blobs, inflight);
			return 2;
		}
		blobs_make();
	}

	on_stop_signals(on_signal);
	/* Precise wake-ups for the pacing timer. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	B.nconns = B.mode == MODE_IDLE ? B.connections : B.holders + B.requesters + B.extra_idle;
	B.conns = xcalloc((size_t)B.nconns, sizeof(*B.conns));
	for (int i = 0; i < B.nconns; i++) {
		B.conns[i].idx = i;
		B.conns[i].role = B.mode == MODE_IDLE		 ? ROLE_IDLE
				  : i < B.holders		 ? ROLE_HOLDER
				  : i < B.holders + B.requesters ? ROLE_REQUESTER
								 : ROLE_IDLE;
		B.conns[i].rx_blob = -1;
	}
	/* A requester's idx is its owner id; holders are 0..H-1 so blob i % H names its holder. */
	/* Room for a whole blob message (or one fragment of it), and for the longest text: a have
	 * of 512 hashes is about 35 KB. */
	B.tx_cap = B.tx_chunk ? B.tx_chunk : HASH_LEN + B.blob_size;
	if (B.tx_cap < 64 * 1024)
		B.tx_cap = 64 * 1024;
	B.tx_scratch = xcalloc(LWS_PRE + B.tx_cap, 1);

	static struct lws_protocols protocols[] = {
	    {PROTO_NAME, bench_callback, 0, 0, 0, NULL, 0},
	    {"bench-timer", timer_callback, 0, 0, 0, NULL, 0},
	    {"bench-idle", bench_callback, 0, 1024, 0, NULL, 0},
	    {NULL, NULL, 0, 0, 0, NULL, 0},
	};
	/* lws reads at most rx_buffer_size (and pt_serv_buf_size) per recv() and hands payload over
	 * in pieces of at most rx_buffer_size; it sends at most tx_packet_size per send(). Large
	 * values mean fewer system calls and callbacks per blob. */
	protocols[0].rx_buffer_size = B.rx_buf;
	protocols[0].tx_packet_size = B.tx_cap + 16;
	lws_set_log_level(LLL_ERR, NULL);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.pt_serv_buf_size = (unsigned int)(B.rx_buf > 4096 ? B.rx_buf : 4096);
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	B.ctx = lws_create_context(&info);
	if (B.ctx == NULL) {
		fprintf(stderr, "bench: cannot create the lws context\n");
		return 2;
	}
	B.vhost = lws_get_vhost_by_name(B.ctx, "default");

	if (B.mode == MODE_IDLE) {
		B.rss0 = proc_rss_kb(B.idle_pid);
		B.hub_rss0 = B.hub_pid ? proc_rss_kb(B.hub_pid) : -1;
		if (B.rss0 < 0) {
			fprintf(stderr, "bench: cannot read /proc/%d/status\n", B.idle_pid);
			return 2;
		}
		B.next_checkpoint = B.checkpoint_every < B.nconns ? B.checkpoint_every : B.nconns;
	} else {
		conn_open_more();
	}
	B.phase = PH_CONNECT;
	B.t_phase = now_ns();
	B.tick_fd = timer_start(TICK_NS);
	if (B.tick_fd < 0) {
		fprintf(stderr, "bench: cannot start the phase timer: %s\n", strerror(errno));
		return 2;
	}
	int probing = B.mode != MODE_IDLE && noise_probe_start(&probe) == 0;
	while (B.phase != PH_DONE)
		if (lws_service(B.ctx, 0) < 0)
			break;
	if (probing)
		noise_probe_stop(&probe);

	if (!B.failed && (B.mode == MODE_IDLE || B.t_win1))
		print_results();
	lws_context_destroy(B.ctx);
	json_decref(B.hub0);
	json_decref(B.hub1);
	for (int i = 0; i < B.nconns; i++) {
		while (B.conns[i].q.len) {
			free(q_front(&B.conns[i].q)->text);
			q_pop(&B.conns[i].q);
		}
		free(B.conns[i].q.v);
		free(B.conns[i].trx);
	}
	free(B.conns);
	free(B.pool);
	free(B.hash);
	free(B.lut_key);
	free(B.lut_val);
	free(B.counted);
	free(B.owner);
	free(B.t_sched);
	free(B.t_sent);
	free(B.lat);
	free(B.lat_sent);
	free(B.lat_at);
	pending_free(&B.pend);
	noise_probe_free(&probe);
	free(B.tx_scratch);
	if (B.failed) {
		printf("failed=%s\n", B.fail_reason);
		return 1;
	}
	return 0;
bad:
	usage(stderr);
	return 2;
}
