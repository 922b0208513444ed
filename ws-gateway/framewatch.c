/*
 * framewatch.c — the checks lws 4.1 leaves out of a client's frame headers, made as lws reads them.
 *
 * libwebsockets 4.1.6 (Debian 12) accepts a client frame without a mask, which RFC 6455 §5.1
 * says a server must close on (lws checks it from v5.0.0 on, commit cae06c63a), and it tells
 * session.c of a frame only when payload bytes of it arrive, so a header that declares 2^40 bytes
 * and sends nothing more holds the connection unseen. Its API exposes neither the mask bit nor a
 * frame's length before payload arrives. So the gateway defines recv(), which lws calls to read
 * a plain socket (lws_ssl_capable_read_no_ssl): it reads with recvfrom(), as glibc's recv does,
 * and on the descriptor of a client WebSocket follows the frame headers in the bytes read. A frame
 * without the mask bit fails the connection with 1002; a data frame that takes its message past
 * SESSION_DRAIN_MAX (far past the 64 KiB or 32 + max_blob limit) fails it with 1009 from the
 * header; session.c sends that close at once. And where lws drops a connection without a close
 * frame (a control frame longer than 125 bytes, a length past 2^63, a close reason that is not
 * UTF-8), the code is given to lws before it parses the frame, so that it sends 1002 or 1007.
 * Smaller excesses are session.c's, which drains them so that the client reads the close. Pings
 * and pongs, which lws answers or drops without telling session.c, are charged to the
 * connection's message budget here (limits_take_control): a ping flood is closed like any flood.
 *
 * Only descriptors that session.c watches (from LWS_CALLBACK_ESTABLISHED to LWS_CALLBACK_CLOSED,
 * plain sockets) are parsed; every other recv() in the process, libzmq's I/O threads included,
 * is passed through, which is why the table's slots are atomic. Watching starts after the 101:
 * a client must not send frames before it (RFC 6455 §4.1), and one that does is misread at worst
 * into its own close. Never patches or reaches into lws.
 */
#include "gateway.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* RFC 6455 §5.2 (lws keeps its names private) */
enum framewatch_opcode {
	FRAMEWATCH_CONTINUATION = 0x0,
	FRAMEWATCH_TEXT = 0x1,
	FRAMEWATCH_BINARY = 0x2,
	FRAMEWATCH_CLOSE = 0x8,
};
#define FRAMEWATCH_CONTROL     0x8  /* opcodes 0x8-0xf */
#define FRAMEWATCH_MAX_CONTROL 125  /* a control frame's payload at most (§5.5) */
#define FRAMEWATCH_MASKED      0x80 /* second header byte */

static _Atomic(struct session *) *framewatch_table;
static size_t framewatch_slots;

int framewatch_init(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	framewatch_slots = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20)
			       ? (1u << 20)
			       : (size_t)rl.rlim_cur;
	framewatch_table = calloc(framewatch_slots, sizeof(*framewatch_table));
	return framewatch_table ? 0 : -1;
}

void framewatch_free(void)
{
	free(framewatch_table);
	framewatch_table = NULL;
	framewatch_slots = 0;
}

void framewatch_start(struct session *s)
{
	int fd = (int)lws_get_socket_fd(s->wsi);
	memset(&s->watch, 0, sizeof(s->watch));
	s->watch.fd = -1;
	if (framewatch_table == NULL || fd < 0 || (size_t)fd >= framewatch_slots ||
	    lws_is_ssl(s->wsi))
		return;
	s->watch.fd = fd;
	atomic_store_explicit(&framewatch_table[fd], s, memory_order_release);
}

void framewatch_stop(struct session *s)
{
	if (s->watch.fd < 0)
		return;
	atomic_store_explicit(&framewatch_table[s->watch.fd], NULL, memory_order_release);
	s->watch.fd = -1;
}

/* A whole header is in: checks it, and sets up the skip over its payload. */
static void framewatch_header(struct session *s)
{
	struct framewatch *w = &s->watch;
	uint8_t opcode = w->hdr[0] & 0x0f, len7 = w->hdr[1] & 0x7f;
	uint64_t len = len7;
	if (len7 == 126)
		len = (uint64_t)w->hdr[2] << 8 | w->hdr[3];
	else if (len7 == 127)
		for (int i = 0; i < 8; i++)
			len = len << 8 | w->hdr[2 + i];
	w->have = 0;
	w->payload_left = len;
	if (!(w->hdr[1] & FRAMEWATCH_MASKED)) {
		session_fail(s, LWS_CLOSE_STATUS_PROTOCOL_ERR, "unmasked frame");
		return;
	}
	if (len7 == 127 && (w->hdr[2] & 0x80)) {
		/* §5.2: the most significant bit must be 0; lws drops these without a close frame
		 */
		session_fail(s, LWS_CLOSE_STATUS_PROTOCOL_ERR, "frame length past 2^63");
		return;
	}
	if (opcode == FRAMEWATCH_TEXT || opcode == FRAMEWATCH_BINARY) {
		w->binary = opcode == FRAMEWATCH_BINARY;
		w->message = 0;
	} else if (opcode & FRAMEWATCH_CONTROL) {
		/* lws drops these without a close frame: this gives it the code to send. */
		if (len7 > FRAMEWATCH_MAX_CONTROL)
			session_fail(s, LWS_CLOSE_STATUS_PROTOCOL_ERR, "control frame too long");
		else if (opcode != FRAMEWATCH_CLOSE)
			limits_take_control(s->gw, s); /* lws answers pings without telling us */
		else if (len > 2) {
			w->close_pos = 0;
			w->close_check = 1;
			memset(&w->utf8, 0, sizeof(w->utf8));
			memcpy(w->mask, w->hdr + (len7 == 126 ? 4 : 2), sizeof(w->mask));
		}
		return;
	} else if (opcode != FRAMEWATCH_CONTINUATION) {
		return; /* reserved opcodes: lws's own check */
	}
	size_t limit = w->binary ? HASH_LEN + s->gw->max_blob : WSMSG_MAX_TEXT;
	w->message = len > UINT64_MAX - w->message ? UINT64_MAX : w->message + len;
	if (w->message > SESSION_DRAIN_MAX(limit))
		session_fail(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, SESSION_TOO_LARGE);
}

/* One byte of a strict UTF-8 check (RFC 3629: no overlong forms, surrogates, nor past U+10FFFF). */
static int framewatch_utf8_step(struct framewatch_utf8 *u, uint8_t c)
{
	if (u->need) {
		if (c < u->lo || c > u->hi)
			return -1;
		u->need--;
		u->lo = 0x80;
		u->hi = 0xbf;
		return 0;
	}
	u->lo = 0x80;
	u->hi = 0xbf;
	if (c < 0x80)
		return 0;
	if (c >= 0xc2 && c <= 0xdf)
		u->need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		u->need = 2;
		u->lo = c == 0xe0 ? 0xa0 : 0x80;
		u->hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		u->need = 3;
		u->lo = c == 0xf0 ? 0x90 : 0x80;
		u->hi = c == 0xf4 ? 0x8f : 0xbf;
	} else {
		return -1;
	}
	return 0;
}

/*
 * The reason in a close frame must be UTF-8 (§5.5.1). lws 4.1.6 checks, but drops the connection
 * without a close frame when it is not: this checks first, so that lws sends 1007.
 */
static void framewatch_close_reason(struct session *s, const uint8_t *p, size_t n)
{
	struct framewatch *w = &s->watch;
	for (size_t i = 0; i < n; i++, w->close_pos++) {
		uint8_t c = p[i] ^ w->mask[w->close_pos & 3];
		if (w->close_pos >= 2 && framewatch_utf8_step(&w->utf8, c) < 0)
			break;
	}
	if (w->close_pos < n || (w->payload_left == 0 && w->utf8.need)) {
		w->close_check = 0;
		session_fail(s, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "close reason not UTF-8");
	} else if (w->payload_left == 0) {
		w->close_check = 0;
	}
}

/* Follows the frame boundaries through n bytes just read. */
static void framewatch_feed(struct session *s, const uint8_t *p, size_t n)
{
	struct framewatch *w = &s->watch;
	while (n && !s->failing) {
		if (w->payload_left) {
			size_t skip = w->payload_left < n ? (size_t)w->payload_left : n;
			w->payload_left -= skip;
			if (w->close_check)
				framewatch_close_reason(s, p, skip);
			p += skip;
			n -= skip;
			continue;
		}
		w->hdr[w->have++] = *p++;
		n--;
		if (w->have < 2)
			continue;
		uint8_t len7 = w->hdr[1] & 0x7f;
		size_t need = 2u +
			      (len7 == 126   ? 2u
			       : len7 == 127 ? 8u
					     : 0u) +
			      (w->hdr[1] & FRAMEWATCH_MASKED ? 4u : 0u);
		if (w->have == need)
			framewatch_header(s);
	}
}

/* Replaces libc's recv() for the whole process (see above); the same contract. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t n = recvfrom(fd, buf, len, flags, NULL, NULL);
	if (n <= 0 || fd < 0 || (size_t)fd >= framewatch_slots || (flags & MSG_PEEK))
		return n;
	struct session *s = atomic_load_explicit(&framewatch_table[fd], memory_order_acquire);
	if (s)
		framewatch_feed(s, buf, (size_t)n);
	return n;
}
