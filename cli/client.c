/*
 * client.c — one ephemeral.v1 WebSocket through libwebsockets, as the browser pages keep one.
 *
 * Owns the lws context and the connection: connecting (ws:// or wss://, --insecure for test
 * certificates), reconnecting with backoff and then announcing again everything held, the
 * outgoing queue (written only in LWS_CALLBACK_CLIENT_WRITEABLE, one frame or one 64 KiB
 * fragment per callback), reassembly of incoming frames with the size limits enforced while
 * receiving, a SHA-256 check of every blob that arrives, and the answers to `request` from the
 * store. Server messages go through a dispatch table; what they mean to a command goes to its
 * client_ops. It never exits the process: client_finish() ends client_run().
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLIENT_PROTOCOL	      "ephemeral.v1"
#define CLIENT_BACKOFF_MIN_MS 500
#define CLIENT_BACKOFF_MAX_MS 15000
#define CLIENT_DEFAULT_BLOB   (1024 * 1024)
#define CLIENT_TX_SIZE	      (WSMSG_MAX_TEXT > CLIENT_TX_CHUNK ? WSMSG_MAX_TEXT : CLIENT_TX_CHUNK)

/* The signal handler's only way in: a flag, and the context to wake. */
static volatile sig_atomic_t client_signalled;
static struct lws_context *client_signal_ctx;

static void client_on_signal(int sig)
{
	(void)sig;
	client_signalled = 1;
	if (client_signal_ctx)
		lws_cancel_service(client_signal_ctx);
}

int client_interrupted(void)
{
	return client_signalled != 0;
}

static struct client *client_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

/* ---- the outgoing queue ------------------------------------------------------------------ */

static void client_enqueue(struct client *c, char *text, const uint8_t *hash)
{
	if (c->state != CLIENT_OPEN) {
		free(text);
		return;
	}
	struct client_out *o = calloc(1, sizeof(*o));
	if (o == NULL) {
		free(text);
		return;
	}
	o->text = text;
	if (hash)
		memcpy(o->hash, hash, HASH_LEN);
	STAILQ_INSERT_TAIL(&c->outq, o, entry);
	lws_callback_on_writable(c->wsi);
}

static void client_send_text(struct client *c, char *text)
{
	if (text)
		client_enqueue(c, text, NULL);
}

static void client_clear_queue(struct client *c)
{
	while (!STAILQ_EMPTY(&c->outq)) {
		struct client_out *o = STAILQ_FIRST(&c->outq);
		STAILQ_REMOVE_HEAD(&c->outq, entry);
		free(o->text);
		free(o);
	}
	c->blob_total = c->blob_off = 0;
}

void client_want(struct client *c, const uint8_t hash[HASH_LEN])
{
	client_send_text(c, wsmsg_client_hash(WSMSG_WANT, hash));
}

int client_announce_file(struct client *c, const uint8_t sha256[HASH_LEN],
			 const uint8_t manifest[HASH_LEN])
{
	if (c->nfiles == c->files_cap) {
		size_t ncap = c->files_cap ? c->files_cap * 2 : 16;
		uint8_t(*n)[2 * HASH_LEN] = realloc(c->files, ncap * 2 * HASH_LEN);
		if (n == NULL)
			return -1;
		c->files = n;
		c->files_cap = ncap;
	}
	memcpy(c->files[c->nfiles], manifest, HASH_LEN);
	memcpy(c->files[c->nfiles] + HASH_LEN, sha256, HASH_LEN);
	c->nfiles++;
	return 0;
}

void client_flush_haves(struct client *c)
{
	if ((c->lists_len || c->files_sent < c->nfiles) && c->welcomed && c->state == CLIENT_OPEN &&
	    c->wsi)
		lws_callback_on_writable(c->wsi);
}

static void client_lists_clear(struct client *c)
{
	c->lists_head = c->lists_len = 0;
}

/* Adds a hash to the announcements not yet sent. 0, or -1 on out of memory. */
static int client_lists_push(struct client *c, const uint8_t hash[HASH_LEN])
{
	if (c->lists_head + c->lists_len == c->lists_cap && c->lists_head) {
		memmove(c->lists, c->lists + c->lists_head, c->lists_len * HASH_LEN);
		c->lists_head = 0;
	}
	if (c->lists_len == c->lists_cap) {
		size_t ncap = c->lists_cap ? c->lists_cap * 2 : CLIENT_HAVE_MAX;
		uint8_t(*n)[HASH_LEN] = realloc(c->lists, ncap * HASH_LEN);
		if (n == NULL)
			return -1;
		c->lists = n;
		c->lists_cap = ncap;
	}
	memcpy(c->lists[c->lists_head + c->lists_len++], hash, HASH_LEN);
	return 0;
}

static int client_announce(struct client *c, const uint8_t hash[HASH_LEN], int added)
{
	if (added < 0 || (added > 0 && c->welcomed && client_lists_push(c, hash) < 0)) {
		progress_error(c->out, "out of memory");
		return -1;
	}
	return 0; /* already announced, or will be at the next welcome */
}

int client_hold_file(struct client *c, const uint8_t hash[HASH_LEN], int fd, uint64_t off,
		     size_t len)
{
	return client_announce(c, hash, store_add_file(&c->store, hash, fd, off, len));
}

int client_hold_mem(struct client *c, const uint8_t hash[HASH_LEN], const void *data, size_t len)
{
	return client_announce(c, hash, store_add_mem(&c->store, hash, data, len));
}

/* Loads the answer to a request into c->blob; -1 when it must be declined. */
static int client_load_blob(struct client *c, const uint8_t hash[HASH_LEN])
{
	char err[128], hex[HASH_HEX_LEN + 1];
	const struct store_entry *e = store_get(&c->store, hash);
	if (e == NULL)
		return -1;
	if (e->len > c->max_blob) {
		/* A server restarted with a smaller limit would close us for sending it. */
		store_remove(&c->store, hash);
		return -1;
	}
	if (HASH_LEN + e->len > c->blob_cap) {
		uint8_t *b = realloc(c->blob, HASH_LEN + e->len);
		if (b == NULL)
			return -1;
		c->blob = b;
		c->blob_cap = HASH_LEN + e->len;
	}
	if (store_read(e, c->blob + HASH_LEN, err, sizeof(err)) < 0) {
		hash_to_hex(hash, hex);
		progress_error(c->out, "cannot serve %.12s…: %s; no longer offering it", hex, err);
		store_remove(&c->store, hash);
		return -1;
	}
	memcpy(c->blob, hash, HASH_LEN);
	c->blob_total = HASH_LEN + e->len;
	c->blob_off = 0;
	return 0;
}

static int client_write_text(struct client *c, const char *text)
{
	size_t n = strlen(text);
	if (n > CLIENT_TX_SIZE)
		return 0; /* never built: every message we make is far below 64 KiB */
	memcpy(c->tx + LWS_PRE, text, n);
	return lws_write(c->wsi, c->tx + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n ? -1 : 0;
}

static int64_t client_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void client_rate_wake(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, rate_sul);
	if (c->state == CLIENT_OPEN && c->wsi)
		lws_callback_on_writable(c->wsi);
}

/* --limit-rate: a token bucket of one chunk. 1 if n bytes may go now; otherwise a wake-up is
 * scheduled for when they may. */
static int client_rate_ok(struct client *c, size_t n)
{
	double rate = (double)c->cfg.rate_limit;
	if (c->cfg.rate_limit == 0)
		return 1;
	int64_t now = client_now_us();
	c->tokens += (double)(now - c->tokens_at) * rate / 1e6;
	if (c->tokens > CLIENT_TX_CHUNK)
		c->tokens = CLIENT_TX_CHUNK;
	c->tokens_at = now;
	if (c->tokens >= (double)n) {
		c->tokens -= (double)n;
		return 1;
	}
	lws_usec_t wait = (lws_usec_t)(((double)n - c->tokens) * 1e6 / rate) + 1;
	lws_sul_schedule(c->ctx, 0, &c->rate_sul, client_rate_wake, wait);
	return 0;
}

static void client_msg_wake(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, msg_sul);
	if (c->state == CLIENT_OPEN && c->wsi)
		lws_callback_on_writable(c->wsi);
}

/* The server's charge for a text message listing n hashes. */
static double client_msg_cost(size_t n)
{
	return 1.0 + (double)(n / WSMSG_HASHES_PER_TOKEN);
}

/* Pays cost from the message budget if `reserve` tokens stay left (1), or schedules a wake-up
 * for when they will (0). */
static int client_pay(struct client *c, double cost, double reserve)
{
	double rate = (double)c->budget.msg_rate * CLIENT_RATE_MARGIN;
	int64_t now = client_now_us();
	c->msg_tokens += (double)(now - c->msg_tokens_at) * rate / 1e6;
	if (c->msg_tokens > (double)c->budget.msg_burst)
		c->msg_tokens = (double)c->budget.msg_burst;
	c->msg_tokens_at = now;
	if (c->msg_tokens - reserve >= cost) {
		c->msg_tokens -= cost;
		return 1;
	}
	lws_usec_t wait = (lws_usec_t)((cost + reserve - c->msg_tokens) * 1e6 / rate) + 1000;
	lws_sul_schedule(c->ctx, 0, &c->msg_sul, client_msg_wake, wait);
	return 0;
}

/* Sends the next `have` list if the budget allows it now (1), or not yet (0); -1 if the write
 * failed. A list is never dearer than the share of the burst lists may spend, so it always
 * goes one day. */
static int client_send_list(struct client *c)
{
	double reserve = (double)c->budget.msg_burst / CLIENT_LIST_SHARE;
	double share = (double)c->budget.msg_burst - reserve;
	uint64_t room = c->budget.max_holds > c->announced ? c->budget.max_holds - c->announced : 0;
	if (room == 0) {
		if (!c->holds_noted)
			progress_error(c->out,
				       "this server lets a connection offer at most %llu pieces: "
				       "%zu more are not offered",
				       (unsigned long long)c->budget.max_holds, c->lists_len);
		c->holds_noted = 1;
		client_lists_clear(c);
		return 0;
	}
	if (share < 1) {
		share = 1;
		reserve = 0;
	}
	size_t k = c->lists_len < CLIENT_HAVE_MAX ? c->lists_len : CLIENT_HAVE_MAX;
	size_t fits = (size_t)share * WSMSG_HASHES_PER_TOKEN - 1; /* costs at most `share` */
	if (k > fits)
		k = fits;
	if (k > room)
		k = (size_t)room;
	if (!client_pay(c, client_msg_cost(k), reserve))
		return 0;
	char *text = wsmsg_client_hashes(WSMSG_HAVE,
					 (const uint8_t(*)[HASH_LEN])c->lists + c->lists_head, k);
	if (text == NULL)
		return 0; /* out of memory: the tick tries again */
	int rc = client_write_text(c, text);
	free(text);
	c->lists_head += k;
	c->lists_len -= k;
	c->announced += k;
	if (c->lists_len == 0)
		c->lists_head = 0;
	return rc < 0 ? -1 : 1;
}

/* Sends the next `file` once every `have` is out (the server checks that the manifest is
 * held): 1 sent, 0 not yet, -1 if the write failed. */
static int client_send_file(struct client *c)
{
	if (!client_pay(c, 1, 0))
		return 0;
	const uint8_t *e = c->files[c->files_sent];
	char *text = wsmsg_client_file(e + HASH_LEN, e);
	if (text == NULL)
		return 0; /* out of memory: the tick tries again */
	int rc = client_write_text(c, text);
	free(text);
	c->files_sent++;
	return rc < 0 ? -1 : 1;
}

static int client_writable(struct client *c)
{
	if (c->blob_total == 0 && STAILQ_EMPTY(&c->outq)) {
		/* Announcements go when nothing else waits: answers and wants come first. */
		int rc = c->lists_len		     ? client_send_list(c)
			 : c->files_sent < c->nfiles ? client_send_file(c)
						     : 0;
		if (rc < 0)
			return -1;
		if (rc > 0 && (c->lists_len || c->files_sent < c->nfiles))
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->blob_total == 0) {
		struct client_out *o = STAILQ_FIRST(&c->outq);
		/* A text message waits for its token (a want, a decline: one each). An answer is
		 * binary, which the server does not count; the rare decline in its place goes
		 * unpaced. */
		if (o->text && !client_pay(c, 1, 0))
			return 0;
		STAILQ_REMOVE_HEAD(&c->outq, entry);
		int rc = 0;
		if (o->text) {
			rc = client_write_text(c, o->text);
		} else if (client_load_blob(c, o->hash) < 0) {
			char *decline = wsmsg_client_hash(WSMSG_DECLINE, o->hash);
			rc = decline ? client_write_text(c, decline) : 0;
			free(decline);
		}
		free(o->text);
		free(o);
		if (rc < 0)
			return -1;
	}
	if (c->blob_total) {
		/* lws masks the payload in place, so each fragment goes through the scratch. */
		size_t n = c->blob_total - c->blob_off;
		if (n > CLIENT_TX_CHUNK)
			n = CLIENT_TX_CHUNK;
		if (!client_rate_ok(c, n))
			return 0;
		memcpy(c->tx + LWS_PRE, c->blob + c->blob_off, n);
		int flags = c->blob_off == 0 ? LWS_WRITE_BINARY : LWS_WRITE_CONTINUATION;
		if (c->blob_off + n < c->blob_total)
			flags |= LWS_WRITE_NO_FIN;
		if (lws_write(c->wsi, c->tx + LWS_PRE, n, (enum lws_write_protocol)flags) < (int)n)
			return -1;
		c->blob_off += n;
		if (c->blob_off == c->blob_total) {
			c->served_blobs++;
			c->served_bytes += c->blob_total - HASH_LEN;
			c->blob_total = c->blob_off = 0;
		}
	}
	if (!STAILQ_EMPTY(&c->outq) || c->blob_total || c->lists_len || c->files_sent < c->nfiles)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* ---- server messages --------------------------------------------------------------------- */

static void on_welcome(struct client *c, struct wsmsg *m)
{
	int first = !c->ever_welcomed;
	const struct wsmsg_welcome *w = &m->welcome;
	c->max_blob = m->number;
	c->budget = (struct wsmsg_welcome){
	    .max_blob = m->number,
	    .msg_rate = w->msg_rate ? w->msg_rate : CLIENT_DEFAULT_MSG_RATE,
	    .msg_burst = w->msg_burst ? w->msg_burst : CLIENT_DEFAULT_MSG_BURST,
	    .max_wants = w->max_wants ? w->max_wants : CLIENT_DEFAULT_MAX_WANTS,
	    .max_holds = w->max_holds ? w->max_holds : CLIENT_DEFAULT_MAX_HOLDS};
	c->welcomed = c->ever_welcomed = 1;
	c->attempts = 0;
	c->lost_at = 0;
	/* Everything held is announced again: a new connection holds nothing yet. Its budget
	 * starts full, as the server's does. */
	client_lists_clear(c);
	c->msg_tokens = (double)c->budget.msg_burst;
	c->msg_tokens_at = client_now_us();
	c->announced = 0;
	c->files_sent = 0; /* and every file announced again, after the holdings */
	struct store_entry *e;
	for (size_t i = 0; (e = map_next(&c->store.map, &i));) {
		if (client_lists_push(c, e->hash) < 0) {
			progress_error(c->out, "out of memory");
			break;
		}
	}
	client_flush_haves(c);
	if (c->ops->welcome)
		c->ops->welcome(c, first);
}

static void on_request(struct client *c, struct wsmsg *m)
{
	if (store_get(&c->store, m->hash))
		client_enqueue(c, NULL, m->hash);
	else
		client_send_text(c, wsmsg_client_hash(WSMSG_DECLINE, m->hash));
}

static void on_count(struct client *c, struct wsmsg *m)
{
	if (c->ops->count)
		c->ops->count(c, m->hash, m->number);
}

static void on_error(struct client *c, struct wsmsg *m)
{
	char hex[HASH_HEX_LEN + 1] = "";
	if (m->has_hash)
		hash_to_hex(m->hash, hex);
	if (m->has_hash && strcmp(m->code, "hash_mismatch") == 0) {
		/* We sent wrong bytes (the file changed under us): the server dropped our claim. */
		progress_error(c->out, "the server rejected our copy of %.12s…: %s", hex,
			       m->message);
		store_remove(&c->store, m->hash);
		return;
	}
	if (m->has_hash && c->ops->error) {
		c->ops->error(c, m);
		return;
	}
	progress_error(c->out, "the server says %s%s%s: %s", m->code, hex[0] ? " for " : "", hex,
		       m->message);
}

static const struct {
	enum wsmsg_type type;
	void (*fn)(struct client *, struct wsmsg *);
} client_handlers[] = {
    {WSMSG_WELCOME, on_welcome},
    {WSMSG_REQUEST, on_request},
    {WSMSG_COUNT, on_count},
    {WSMSG_ERROR, on_error},
};

static void client_text(struct client *c)
{
	struct wsmsg_error err;
	if (wsmsg_parse_server((const char *)c->rx, c->rx_len, &c->msg, &err) < 0) {
		progress_error(c->out, "ignoring a message from the server: %s", err.message);
		return;
	}
	if (!c->welcomed && c->msg.type != WSMSG_WELCOME)
		return;
	for (size_t i = 0; i < sizeof(client_handlers) / sizeof(client_handlers[0]); i++)
		if (client_handlers[i].type == c->msg.type)
			client_handlers[i].fn(c, &c->msg);
}

static void client_binary(struct client *c)
{
	uint8_t got[HASH_LEN];
	if (c->rx_len < HASH_LEN || !c->welcomed)
		return;
	const uint8_t *data = c->rx + HASH_LEN;
	size_t len = c->rx_len - HASH_LEN;
	if (hash_compute(data, len, got) < 0 || memcmp(got, c->rx, HASH_LEN) != 0) {
		/* The server checks every blob; we check again and never trust one that fails. */
		memset(&c->msg, 0, sizeof(c->msg));
		c->msg.type = WSMSG_ERROR;
		memcpy(c->msg.hash, c->rx, HASH_LEN);
		c->msg.has_hash = 1;
		snprintf(c->msg.code, sizeof(c->msg.code), "hash_mismatch");
		snprintf(c->msg.message, sizeof(c->msg.message),
			 "the bytes received do not hash to their address");
		if (c->ops->error)
			c->ops->error(c, &c->msg);
		return;
	}
	if (c->ops->blob)
		c->ops->blob(c, c->rx, data, len);
}

/* Appends a fragment; dispatches a complete message. -1 closes the connection. */
static int client_receive(struct client *c, struct lws *wsi, const void *in, size_t len)
{
	if (lws_is_first_fragment(wsi)) {
		c->rx_len = 0;
		c->rx_binary = lws_frame_is_binary(wsi);
	}
	size_t limit = c->rx_binary ? HASH_LEN + c->max_blob : WSMSG_MAX_TEXT;
	size_t remaining = lws_remaining_packet_payload(wsi);
	if (c->rx_len + len + remaining > limit) {
		progress_error(c->out, "the server sent a message larger than its own limit");
		return -1;
	}
	if (buf_append(&c->rx, &c->rx_len, &c->rx_cap, in, len, remaining, limit) < 0)
		return -1;
	if (!lws_is_final_fragment(wsi) || remaining)
		return 0;
	if (c->rx_binary)
		client_binary(c);
	else
		client_text(c);
	c->rx_len = 0;
	return 0;
}

/* ---- connecting -------------------------------------------------------------------------- */

static void client_connect(lws_sorted_usec_list_t *sul);

static void client_lost(struct client *c, const char *why)
{
	char ws[1100];
	int was_welcomed = c->welcomed;
	c->wsi = NULL;
	c->state = CLIENT_IDLE;
	c->welcomed = 0;
	client_lists_clear(c);
	lws_sul_cancel(&c->msg_sul);
	c->rx_len = 0;
	client_clear_queue(c);
	if (c->done)
		return;
	url_ws(&c->cfg.server, ws, sizeof(ws));
	if (!c->ever_welcomed) {
		int tls_failed = c->cfg.server.tls && why && strstr(why, "SSL");
		progress_error(c->out, "cannot connect to %s: %s%s", ws, why ? why : "closed",
			       tls_failed ? " (is the server's certificate trusted? --cacert FILE "
					    "adds an authority, --insecure accepts any)"
					  : "");
		client_finish(c, CLI_EXIT_UNREACHABLE);
		return;
	}
	int64_t now = now_ms();
	if (was_welcomed) {
		c->lost_at = now;
		progress_note(c->out, "lost the connection to %s; reconnecting", ws);
	}
	if (!c->cfg.persistent && now - c->lost_at > CLIENT_GIVE_UP_MS) {
		progress_error(c->out, "cannot reach %s any more: %s", ws, why ? why : "closed");
		client_finish(c, CLI_EXIT_UNREACHABLE);
		return;
	}
	int64_t delay = CLIENT_BACKOFF_MIN_MS << (c->attempts < 5 ? c->attempts : 5);
	if (delay > CLIENT_BACKOFF_MAX_MS)
		delay = CLIENT_BACKOFF_MAX_MS;
	c->attempts++;
	delay = delay / 2 + (int64_t)(random_u64() % (uint64_t)(delay / 2 + 1));
	lws_sul_schedule(c->ctx, 0, &c->retry_sul, client_connect, delay * LWS_US_PER_MS);
}

static void client_connect(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, retry_sul);
	struct lws_client_connect_info ci;
	if (c->done || c->state != CLIENT_IDLE)
		return;
	memset(&ci, 0, sizeof(ci));
	ci.context = c->ctx;
	ci.address = c->cfg.server.host;
	ci.port = c->cfg.server.port;
	ci.path = c->cfg.server.ws_path;
	ci.host = c->cfg.server.authority;
	/* No Origin: that header is how a browser names the page that opens a socket. */
	ci.protocol = CLIENT_PROTOCOL;
	ci.pwsi = &c->wsi; /* set before any callback, NULL again if the attempt fails */
	if (c->cfg.server.tls) {
		ci.ssl_connection = LCCSCF_USE_SSL;
		if (c->cfg.insecure)
			ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
					     LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
					     LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	}
	c->state = CLIENT_CONNECTING;
	if (lws_client_connect_via_info(&ci) == NULL && c->state == CLIENT_CONNECTING)
		client_lost(c, "the connection could not be started");
}

static void client_tick(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, tick_sul);
	if (c->done)
		return;
	client_flush_haves(c);
	if (c->ops->wake)
		c->ops->wake(c);
	if (c->ops->tick && !c->done)
		c->ops->tick(c);
	client_flush_haves(c);
	lws_sul_schedule(c->ctx, 0, &c->tick_sul, client_tick, CLIENT_TICK_MS * LWS_US_PER_MS);
}

static int client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	struct client *c = client_of(wsi);
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->wsi = wsi;
		c->state = CLIENT_OPEN;
		c->welcomed = 0;
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c->state != CLIENT_IDLE && wsi == c->wsi)
			client_lost(c, in ? (const char *)in : NULL);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		if (c->state != CLIENT_IDLE && wsi == c->wsi)
			client_lost(c, "the server closed the connection");
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (c->state != CLIENT_OPEN || wsi != c->wsi)
			return -1;
		/* New holdings are announced by the tick, ten `have`s a second at most. */
		if (client_receive(c, wsi, in, len) < 0)
			return -1;
		if (c->done)
			return -1;
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c->state != CLIENT_OPEN || wsi != c->wsi)
			return -1;
		return client_writable(c);
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* lws_cancel_service() from a worker thread (or the signal handler) */
		if (c && !c->done && c->ops->wake)
			c->ops->wake(c);
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols client_protocols[] = {
    {CLIENT_PROTOCOL, client_callback, 0, 65536, 0, NULL, CLIENT_TX_CHUNK},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void client_lws_log(int level, const char *line)
{
	(void)level;
	fprintf(stderr, "ephemeral: lws: %s", line);
}

int client_init(struct client *c, const struct client_config *cfg, const struct client_ops *ops,
		void *user, struct progress *out)
{
	struct lws_context_creation_info info;
	memset(c, 0, sizeof(*c));
	STAILQ_INIT(&c->outq);
	c->cfg = *cfg;
	c->ops = ops;
	c->user = user;
	c->out = out;
	c->max_blob = CLIENT_DEFAULT_BLOB;
	/* Until a welcome names them (nothing but a want goes out before one anyway). */
	c->budget = (struct wsmsg_welcome){.max_blob = CLIENT_DEFAULT_BLOB,
					   .msg_rate = CLIENT_DEFAULT_MSG_RATE,
					   .msg_burst = CLIENT_DEFAULT_MSG_BURST,
					   .max_wants = CLIENT_DEFAULT_MAX_WANTS,
					   .max_holds = CLIENT_DEFAULT_MAX_HOLDS};
	c->msg_tokens = CLIENT_DEFAULT_MSG_BURST;
	store_init(&c->store);
	c->tx = malloc(LWS_PRE + CLIENT_TX_SIZE);
	if (c->tx == NULL) {
		progress_error(out, "out of memory");
		return -1;
	}
	lws_set_log_level(cfg->lws_logs ? LLL_ERR | LLL_WARN : 0, client_lws_log);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = client_protocols;
	info.user = c;
	info.fd_limit_per_thread = 16;
	if (cfg->server.tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = cfg->cacert;
	}
	c->ctx = lws_create_context(&info);
	if (c->ctx == NULL) {
		progress_error(out, "cannot set up the WebSocket client%s",
			       cfg->cacert ? " (is the --cacert file readable?)" : "");
		return -1;
	}
	return 0;
}

void client_finish(struct client *c, int exit_code)
{
	if (c->done)
		return;
	c->done = 1;
	c->exit_code = exit_code;
	lws_cancel_service(c->ctx);
}

int client_run(struct client *c)
{
	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = client_on_signal;
	client_signal_ctx = c->ctx;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	lws_sul_schedule(c->ctx, 0, &c->retry_sul, client_connect, 1);
	lws_sul_schedule(c->ctx, 0, &c->tick_sul, client_tick, CLIENT_TICK_MS * LWS_US_PER_MS);
	while (!c->done) {
		if (client_signalled) {
			client_finish(c, c->interrupt_code);
			break;
		}
		if (lws_service(c->ctx, 0) < 0)
			break;
	}
	lws_sul_cancel(&c->tick_sul);
	lws_sul_cancel(&c->retry_sul);
	lws_sul_cancel(&c->rate_sul);
	lws_sul_cancel(&c->msg_sul);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	progress_clear(c->out);
	return c->exit_code;
}

void client_destroy(struct client *c)
{
	c->done = 1;
	if (c->ctx) {
		client_signal_ctx = NULL;
		lws_context_destroy(c->ctx);
		c->ctx = NULL;
	}
	client_clear_queue(c);
	store_free(&c->store);
	free(c->tx);
	free(c->lists);
	free(c->files);
	c->files = NULL;
	free(c->blob);
	free(c->rx);
	c->tx = c->blob = c->rx = NULL;
	c->lists = NULL;
}
