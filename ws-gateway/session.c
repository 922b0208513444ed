/*
 * session.c — one client WebSocket speaking ephemeral.v1 (PROTOCOL.md "WebSocket").
 *
 * Owns the session struct (lws's per-session data): reassembly of incoming messages with the
 * size limits enforced while receiving (1009 as soon as a frame would pass its limit), the
 * dispatch of text messages through a table, the check of every blob a holder sends against its
 * hash (one SHA-256 pass as the bytes arrive, checked before the blob goes anywhere; peer.c
 * takes it from there), the hub's REQUEST for a blob (session_request), and what is sent to
 * the client: session_deliver() decides whether a blob is queued now or deferred, and the queue
 * itself (outq.c) is written only in LWS_CALLBACK_SERVER_WRITEABLE, up to GW_TX_CHUNK bytes a
 * call.
 */
#include "gateway.h"
#include "log.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define SESSION_CLOSE_GRACE_MS 300
#define SESSION_CLOSE_CODE_MAX 4999 /* RFC 6455 §7.4.2: 3000-4999 are the applications' */

static struct gateway *session_gateway(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

struct session *session_find(struct gateway *gw, uint64_t id)
{
	return map_get(&gw->sessions, &id);
}

static void session_enqueue(struct session *s, struct outbuf *b)
{
	if (s->closing || outq_push(&s->out, b) < 0)
		return; /* closing: nothing new is queued, so the queue drains and the close goes */
	if (outq_should_pause(&s->out, s->gw->max_blob) && !s->paused_out) {
		/* A slow reader: stop reading its requests until it has caught up. */
		s->paused_out = 1;
		session_update_flow(s);
	}
	lws_callback_on_writable(s->wsi);
}

/*
 * Bytes lws read past the message that paused a connection wait in its buffer list. lws 4.1 on
 * libev serves those lists from an idle watcher, which a busy loop does not run for seconds, but
 * it also asks for a writable callback when reads resume with bytes buffered, and drains the list
 * on that POLLOUT: a resumed connection's requests go on at once under load, no forced service of
 * ours needed (tests/e2e/forced-service.test.mjs). Over TLS nothing is left inside OpenSSL, which
 * lws would also serve from the idle watcher only: lws asks SSL_read for GW_RX_CHUNK + LWS_PRE
 * bytes, more than a TLS record holds, and OpenSSL (no read-ahead) returns one record a call.
 */
_Static_assert(GW_RX_CHUNK >= SSL3_RT_MAX_PLAIN_LENGTH, "one read takes a whole TLS record");

void session_update_flow(struct session *s)
{
	int pause = s->paused_bytes || s->paused_out;
	if (pause == s->rx_paused)
		return;
	s->rx_paused = pause;
	lws_rx_flow_control(s->wsi, !pause);
}

/* Wants one deferred blob again, now that the queue has room for it. */
static void session_rewant_one(struct gateway *gw, struct session *s)
{
	struct interest *in;
	LIST_FOREACH(in, &s->interests, sentry)
	{
		if (!in->deferred)
			continue;
		interest_want_close(gw, in);
		interest_want_open(gw, in);
		return;
	}
}

void session_send_text(struct session *s, char *text)
{
	struct outbuf *b = outbuf_text(text);
	if (b == NULL)
		return;
	session_enqueue(s, b);
	outbuf_release(b);
}

void session_send_error(struct session *s, const char *code, const uint8_t *hash,
			const char *message)
{
	session_send_text(s, wsmsg_error(code, hash, message));
}

int session_deliver(struct session *s, const uint8_t *hash, struct outbuf *b)
{
	struct gateway *gw = s->gw;
	struct interest *in = interest_get(gw, s, hash, 0);
	if (in == NULL || !in->wants || in->deferred)
		return 0;
	if (!outq_has_room(&s->out, b->len, gw->max_blob)) {
		/* A slow reader: let this copy go and want the blob again once the queue has
		 * drained, so memory stays bounded. */
		in->deferred = 1;
		s->ndeferred++;
		return 2;
	}
	interest_want_close(gw, in);
	interest_settle(gw, in);
	session_enqueue(s, b);
	return 1;
}

void session_request(struct gateway *gw, uint64_t id, const uint8_t *hash, struct peer_named *named)
{
	struct session *s = session_find(gw, id);
	if (s && s->closing)
		s = NULL; /* closing for a policy breach: answer as if it were gone */
	struct interest *in = s ? interest_get(gw, s, hash, 0) : NULL;
	if (in == NULL || !in->holds) {
		struct hubproto_out o = {.cmd = HUB_FAIL,
					 .id = id,
					 .hash = hash,
					 .value = s ? HUB_FAIL_DECLINED : HUB_FAIL_GONE};
		hub_link_send(gw, &o);
		peer_named_free(named);
		return;
	}
	/* The newest REQUEST's waiters are those the hub counts on this answer to serve. */
	peer_named_free(in->named);
	in->named = named;
	if (in->requested)
		return; /* already asked and not yet answered: its answer serves this too */
	in->requested = 1;
	if (!in->verifying) /* else filecheck.c asked for it: that answer serves both */
		session_send_text(s, wsmsg_request(hash));
}

static void session_close_due(struct ev_loop *loop, ev_timer *t, int revents);

/* A closing connection is looked at again when its grace is over (at once if it is). */
static void session_close_when_due(struct session *s)
{
	int64_t left = s->close_at - now_ms();
	timer_arm(s->gw, &s->close_timer, session_close_due, left > 0 ? left : 0);
}

static int session_writable(struct session *s)
{
	struct gateway *gw = s->gw;
	enum ka_due due = keepalive_due(s);
	if (due == KA_DUE_CLOSE)
		return -1; /* silent for gateway.idle_close_s */
	if (due == KA_DUE_PING) {
		/* Between frames (lws calls this only when what it had is out): a control frame
		 * may go here even inside a fragmented message (RFC 6455 5.4). With a payload:
		 * lws 4.1 passes an empty pong to no callback. */
		uint8_t ping[LWS_PRE + 8];
		memcpy(ping + LWS_PRE, "ephemera", 8);
		if (lws_write(s->wsi, ping + LWS_PRE, 8, LWS_WRITE_PING) < 0)
			return -1;
	}
	if (outq_empty(&s->out)) {
		if (s->closing && now_ms() >= s->close_at) {
			lws_close_reason(s->wsi, (enum lws_close_status)s->closing,
					 (unsigned char *)s->close_reason, strlen(s->close_reason));
			return -1;
		}
		if (s->closing) /* called before the grace is over */
			session_close_when_due(s);
		return 0;
	}
	/*
	 * Several frames a call (a count and the blob it goes with, a burst of small blobs), up to
	 * GW_TX_CHUNK bytes so one connection does not hold up the others, and only while lws took
	 * every byte so far: one wake-up of the loop per message cost as much as its send().
	 */
	size_t start = outq_pending(&s->out);
	/*
	 * The sockets have TCP_NODELAY (a blob must not wait for an ACK of the count before it),
	 * so several frames written in one call are corked into as few segments as they fill:
	 * each segment costs both ends a wake-up and the loopback a pass through the stack.
	 */
	int fd = outq_several(&s->out) ? (int)lws_get_socket_fd(s->wsi) : -1, on = 1, off = 0;
	if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) < 0)
		fd = -1;
	do {
		if (outq_write(&s->out, s->wsi, gw->tx_scratch) < 0)
			return -1;
	} while (!outq_empty(&s->out) && start - outq_pending(&s->out) < GW_TX_CHUNK &&
		 !lws_partial_buffered(s->wsi));
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
	if (outq_may_resume(&s->out, gw->max_blob)) {
		if (s->paused_out) {
			s->paused_out = 0;
			session_update_flow(s);
		}
		if (s->ndeferred)
			session_rewant_one(gw, s);
	}
	if (!outq_empty(&s->out))
		lws_callback_on_writable(s->wsi);
	else if (s->closing) /* the queue is out: the close goes when the grace is over */
		session_close_when_due(s);
	return 0;
}

static void session_close_due(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct session *s = lws_container_of(t, struct session, close_timer);
	lws_callback_on_writable(s->wsi);
}

/*
 * Closes with a policy code once what is queued has gone out, after a short grace during which
 * input is read and ignored: closing on unread input makes the kernel send a reset, which would
 * destroy the queued errors and the close frame before the client reads them.
 */
void session_close_soon(struct session *s, int code, const char *reason)
{
	if (s->closing)
		return;
	s->closing = code;
	s->close_at = now_ms() + SESSION_CLOSE_GRACE_MS;
	snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
	session_close_when_due(s);
	lws_callback_on_writable(s->wsi);
}

typedef void (*session_handler)(struct gateway *, struct session *, struct wsmsg *);

/* HAVE and DROP lists go to the hub in one message, naming only what changed. */
static void session_send_hashes(struct gateway *gw, struct session *s, uint8_t cmd,
				const uint8_t *list, size_t n)
{
	if (n == 0)
		return;
	struct hubproto_out o = {.cmd = cmd, .id = s->id, .list = list, .list_count = n};
	hub_link_send(gw, &o);
}

static void on_have(struct gateway *gw, struct session *s, struct wsmsg *m)
{
	size_t n = 0, fresh = 0;
	for (size_t i = 0; i < m->nhashes; i++) {
		struct interest *in = interest_get(gw, s, m->hashes[i], 0);
		fresh += in == NULL || !in->holds;
	}
	if (s->nholds + fresh > (size_t)gw->max_holds) {
		char why[96];
		snprintf(why, sizeof(why), "a connection holds at most %d hashes", gw->max_holds);
		session_send_error(s, "too_large", NULL, why);
		return;
	}
	for (size_t i = 0; i < m->nhashes; i++) {
		struct interest *in = interest_get(gw, s, m->hashes[i], 1);
		if (in == NULL || in->holds)
			continue;
		in->holds = 1;
		s->nholds++;
		if (n != i)
			memcpy(m->hashes[n], m->hashes[i], HASH_LEN);
		n++;
	}
	session_send_hashes(gw, s, HUB_HAVE, &m->hashes[0][0], n);
}

static void on_drop(struct gateway *gw, struct session *s, struct wsmsg *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->nhashes; i++) {
		struct interest *in = interest_get(gw, s, m->hashes[i], 0);
		if (in == NULL || !in->holds)
			continue;
		in->holds = 0;
		s->nholds--;
		filecheck_forget(gw, s, m->hashes[i]);
		interest_settle(gw, in);
		if (n != i)
			memcpy(m->hashes[n], m->hashes[i], HASH_LEN);
		n++;
	}
	session_send_hashes(gw, s, HUB_DROP, &m->hashes[0][0], n);
}

static void on_want(struct gateway *gw, struct session *s, struct wsmsg *m)
{
	struct interest *in = interest_get(gw, s, m->hash, 0);
	if (in && in->wants)
		return; /* a second want of the same hash gets no second answer */
	if (s->nwants >= (uint32_t)gw->max_wants) {
		limits_violation(gw, s);
		session_send_error(s, "rate_limited", m->hash, "too many wants open at once");
		return;
	}
	in = interest_get(gw, s, m->hash, 1);
	if (in == NULL) { /* out of memory: answered at once, never left waiting */
		session_send_error(s, "not_found", m->hash, "the gateway is out of memory");
		return;
	}
	interest_want_open(gw, in);
}

/* s no longer holds what in names, nor owes it (a decline, or bytes that do not hash to it): the
 * claim, a pending request and a manifest check of it end; in may be freed. */
static void session_unclaim(struct gateway *gw, struct session *s, struct interest *in)
{
	if (in->holds)
		s->nholds--;
	in->holds = in->requested = 0;
	if (in->verifying)
		filecheck_answered(gw, s, in, NULL, 0);
	filecheck_forget(gw, s, HUBPROTO_CONN_KEY_HASH(in->key));
	interest_settle(gw, in);
}

static void on_decline(struct gateway *gw, struct session *s, struct wsmsg *m)
{
	struct interest *in = interest_get(gw, s, m->hash, 0);
	if (in == NULL || (!in->holds && !in->requested && !in->verifying))
		return;
	session_unclaim(gw, s, in);
	struct hubproto_out o = {
	    .cmd = HUB_FAIL, .id = s->id, .hash = m->hash, .value = HUB_FAIL_DECLINED};
	hub_link_send(gw, &o);
}

static void on_file(struct gateway *gw, struct session *s, struct wsmsg *m)
{
	filecheck_announce(gw, s, m->hash, m->sha256);
}

static const struct {
	enum wsmsg_type type;
	session_handler fn;
} session_handlers[] = {
    {WSMSG_HAVE, on_have},	 {WSMSG_DROP, on_drop}, {WSMSG_WANT, on_want},
    {WSMSG_DECLINE, on_decline}, {WSMSG_FILE, on_file},
};

/*
 * A text message is charged to the budget whether or not it parses (a flood of garbage is
 * refused and closed like any other flood), after parsing, so that a refused want names its hash
 * and a long list costs what it weighs.
 */
static void session_text(struct gateway *gw, struct session *s)
{
	struct wsmsg_error err;
	struct wsmsg *m = &gw->scratch_msg;
	int parsed = wsmsg_parse_client((const char *)s->rx, s->rx_len, m, &err) == 0;
	const uint8_t *hash =
	    parsed ? (m->has_hash ? m->hash : NULL) : (err.has_hash ? err.hash : NULL);
	if (limits_take_message(gw, s, parsed ? m->nhashes : 0) <= 0) {
		session_send_error(s, "rate_limited", hash, "too many messages: slow down");
		return;
	}
	if (!parsed) {
		session_send_error(s, err.code, hash, err.message);
		limits_bad_message(gw, s);
		return;
	}
	for (size_t i = 0; i < sizeof(session_handlers) / sizeof(session_handlers[0]); i++) {
		if (session_handlers[i].type == m->type) {
			session_handlers[i].fn(gw, s, m);
			return;
		}
	}
}

static void session_binary(struct gateway *gw, struct session *s)
{
	uint8_t hash[HASH_LEN], got[HASH_LEN];
	if (s->rx_len < HASH_LEN) {
		session_send_error(s, "bad_request", NULL,
				   "a binary frame starts with the blob's 32-byte SHA-256");
		limits_bad_message(gw, s);
		return;
	}
	memcpy(hash, s->rx, HASH_LEN);
	struct interest *in = interest_get(gw, s, hash, 0);
	if (in == NULL || (!in->requested && !in->verifying)) {
		session_send_error(s, "bad_request", hash, "this binary frame answers no request");
		limits_bad_message(gw, s);
		return;
	}
	int requested = in->requested;
	struct peer_named *named = in->named;
	in->requested = 0;
	in->named = NULL;
	size_t len = s->rx_len - HASH_LEN;
	if (s->rx_sha_failed || hash_stream_end(s->rx_sha, got) < 0 ||
	    memcmp(got, hash, HASH_LEN) != 0) {
		s->lies++;
		session_unclaim(gw, s, in);
		session_send_error(s, "hash_mismatch", hash,
				   "the bytes sent do not hash to this address: claim dropped");
		struct hubproto_out o = {
		    .cmd = HUB_FAIL, .id = s->id, .hash = hash, .value = HUB_FAIL_MISMATCH};
		hub_link_send(gw, &o);
		peer_named_free(named);
		if (s->lies >= gw->max_lies)
			session_close_soon(s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
					   "too many wrong blobs");
		return;
	}
	if (in->verifying)
		filecheck_answered(gw, s, in, s->rx + HASH_LEN, len);
	interest_settle(gw, in);
	if (!requested) {
		peer_named_free(named); /* (none: nobody asked) */
		return; /* asked by filecheck.c alone: read, and nobody waits for it */
	}
	/* The verified frame stays here, without a copy: the waiters the REQUEST named get it now,
	 * the others when the hub says where they are. */
	uint8_t *frame = s->rx;
	s->rx = NULL;
	s->rx_len = s->rx_cap = 0;
	if (peer_keep(gw, s->id, frame, HASH_LEN + len, named) < 0) {
		/* Not kept (out of memory): the hub asks the next holder now, not after its
		 * holder timeout; the claim stays. */
		struct hubproto_out o = {
		    .cmd = HUB_FAIL, .id = s->id, .hash = hash, .value = HUB_FAIL_GONE};
		hub_link_send(gw, &o);
	}
}

/* Closes now: the client broke the protocol, and nothing it sends after counts. */
static int session_fail_now(struct session *s)
{
	lws_close_reason(s->wsi, (enum lws_close_status)s->failing, (unsigned char *)s->fail_reason,
			 strlen(s->fail_reason));
	return -1;
}

/*
 * The reason is given to lws at once as well: if lws's own parser then drops the connection (a
 * control frame longer than 125 bytes, which 4.1.6 drops without a close frame), it sends ours.
 */
void session_fail(struct session *s, int code, const char *reason)
{
	if (s->failing)
		return;
	s->failing = code;
	s->fail_reason = reason;
	lws_close_reason(s->wsi, (enum lws_close_status)code, (unsigned char *)reason,
			 strlen(reason));
	lws_callback_on_writable(s->wsi);
}

/*
 * Appends a received fragment. The limit is on the message, whatever its fragments: once it is
 * passed nothing more is buffered, the rest of the frame that passed it is read and thrown away,
 * and then the connection is closed with 1009 (after the grace of session_close_soon() if the
 * message has more fragments to come). Closing at once would leave unread bytes in the socket,
 * and the kernel would answer them with a reset that destroys the close frame before the client
 * reads it. A frame that would take the message past SESSION_DRAIN_MAX is not drained:
 * framewatch.c refuses it from its header, and this from its first payload.
 */
static int session_receive(struct gateway *gw, struct session *s, const void *in, size_t len)
{
	if (s->failing)
		return session_fail_now(s);
	if (s->closing)
		return 0; /* on its way out: read, but act on nothing more */
	int first = lws_is_first_fragment(s->wsi);
	if (first && !s->discarding) {
		s->rx_len = 0;
		s->rx_binary = lws_frame_is_binary(s->wsi);
		if (s->rx_binary) {
			if (s->rx_sha == NULL)
				s->rx_sha = hash_stream_new();
			s->rx_sha_failed = s->rx_sha == NULL || hash_stream_begin(s->rx_sha) < 0;
			s->rx_hashed = HASH_LEN;
		}
	}
	size_t limit = s->rx_binary ? HASH_LEN + gw->max_blob : WSMSG_MAX_TEXT;
	size_t remaining = lws_remaining_packet_payload(s->wsi);
	limits_take_bytes(gw, s, len);
	if (!s->discarding && s->rx_len + len + remaining > limit) {
		s->discarding = 1;
		s->discarded = s->rx_len;
		s->rx_len = 0;
	}
	if (s->discarding) {
		s->discarded += len;
		if (s->discarded + remaining > SESSION_DRAIN_MAX(limit) ||
		    lws_is_final_fragment(s->wsi)) {
			session_fail(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, SESSION_TOO_LARGE);
			return session_fail_now(s);
		}
		/* More fragments may be on their way: read and ignore them for the grace. */
		if (remaining == 0)
			session_close_soon(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
					   SESSION_TOO_LARGE);
		return 0;
	}
	if (buf_append(&s->rx, &s->rx_len, &s->rx_cap, in, len, remaining, limit) < 0)
		return -1;
	if (s->rx_binary && s->rx_len > s->rx_hashed) {
		/* Hash the blob's bytes while they are still in the cache. */
		if (!s->rx_sha_failed && hash_stream_update(s->rx_sha, s->rx + s->rx_hashed,
							    s->rx_len - s->rx_hashed) < 0)
			s->rx_sha_failed = 1;
		s->rx_hashed = s->rx_len;
	}
	if (!lws_is_final_fragment(s->wsi) || remaining)
		return 0;
	if (s->rx_binary)
		session_binary(gw, s);
	else
		session_text(gw, s);
	/* Keep a small buffer for the next message; let a big one go. */
	if (s->rx_cap > 4096) {
		free(s->rx);
		s->rx = NULL;
		s->rx_cap = 0;
	}
	s->rx_len = 0;
	return 0;
}

/*
 * A close from the client. lws 4.1.6 answers a close payload of one byte with an empty close
 * (1005 to the client), echoes codes from 5000 up, and echoes a reason that ends inside a UTF-8
 * character; RFC 6455 §5.5.1 and §7.4 make the first two a protocol error, the last 1007. Codes lws
 * itself knows to be wrong it already answers with 1002.
 */
static int session_peer_close(struct session *s, const uint8_t *in, size_t len)
{
	if (s->failing)
		return session_fail_now(s); /* e.g. a reason framewatch.c found not to be UTF-8 */
	if (len == 0)
		return 0;
	int code = len >= 2 ? in[0] << 8 | in[1] : 0;
	if (len == 1 || code > SESSION_CLOSE_CODE_MAX) {
		session_fail(s, LWS_CLOSE_STATUS_PROTOCOL_ERR,
			     len == 1 ? "close payload of 1 byte" : "bad close code");
		return session_fail_now(s);
	}
	return 0;
}

/*
 * Accepts clients that offer ephemeral.v1 or no subprotocol at all; refuses the others, and an
 * offer that names the hub link's protocol (lws binds the first protocol of ours it finds).
 */
static int session_protocol_ok(struct lws *wsi)
{
	char offered[256];
	int n = lws_hdr_copy(wsi, offered, sizeof(offered), WSI_TOKEN_PROTOCOL);
	if (n <= 0)
		return lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) <= 0;
	int ours = 0;
	for (char *save = NULL, *tok = strtok_r(offered, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t len = strlen(tok);
		while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		if (strcmp(tok, GW_HUB_LINK_PROTOCOL) == 0)
			return 0;
		ours |= strcmp(tok, GW_PROTOCOL) == 0;
	}
	return ours;
}

static const char *session_status_text(int status)
{
	switch (status) {
	case HTTP_STATUS_BAD_REQUEST:
		return "Bad Request";
	case HTTP_STATUS_FORBIDDEN:
		return "Forbidden";
	case LIMITS_HTTP_TOO_MANY:
		return "Too Many Requests";
	default:
		return "Service Unavailable";
	}
}

/*
 * Answers a refused handshake with an HTTP status and a one-line reason, while the connection is
 * still HTTP (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE): a client hears at once why, and a web server in
 * front passes the status on. Refusing later, in LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION, lws
 * would only close the connection, and it refuses an unknown subprotocol before that, silently.
 * The caller then returns -1: lws hangs up once the answer is written.
 */
static void session_refuse(struct lws *wsi, int status, const char *why)
{
	uint8_t buf[LWS_PRE + 512];
	char *start = (char *)buf + LWS_PRE;
	int n = snprintf(start, sizeof(buf) - LWS_PRE,
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n"
			 "\r\n%s\n",
			 status, session_status_text(status), strlen(why) + 1, why);
	if (n > 0 && (size_t)n < sizeof(buf) - LWS_PRE)
		lws_write(wsi, (unsigned char *)start, (size_t)n, LWS_WRITE_HTTP_FINAL);
}

static int session_confirm_upgrade(struct gateway *gw, struct lws *wsi, const char *upgrade)
{
	const char *why = NULL;
	int status = 0;
	if (upgrade == NULL || strcasecmp(upgrade, "websocket") != 0) {
		status = HTTP_STATUS_BAD_REQUEST;
		why = "this endpoint speaks WebSocket only";
	} else if (!session_protocol_ok(wsi)) {
		status = HTTP_STATUS_BAD_REQUEST;
		why = "offer the " GW_PROTOCOL " subprotocol, or none";
		char addr[GW_ADDR_LEN];
		limits_client_addr(gw, wsi, addr);
		log_info("refused a WebSocket from %s: no subprotocol of ours (%llu so far)", addr,
			 (unsigned long long)++gw->counters[HUB_GWC_REFUSED_SUBPROTOCOL]);
	} else {
		status = limits_admit(gw, wsi, &why);
	}
	if (status == 0)
		return 0;
	session_refuse(wsi, status, why);
	return -1;
}

int session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len)
{
	struct session *s = user;
	struct gateway *gw = session_gateway(wsi);

	hub_link_beat_if_due(gw);
	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return session_confirm_upgrade(gw, wsi, in);
	case LWS_CALLBACK_ESTABLISHED: {
		memset(s, 0, sizeof(*s));
		s->gw = gw;
		s->wsi = wsi;
		s->id = ++gw->next_id;
		outq_init(&s->out);
		if (map_put(&gw->sessions, s) < 0) {
			s->id = 0; /* never opened: LWS_CALLBACK_CLOSED has nothing to undo */
			return -1;
		}
		framewatch_start(s);
		gw->nsessions++;
		limits_session_open(gw, s);
		keepalive_open(gw, s);
		struct hubproto_out o = {.cmd = HUB_CONN_OPEN, .id = s->id};
		hub_link_send(gw, &o);
		struct wsmsg_welcome w = {.max_blob = gw->max_blob,
					  .msg_rate = (uint64_t)gw->msg_rate,
					  .msg_burst = (uint64_t)gw->msg_burst,
					  .max_wants = (uint64_t)gw->max_wants,
					  .max_holds = (uint64_t)gw->max_holds};
		session_send_text(s, wsmsg_welcome(&w));
		return 0;
	}
	case LWS_CALLBACK_RECEIVE:
		keepalive_seen(gw, s);
		return session_receive(gw, s, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		keepalive_seen(gw, s);
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		return session_peer_close(s, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (s->failing)
			return session_fail_now(s);
		return session_writable(s);
	case LWS_CALLBACK_CLOSED: {
		if (s->id == 0)
			return 0;
		framewatch_stop(s);
		struct hubproto_out o = {.cmd = HUB_CONN_CLOSE, .id = s->id};
		if (!gw->stopping)
			hub_link_send(gw, &o);
		filecheck_session_closed(gw, s);
		interest_session_closed(gw, s);
		outq_clear(&s->out);
		free(s->rx);
		s->rx = NULL;
		hash_stream_free(s->rx_sha);
		s->rx_sha = NULL;
		map_del(&gw->sessions, &s->id);
		gw->nsessions--;
		limits_session_close(gw, s);
		keepalive_close(gw, s);
		timer_stop(gw, &s->close_timer);
		s->id = 0;
		return 0;
	}
	case LWS_CALLBACK_HTTP:
		/*
		 * The gateway speaks WebSocket only; pages come from the frontend. A browser does
		 * not show a page why its handshake failed: the page may GET the same URL to learn
		 * that this gateway is full (503, as the handshake got).
		 */
		if (gw->nsessions >= (uint32_t)gw->max_conns) {
			session_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, LIMITS_FULL);
			return -1;
		}
		if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	default:
		return 0;
	}
}
