/*
 * peer.c — verified blobs on their way to waiters, and the links between gateways that carry
 * them (docs/HUB-PROTOCOL.md, "The blob path"). The hub decides where a blob goes; the bytes
 * never pass through it.
 *
 * Owns kept_blob, parked_route and peer_link, the peer ROUTER socket (bound at gateway.peer_bind,
 * announced to the hub in HELLO as gateway.peer_endpoint) and one DEALER per other gateway's
 * endpoint. The hub's REQUEST names the waiters it knows of (peer_request): a blob verified here
 * (session.c) is kept under a token, announced to the hub in this turn's BLOB, and given at once
 * to those (peer_keep), the BLOB entry then saying how many got it. The hub answers with routes
 * for the waiters who came since, if any, one per gateway with waiters: this gateway's own
 * waiters get the blob in process; another gateway's get one DELIVER over its DEALER
 * (zmq_msg_copy shares the buffer, so one transfer serves everyone). The settled mark of the
 * hub's next REQUEST, ROUTE or COUNT says every route of the blob has come (peer_settle): it goes
 * then. What was delivered by route is reported to the hub (DELIVERED, for the stats); waiters
 * that cannot be reached are reported too (UNDELIVERED), and the hub fails them at once instead
 * of letting them wait for their timeout.
 *
 * A DEALER has ZMQ_IMMEDIATE, so a send fails at once when no connection to that gateway is up:
 * a route over a link younger than PEER_CONNECT_MS (still connecting) is parked and retried every
 * PEER_RETRY_MS; any other failure (the gateway is gone, or its queue is at PEER_SNDHWM: a
 * gateway that cannot keep up) is reported. A blob the hub never routes (it restarted) is freed
 * after PEER_KEEP_MS; a link unused for PEER_IDLE_MS is closed. Received DELIVERs are not hashed
 * again: only gateways speak on these links, and the holder's gateway verified the bytes.
 *
 * ZeroMQ has no receipts, so a DELIVER on a link that breaks is lost unseen. Monitors say when a
 * connection is lost (ZMTP heartbeats, PEER_PING_MS, close one that goes silent): the receiving
 * gateway then sends the hub its open wants again (peer_endpoint_events), and the sending one
 * counts the link as new while ZeroMQ dials it again (peer_link_failed_handshake).
 *
 * That holds because of CurveZMQ: a gateway with keys to the hub (hub.public_key,
 * gateway.secret_key) makes every peer socket with its own key pair (peer_socket): the ROUTER a
 * CURVE server whose ZAP handler lets in only the keys the hub names in PEER_KEYS (the gateways
 * it admitted), each DEALER a client that insists on the key the hub gave in ROUTE with the
 * endpoint. So no gateway takes another's word for who it is, and no file is copied between
 * gateways. Without keys the peer endpoint must be on loopback (peer_open refuses otherwise).
 */
#include "gateway.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PEER_CONNECT_MS	     1000  /* a new link may take this long to connect */
#define PEER_RETRY_MS	     5	   /* parked routes are tried again this often */
#define PEER_KEEP_MS	     10000 /* a kept blob the hub has not settled by then is freed */
#define PEER_IDLE_MS	     60000 /* a link unused this long is closed */
#define PEER_SNDHWM	     1000 /* DELIVERs queued to one gateway before it counts as unreachable */
#define PEER_REDIAL_MS	     100 /* a link whose handshake failed is dialled again at most this often */
#define PEER_PING_MS	     500  /* ZMTP heartbeats on every peer connection, both ways */
#define PEER_DEAD_MS	     2000 /* a connection that answers no heartbeat this long is closed */
#define PEER_DELIVERED_BATCH 1024 /* DELIVERED entries sent at once, even within one turn */

struct peer_link {
	TAILQ_ENTRY(peer_link) entry;
	char endpoint[HUBPROTO_MAX_ENDPOINT + 1];
	char server_key[ZSEC_Z85_LEN + 1]; /* the key its gateway must prove (CurveZMQ), or "" */
	void *sock;			   /* DEALER, ZMQ_IMMEDIATE */
	void *monitor;			   /* PAIR: sock's failed handshakes (NULL: not watched) */
	int64_t since_ms, used_ms;	   /* dialled, last sent to */
	int64_t redial_ms;		   /* dialled again after a failed handshake */
	int refused, refusal_logged;
};

struct parked_route {
	TAILQ_ENTRY(parked_route) entry;
	struct peer_link *link;
	int64_t until_ms;
	size_t nconns;
	uint8_t conns[]; /* u64 LE each */
};

/* The waiters a REQUEST named for one holder and hash, kept until its answer (peer_keep), a
 * decline or its close (interest_settle): routes as the REQUEST gave them, the holder's own
 * gateway last, each (u16 LE address length, the address, u32 LE n, n connections u64 LE). */
struct peer_named {
	int64_t at_ms;
	size_t len, cap;
	uint8_t buf[]; /* cap bytes: one allocation per request */
};

struct kept_blob {
	TAILQ_ENTRY(kept_blob) entry;
	uint64_t token;
	uint8_t hash[HASH_LEN];
	zmq_msg_t frame; /* hash, then blob */
	int64_t expires_ms;
	uint32_t delivered; /* deliveries the hub has not been told of */
	int routed;	    /* settled: the hub sent every route it will */
	int report;	    /* the hub waits for a DELIVERED: routes, or BLOB said more follow */
	int shared;	    /* given to a peer DEALER: ZeroMQ's I/O thread may read it any time */
	int given_here;	    /* queued for this gateway's clients, who may borrow its bytes */
	TAILQ_HEAD(, parked_route) parked;
};

static void peer_free_frame(void *data, void *hint)
{
	(void)hint;
	free(data);
}

/* The ZAP domain of the peer endpoint, in the refusal log: "refused a connection to <this>". */
#define PEER_ZAP_DOMAIN "peer endpoint"

void *peer_socket(struct gateway *gw, int type, const char *server_z85)
{
	char err[256];
	int ivl = PEER_PING_MS, timeout = PEER_DEAD_MS;
	void *sock = hubproto_socket(gw->zctx, type);
	/* A peer that stops answering (stopped, or the network between drops everything) closes
	 * the connection like a reset one: the DEALER stops queueing for it (ZMQ_IMMEDIATE) and
	 * the receiving end learns that DELIVERs may be lost (peer_endpoint_events). */
	if (sock && (zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl)) < 0 ||
		     zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout)) < 0)) {
		log_warnx("%s: %s", __func__, zmq_strerror(zmq_errno()));
		zmq_close(sock);
		return NULL;
	}
	if (sock == NULL || !gw->peer_curve)
		return sock;
	if ((server_z85 ? zsec_client_socket(sock, &gw->keys, server_z85, err, sizeof(err))
			: zsec_server_socket(sock, &gw->keys, &gw->zap, PEER_ZAP_DOMAIN, err,
					     sizeof(err))) < 0) {
		log_warnx("%s: %s", __func__, err);
		zmq_close(sock);
		return NULL;
	}
	return sock;
}

static void peer_report_undelivered(struct gateway *gw, const uint8_t *hash, const char *endpoint,
				    const uint8_t *conns, size_t n)
{
	struct hubproto_out o = {.cmd = HUB_UNDELIVERED,
				 .hash = hash,
				 .list = conns,
				 .list_count = n,
				 .data = endpoint,
				 .data_len = strlen(endpoint)};
	hub_link_send(gw, &o);
}

/* Gives the frame to each listed connection of this gateway that still wants it; -1 if it could
 * give it to none (out of memory), which the caller answers. A copy deferred for a slow reader
 * counts as given, as one in a DELIVER to another gateway does (whose reader may defer it too):
 * its want comes to the hub again as a request of its own, so requests_total = served + failed
 * + open holds wherever the reader is. */
static int64_t peer_deliver_here(struct gateway *gw, const uint8_t *hash, zmq_msg_t *frame,
				 int shared, const uint8_t *conns, size_t n)
{
	struct outbuf *b = outbuf_blob(frame, shared);
	uint32_t delivered = 0;
	if (b == NULL) {
		log_warnx("%s: out of memory: %zu waiters told not_found", __func__, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct session *s = session_find(gw, get_u64(conns + 8 * i));
		if (s && session_deliver(s, hash, b) != 0)
			delivered++;
	}
	outbuf_release(b);
	return delivered;
}

static void peer_link_close(struct gateway *gw, struct peer_link *l)
{
	TAILQ_REMOVE(&gw->peer_links, l, entry);
	if (l->monitor) {
		zmq_socket_monitor(l->sock, NULL, 0);
		zmq_close(l->monitor);
	}
	zmq_close(l->sock);
	free(l);
}

#define PEER_MONITORED                                                                             \
	(ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                           \
	 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

/* A PAIR socket that receives sock's lost connections and failed handshakes, or NULL. */
static void *peer_monitor_open(struct gateway *gw, void *sock)
{
	char addr[64];
	snprintf(addr, sizeof(addr), "inproc://peer-link-%llu",
		 (unsigned long long)++gw->next_link);
	void *monitor = zmq_socket(gw->zctx, ZMQ_PAIR);
	if (monitor == NULL || zmq_socket_monitor(sock, addr, PEER_MONITORED) < 0 ||
	    zmq_connect(monitor, addr) < 0) {
		if (monitor)
			zmq_close(monitor);
		return NULL;
	}
	return monitor;
}

/* The next event a monitor reported (ZMQ_EVENT_*), or 0 when none is waiting. */
static int peer_monitor_next(void *monitor)
{
	zmq_msg_t event, addr;
	uint16_t id = 0;
	zmq_msg_init(&event);
	zmq_msg_init(&addr);
	if (zmq_msg_recv(&event, monitor, ZMQ_DONTWAIT) >= 0) {
		/* The frame is (event u16, value u32) in host order; a malformed one still counts.
		 */
		id = UINT16_MAX;
		if (zmq_msg_size(&event) >= sizeof(id))
			memcpy(&id, zmq_msg_data(&event), sizeof(id));
		if (zmq_msg_more(&event))
			zmq_msg_recv(&addr, monitor, 0); /* then the address */
	}
	zmq_msg_close(&event);
	zmq_msg_close(&addr);
	return id;
}

/* Watches the link: ZeroMQ reconnects a broken connection by itself, but gives up on one whose
 * handshake failed (peer_link_redial dials again). */
static void peer_link_watch(struct gateway *gw, struct peer_link *l)
{
	l->monitor = peer_monitor_open(gw, l->sock);
	if (l->monitor == NULL)
		log_warnx("%s: %s: a refused handshake will not be retried", __func__,
			  zmq_strerror(zmq_errno()));
}

/*
 * Reads the link's monitor: 1 if a handshake failed since last asked. A lost connection, which
 * ZeroMQ dials again by itself, makes the link count as new: a route waits PEER_CONNECT_MS for
 * it to come back (the other gateway restarted, a blip) instead of failing its waiters at once.
 */
static int peer_link_failed_handshake(struct peer_link *l)
{
	int failed = 0, e;
	for (int budget = 64; l->monitor && budget > 0 && (e = peer_monitor_next(l->monitor));
	     budget--) {
		if (e == ZMQ_EVENT_DISCONNECTED)
			l->since_ms = now_ms();
		else
			failed = 1;
	}
	return failed;
}

/*
 * After a failed send: if the link's handshake failed (the other gateway had not yet heard from
 * the hub that our key is a gateway's, say), dials again, at most every PEER_REDIAL_MS, and
 * counts the link as new (a route may wait PEER_CONNECT_MS for it). Keeps errno.
 */
static void peer_link_redial(struct peer_link *l)
{
	int saved = errno;
	int64_t now = now_ms();
	l->refused |= peer_link_failed_handshake(l);
	if (l->refused && now >= l->redial_ms + PEER_REDIAL_MS) {
		if (!l->refusal_logged)
			log_warnx("gateway at %s refused our handshake (our key is not among those "
				  "the hub gave it, or another key answers there): dialling again "
				  "while there is something to send (logged once per link)",
				  l->endpoint);
		l->refusal_logged = 1;
		l->refused = 0;
		l->redial_ms = now;
		zmq_disconnect(l->sock, l->endpoint); /* (ZeroMQ may have dropped it already) */
		if (zmq_connect(l->sock, l->endpoint) == 0)
			l->since_ms = now;
	}
	errno = saved;
}

/* The link to that address: the same endpoint with another key (its gateway restarted with a new
 * key pair) is another link; the old one idles out. */
static struct peer_link *peer_link_get(struct gateway *gw, const struct hubproto_peer_address *a)
{
	struct peer_link *l;
	TAILQ_FOREACH(l, &gw->peer_links, entry)
	if (strcmp(l->endpoint, a->endpoint) == 0 && strcmp(l->server_key, a->public_z85) == 0)
		return l;
	if (gw->peer_curve && a->public_z85[0] == '\0') {
		log_warnx("%s: the hub gave no key for the gateway at %s: not connecting in the "
			  "clear",
			  __func__, a->endpoint);
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	int one = 1, hwm = PEER_SNDHWM;
	l->sock = peer_socket(gw, ZMQ_DEALER, a->public_z85);
	if (l->sock != NULL)
		peer_link_watch(gw, l);
	if (l->sock == NULL || zmq_setsockopt(l->sock, ZMQ_IMMEDIATE, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(l->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
	    zmq_connect(l->sock, a->endpoint) < 0) {
		log_warnx("%s: cannot connect to gateway at %s: %s", __func__, a->endpoint,
			  zmq_strerror(zmq_errno()));
		if (l->monitor) {
			zmq_socket_monitor(l->sock, NULL, 0);
			zmq_close(l->monitor);
		}
		if (l->sock)
			zmq_close(l->sock);
		free(l);
		return NULL;
	}
	snprintf(l->endpoint, sizeof(l->endpoint), "%s", a->endpoint);
	snprintf(l->server_key, sizeof(l->server_key), "%s", a->public_z85);
	l->since_ms = l->used_ms = now_ms();
	TAILQ_INSERT_TAIL(&gw->peer_links, l, entry);
	return l;
}

/*
 * The hub sends the holder's own waiters' ROUTE last, so a frame normally goes to peers before
 * any client of ours may borrow its bytes (outq.c). Should a peer still come after (a parked
 * route, or a hub that orders otherwise), it gets a copy, not the buffer in use.
 */
static int peer_link_send(struct peer_link *l, struct kept_blob *k, const uint8_t *conns, size_t n)
{
	struct hubproto_out o = {
	    .cmd = HUB_DELIVER, .hash = k->hash, .list = conns, .list_count = n};
	if (k->given_here) {
		o.data = zmq_msg_data(&k->frame);
		o.data_len = zmq_msg_size(&k->frame);
	} else {
		o.data_msg = &k->frame;
	}
	l->used_ms = now_ms();
	int rc = hubproto_send(l->sock, NULL, 0, &o);
	if (rc == 0)
		k->shared = 1;
	return rc;
}

static void peer_schedule_retry(struct gateway *gw);

/* Sends the waiters on another gateway their blob, parks the route, or reports it. */
static void peer_send_route(struct gateway *gw, struct kept_blob *k,
			    const struct hubproto_peer_address *a, const uint8_t *conns, size_t n)
{
	const char *endpoint = a->endpoint;
	struct peer_link *l = peer_link_get(gw, a);
	if (l && peer_link_send(l, k, conns, n) == 0) {
		k->delivered += (uint32_t)n;
		return;
	}
	if (l)
		peer_link_redial(l);
	int64_t now = now_ms();
	if (l && errno == EAGAIN && now < l->since_ms + PEER_CONNECT_MS) {
		struct parked_route *r = malloc(sizeof(*r) + 8 * n);
		if (r) {
			r->link = l;
			r->until_ms = l->since_ms + PEER_CONNECT_MS;
			r->nconns = n;
			memcpy(r->conns, conns, 8 * n);
			TAILQ_INSERT_TAIL(&k->parked, r, entry);
			peer_schedule_retry(gw);
			return;
		}
	}
	log_warnx("%s: gateway at %s cannot be reached (%s): %zu waiters told not_found", __func__,
		  endpoint, l ? zmq_strerror(errno) : "no link", n);
	peer_report_undelivered(gw, k->hash, endpoint, conns, n);
}

static void kept_free(struct gateway *gw, struct kept_blob *k)
{
	struct parked_route *r;
	TAILQ_REMOVE(&gw->kept, k, entry);
	while ((r = TAILQ_FIRST(&k->parked))) {
		TAILQ_REMOVE(&k->parked, r, entry);
		free(r);
	}
	zmq_msg_close(&k->frame);
	free(k);
}

void peer_flush_delivered(struct gateway *gw)
{
	if (gw->delivered_len == 0)
		return;
	struct hubproto_out o = {.cmd = HUB_DELIVERED,
				 .list = gw->delivered,
				 .list_count = gw->delivered_len / HUBPROTO_DELIVERED_ENTRY};
	hub_link_send(gw, &o);
	gw->delivered_len = 0;
}

/* Once settled and every route is done, tells the hub what was delivered since its BLOB (in this
 * turn's DELIVERED) if it waits for that, and lets the blob go. */
static void kept_finish_if_done(struct gateway *gw, struct kept_blob *k)
{
	if (!k->routed || !TAILQ_EMPTY(&k->parked))
		return;
	if (k->report && hubproto_delivered_put(&gw->delivered, &gw->delivered_len,
						&gw->delivered_cap, k->token, k->delivered) < 0) {
		uint8_t e[HUBPROTO_DELIVERED_ENTRY]; /* out of memory: this one goes alone */
		hubproto_delivered_entry(e, k->token, k->delivered);
		struct hubproto_out o = {.cmd = HUB_DELIVERED, .list = e, .list_count = 1};
		hub_link_send(gw, &o);
	}
	if (gw->delivered_len >= PEER_DELIVERED_BATCH * HUBPROTO_DELIVERED_ENTRY)
		peer_flush_delivered(gw);
	kept_free(gw, k);
}

static struct kept_blob *kept_find(struct gateway *gw, uint64_t token)
{
	struct kept_blob *k;
	TAILQ_FOREACH(k, &gw->kept, entry)
	if (k->token == token)
		return k;
	return NULL;
}

void peer_flush_blobs(struct gateway *gw)
{
	if (gw->blobs_out_len == 0)
		return;
	struct hubproto_out o = {.cmd = HUB_BLOB,
				 .list = gw->blobs_out,
				 .list_count = gw->blobs_out_len / HUBPROTO_BLOB_ENTRY};
	gw->blobs_out_len = 0; /* first: hub_link_send flushes before it sends */
	if (hub_link_send(gw, &o) == 0)
		return;
	/* The hub is away: its wants are announced again, and these blobs go. */
	for (size_t i = 0; i < o.list_count; i++) {
		struct kept_blob *k = kept_find(gw, hubproto_blob_get(gw->blobs_out, i).token);
		if (k)
			kept_free(gw, k);
	}
}

void peer_named_free(struct peer_named *pn)
{
	free(pn);
}

/* Adds a route of a REQUEST to *pn (made if NULL); -1 when out of memory (*pn is kept). */
static int peer_named_add(struct peer_named **pn, const struct hubproto_route *r,
			  const uint8_t *conns)
{
	struct peer_named *p = *pn;
	size_t need = 2 + r->addr_len + 4 + 8 * r->nconns, len = p ? p->len : 0;
	if (p == NULL || len + need > p->cap) {
		size_t cap = p ? 2 * (len + need) : need + 128; /* (one route, usually) */
		p = realloc(p, sizeof(*p) + cap);
		if (p == NULL)
			return -1;
		if (*pn == NULL) {
			p->at_ms = now_ms();
			p->len = 0;
		}
		p->cap = cap;
		*pn = p;
	}
	uint8_t *e = p->buf + p->len;
	put_u16(e, (uint16_t)r->addr_len);
	if (r->addr_len) /* (none: the receiver's own, addr NULL) */
		memcpy(e + 2, r->addr, r->addr_len);
	put_u32(e + 2 + r->addr_len, (uint32_t)r->nconns);
	memcpy(e + 2 + r->addr_len + 4, conns, 8 * r->nconns);
	p->len += need;
	return 0;
}

static void peer_route_one(struct gateway *gw, struct kept_blob *k, const struct hubproto_route *r,
			   const uint8_t *conns);

/*
 * Gives kept blob k to the waiters a REQUEST named, as a ROUTE's routes (not its last: that ends
 * the blob's life), unless they are older than gateway.want_timeout_ms (their wants ended).
 */
static void peer_named_deliver(struct gateway *gw, struct kept_blob *k, struct peer_named *pn)
{
	if (pn == NULL || now_ms() - pn->at_ms > gw->want_timeout_ms)
		return;
	for (size_t off = 0; off + 6 <= pn->len;) {
		struct hubproto_route r = {.token = k->token, .hash = k->hash};
		r.addr_len = get_u16(pn->buf + off);
		r.addr = pn->buf + off + 2;
		r.nconns = get_u32(pn->buf + off + 2 + r.addr_len);
		off += 2 + r.addr_len + 4;
		peer_route_one(gw, k, &r, pn->buf + off);
		off += 8 * r.nconns;
	}
}

void peer_request(struct gateway *gw, struct hubmsg *m)
{
	uint8_t here[8 * HUBPROTO_REQUEST_WAITERS]; /* room for a REQUEST as the hub sends them */
	uint8_t *conns =
	    m->list_count <= HUBPROTO_REQUEST_WAITERS ? here : malloc(8 * m->list_count);
	struct peer_named *named = NULL;
	struct hubproto_route r;
	const char *why = NULL;
	size_t it = 0;
	int rc, oom = 0;
	if (conns == NULL) {
		/* The hub asks the next holders at their holder timeout. */
		log_warnx("%s: out of memory: a REQUEST of %zu entries dropped", __func__,
			  m->list_count);
		return;
	}
	while ((rc = hubproto_route_next(m, &it, &r, conns, &why)) > 0) {
		if (r.nconns && !oom && peer_named_add(&named, &r, conns) < 0)
			oom = 1;
		if (!r.last)
			continue;
		if (oom) {
			/* The hub counts on this answer to serve them: it asks another holder
			 * now, with a REQUEST it names them in again. */
			log_warnx("%s: out of memory: a request passed on", __func__);
			struct hubproto_out o = {
			    .cmd = HUB_FAIL, .id = r.token, .hash = r.hash, .value = HUB_FAIL_GONE};
			hub_link_send(gw, &o);
			peer_named_free(named);
		} else {
			session_request(gw, r.token, r.hash, named);
		}
		named = NULL;
		oom = 0;
	}
	if (rc < 0)
		log_warnx("%s: a REQUEST dropped from its entry %zu on: %s", __func__, it, why);
	peer_named_free(named);
	if (conns != here)
		free(conns);
}

int peer_keep(struct gateway *gw, uint64_t holder, uint8_t *frame, size_t len,
	      struct peer_named *named)
{
	struct kept_blob *k = calloc(1, sizeof(*k));
	if (k == NULL || zmq_msg_init_data(&k->frame, frame, len, peer_free_frame, NULL) < 0) {
		log_warnx("%s: out of memory: a verified blob dropped", __func__);
		free(k);
		free(frame);
		peer_named_free(named);
		return -1;
	}
	TAILQ_INIT(&k->parked);
	k->token = ++gw->next_token;
	memcpy(k->hash, frame, HASH_LEN);
	k->expires_ms = now_ms() + PEER_KEEP_MS;
	k->report = 1; /* until its BLOB entry says what the named waiters got */
	TAILQ_INSERT_TAIL(&gw->kept, k, entry); /* (tokens in order: peer_settle) */
	uint32_t size = (uint32_t)(len - HASH_LEN);
	size_t at = gw->blobs_out_len / HUBPROTO_BLOB_ENTRY;
	/* The BLOB entry first: an UNDELIVERED about a named waiter must come after it (any
	 * message to the hub sends this turn's BLOB before it). */
	if (hubproto_blob_put(&gw->blobs_out, &gw->blobs_out_len, &gw->blobs_out_cap, k->token,
			      k->hash, size, holder, HUBPROTO_BLOB_MORE) < 0) {
		uint8_t e[HUBPROTO_BLOB_ENTRY]; /* out of memory: this one goes alone */
		hubproto_blob_entry(e, k->token, k->hash, size, holder, HUBPROTO_BLOB_MORE);
		struct hubproto_out o = {.cmd = HUB_BLOB, .list = e, .list_count = 1};
		if (hub_link_send(gw, &o) < 0) {
			kept_free(gw, k); /* (the hub is away: its wants are announced again) */
			k = NULL;
		}
	}
	if (k)
		peer_named_deliver(gw, k, named);
	/* Still unsent (no UNDELIVERED went first): the entry says what the named waiters got, and
	 * only routes still to come, or parked ones, owe the hub a DELIVERED. */
	if (k && gw->blobs_out_len > at * HUBPROTO_BLOB_ENTRY &&
	    hubproto_blob_get(gw->blobs_out, at).token == k->token) {
		int parked = !TAILQ_EMPTY(&k->parked);
		hubproto_blob_set_delivered(gw->blobs_out, at,
					    k->delivered | (parked ? HUBPROTO_BLOB_MORE : 0));
		k->delivered = 0;
		k->report = parked;
	}
	peer_named_free(named);
	return 0;
}

void peer_settle(struct gateway *gw, uint64_t upto)
{
	struct kept_blob *k, *ktmp;
	TAILQ_FOREACH_SAFE(k, &gw->kept, entry, ktmp)
	{
		if (k->token > upto)
			break;
		if (!k->routed) {
			k->routed = 1;
			kept_finish_if_done(gw, k);
		}
	}
}

/* One route of a ROUTE, or of a REQUEST's named waiters: the blob's waiters on one gateway (conns:
 * r->nconns of them); k is the blob r->token names, or NULL (looked for here). */
static void peer_route_one(struct gateway *gw, struct kept_blob *k, const struct hubproto_route *r,
			   const uint8_t *conns)
{
	struct hubproto_peer_address a;
	const char *why;
	int usable = hubproto_peer_address_parse(r->addr, r->addr_len, &a, &why) == 0;
	if (!usable)
		log_warnx("%s: a ROUTE with a bad peer address: %s", __func__, why);
	if (k == NULL)
		k = kept_find(gw, r->token);
	int kept = k != NULL && memcmp(k->hash, r->hash, HASH_LEN) == 0;
	/* Freed already (PEER_KEEP_MS), or nowhere to send it: its waiters must not wait for
	 * nothing (unless whose they are is unknown: then their want timeout ends them). */
	if ((!kept || !usable) && r->nconns && (usable || a.endpoint[0] != '\0'))
		peer_report_undelivered(gw, r->hash, a.endpoint, conns, r->nconns);
	if (!kept)
		return;
	if (r->nconns)
		k->report = 1;
	if (usable && r->nconns && a.endpoint[0] == '\0') {
		int shared = k->shared || !TAILQ_EMPTY(&k->parked);
		int64_t n = peer_deliver_here(gw, k->hash, &k->frame, shared, conns, r->nconns);
		if (n < 0) /* the hub answers them (NOT_FOUND), and counts them failed */
			peer_report_undelivered(gw, k->hash, "", conns, r->nconns);
		else
			k->delivered += (uint32_t)n;
		if (!shared)
			k->given_here = 1;
	} else if (usable && r->nconns) {
		peer_send_route(gw, k, &a, conns, r->nconns);
	}
	/* (its last route needs no mark: the ROUTE's settled mark covers it, peer_settle) */
}

void peer_route(struct gateway *gw, struct hubmsg *m)
{
	uint8_t *conns = malloc(8 * (m->list_count ? m->list_count : 1));
	struct hubproto_route r;
	const char *why = NULL;
	size_t it = 0;
	int rc;
	if (conns == NULL) {
		/* Their kept blobs go when this ROUTE's mark settles them, their waiters at their
		 * want timeout. */
		log_warnx("%s: out of memory: a ROUTE of %zu entries dropped", __func__,
			  m->list_count);
		return;
	}
	while ((rc = hubproto_route_next(m, &it, &r, conns, &why)) > 0)
		peer_route_one(gw, NULL, &r, conns);
	if (rc < 0)
		log_warnx("%s: a ROUTE dropped from its entry %zu on: %s", __func__, it, why);
	free(conns);
}

void peer_forget_kept(struct gateway *gw)
{
	gw->blobs_out_len = 0;
	struct kept_blob *k;
	while ((k = TAILQ_FIRST(&gw->kept)))
		kept_free(gw, k);
}

/* Parked routes: sent once their link is up, reported once it is too late. */
static int peer_retry_parked(struct gateway *gw)
{
	int64_t now = now_ms();
	int left = 0;
	struct kept_blob *k, *ktmp;
	TAILQ_FOREACH_SAFE(k, &gw->kept, entry, ktmp)
	{
		struct parked_route *r, *rtmp;
		TAILQ_FOREACH_SAFE(r, &k->parked, entry, rtmp)
		{
			if (peer_link_send(r->link, k, r->conns, r->nconns) == 0) {
				k->delivered += (uint32_t)r->nconns;
			} else if ((peer_link_redial(r->link), errno != EAGAIN) ||
				   now >= r->until_ms) {
				log_warnx("%s: gateway at %s not reached in %d ms: %zu waiters "
					  "told not_found",
					  __func__, r->link->endpoint, PEER_CONNECT_MS, r->nconns);
				peer_report_undelivered(gw, k->hash, r->link->endpoint, r->conns,
							r->nconns);
			} else {
				left++;
				continue;
			}
			TAILQ_REMOVE(&k->parked, r, entry);
			free(r);
		}
		kept_finish_if_done(gw, k);
	}
	return left;
}

static void peer_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct gateway *gw = lws_container_of(t, struct gateway, peer_timer);
	gw->peer_retry_scheduled = 0;
	if (peer_retry_parked(gw))
		peer_schedule_retry(gw);
	peer_flush_delivered(gw);
}

static void peer_schedule_retry(struct gateway *gw)
{
	if (gw->peer_retry_scheduled)
		return;
	gw->peer_retry_scheduled = 1;
	timer_arm(gw, &gw->peer_timer, peer_retry, PEER_RETRY_MS);
}

static void peer_on_deliver(struct gateway *gw, struct hubmsg *m)
{
	if (m->data_len < HASH_LEN || memcmp(m->data, m->hash, HASH_LEN) != 0) {
		log_warnx("%s: a DELIVER whose frame does not start with its hash", __func__);
		return;
	}
	if (peer_deliver_here(gw, m->hash, m->data_frame, 0, m->list, m->list_count) < 0)
		for (size_t i = 0; i < m->list_count; i++) /* (the sender counted them served) */
			interest_not_found(gw, get_u64(m->list + 8 * i), m->hash);
}

/*
 * A connection into the peer endpoint was lost (its gateway closed it, or it stopped answering
 * ZMTP heartbeats): a DELIVER on it may have gone with it, and the hub counted it delivered. So
 * every open want of this gateway goes to the hub again: one still being routed there changes
 * nothing, one already routed (its blob maybe lost) is fetched again. A refused handshake's
 * disconnection is not a loss: nothing was carried.
 */
static void peer_endpoint_events(struct gateway *gw)
{
	int e, lost = 0;
	for (int budget = 64;
	     gw->peer_monitor && budget > 0 && (e = peer_monitor_next(gw->peer_monitor));
	     budget--) {
		if (e != ZMQ_EVENT_DISCONNECTED)
			gw->peer_refused++;
		else if (gw->peer_refused > 0)
			gw->peer_refused--;
		else
			lost++;
	}
	if (lost == 0)
		return;
	size_t n = interest_want_resend(gw);
	if (n)
		log_info("%d connection%s from other gateways lost: %zu open wants sent to the hub "
			 "again",
			 lost, lost == 1 ? "" : "s", n);
}

/* Answers the handshakes waiting on the ZAP handler; its replies are sends, after which only
 * ZMQ_EVENTS tells whether another request came meanwhile. */
static void peer_zap_drain(struct gateway *gw)
{
	for (int budget = HUBPROTO_DRAIN_BUDGET; gw->zap.sock && budget > 0; budget--) {
		zsec_zap_drain(&gw->zap);
		if (!zadopt_readable(gw->zap.sock))
			return;
	}
}

/* Reads DELIVERs until ZMQ_EVENTS says nothing is left (or the budget ends). */
static void peer_drain(struct gateway *gw)
{
	peer_zap_drain(gw); /* a new link's handshake waits for it */
	for (int budget = HUBPROTO_DRAIN_BUDGET; gw->peer_sock && budget > 0; budget--) {
		if (!zadopt_readable(gw->peer_sock))
			return;
		struct hubmsg m;
		int rc = hubproto_recv(gw->peer_sock, &m, 1);
		if (rc == 0)
			return;
		if (rc < 0) {
			log_warnx("%s: malformed message from a gateway: %s", __func__, m.error);
			continue;
		}
		if (m.cmd == HUB_DELIVER)
			peer_on_deliver(gw, &m);
		else
			log_warnx("%s: a gateway sent %s on a peer link", __func__,
				  hubproto_cmd_name(m.cmd));
		hubmsg_close(&m);
	}
}

void peer_allow(struct gateway *gw, const uint8_t *keys, size_t n, int replace)
{
	if (!gw->peer_curve) {
		log_debug("%s: PEER_KEYS without keys of our own: ignored", __func__);
		return;
	}
	int rc = zsec_zap_allow(&gw->zap, keys, n, "gateway", replace);
	size_t now = map_len(&gw->zap.allowed);
	if (rc < 0)
		log_warnx("%s: out of memory: the peer endpoint keeps the keys it had", __func__);
	else if (rc > 0)
		log_info("the peer endpoint lets in %zu key%s: the gateways the hub admitted", now,
			 now == 1 ? "" : "s");
}

void peer_tick(struct gateway *gw)
{
	int64_t now = now_ms();
	struct kept_blob *k, *ktmp;
	TAILQ_FOREACH_SAFE(k, &gw->kept, entry, ktmp)
	if (now >= k->expires_ms) {
		log_warnx("%s: a blob not settled by the hub in %d ms: dropped", __func__,
			  PEER_KEEP_MS);
		k->routed = 1; /* what was sent is still reported, so the hub forgets it */
		while (!TAILQ_EMPTY(&k->parked)) {
			struct parked_route *r = TAILQ_FIRST(&k->parked);
			peer_report_undelivered(gw, k->hash, r->link->endpoint, r->conns,
						r->nconns);
			TAILQ_REMOVE(&k->parked, r, entry);
			free(r);
		}
		kept_finish_if_done(gw, k);
	}
	peer_flush_delivered(gw);
	struct peer_link *l, *ltmp;
	TAILQ_FOREACH_SAFE(l, &gw->peer_links, entry, ltmp)
	if (now - l->used_ms > PEER_IDLE_MS) {
		int parked = 0;
		TAILQ_FOREACH(k, &gw->kept, entry)
		{
			struct parked_route *r;
			TAILQ_FOREACH(r, &k->parked, entry)
			parked |= r->link == l;
		}
		if (!parked)
			peer_link_close(gw, l);
	}
	peer_drain(gw);		  /* in case an edge was missed */
	peer_endpoint_events(gw); /* after the drain: what did arrive serves its wants first */
}

int peer_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len)
{
	(void)user;
	(void)in;
	(void)len;
	struct gateway *gw = lws_context_user(lws_get_context(wsi));
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		peer_drain(gw); /* the ROUTER or the ZAP handler: both are looked at */
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (gw->peer_wsi == wsi)
			gw->peer_wsi = NULL;
		if (gw->zap_wsi == wsi)
			gw->zap_wsi = NULL;
		return 0;
	default:
		return 0;
	}
}

/* CurveZMQ when the gateway has keys to the hub; without, only loopback (as the hub does). */
static int peer_secure(struct gateway *gw)
{
	char err[512];
	int rc = zsec_keys_from_config("gateway.secret_key", &gw->keys, NULL);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		if (zsec_endpoint_is_loopback(gw->peer_bind))
			return 0;
		log_errorx("gateway.peer_bind = %s is reachable from other machines, and the "
			   "gateway has no keys: set hub.public_key and gateway.secret_key "
			   "(CurveZMQ; see docs/OPERATIONS.md, \"Two machines\"), or bind to "
			   "127.0.0.1",
			   gw->peer_bind);
		return -1;
	}
	if (zsec_zap_open_given(&gw->zap, gw->zctx, "the keys of the gateways the hub admitted",
				err, sizeof(err)) < 0) {
		log_errorx("%s: %s", __func__, err);
		return -1;
	}
	gw->zap_wsi = zadopt(gw, gw->zap.sock, GW_PEER_PROTOCOL, "peer ZAP handler");
	if (gw->zap_wsi == NULL)
		return -1;
	gw->peer_curve = 1;
	return 0;
}

int peer_open(struct gateway *gw)
{
	TAILQ_INIT(&gw->peer_links);
	TAILQ_INIT(&gw->kept);
	if (peer_secure(gw) < 0)
		return -1;
	gw->peer_sock = peer_socket(gw, ZMQ_ROUTER, NULL);
	if (gw->peer_sock == NULL || zmq_bind(gw->peer_sock, gw->peer_bind) < 0) {
		log_errorx("%s: cannot bind %s: %s", __func__, gw->peer_bind,
			   zmq_strerror(zmq_errno()));
		return -1;
	}
	gw->peer_monitor = peer_monitor_open(gw, gw->peer_sock);
	if (gw->peer_monitor == NULL)
		log_warnx("%s: %s: a blob lost with a broken peer link waits for its want timeout",
			  __func__, zmq_strerror(zmq_errno()));
	if (gw->peer_endpoint[0] == '\0') {
		size_t sz = sizeof(gw->peer_endpoint);
		zmq_getsockopt(gw->peer_sock, ZMQ_LAST_ENDPOINT, gw->peer_endpoint, &sz);
	}
	gw->peer_wsi = zadopt(gw, gw->peer_sock, GW_PEER_PROTOCOL, "peer socket");
	if (gw->peer_wsi == NULL)
		return -1;
	log_info("peer endpoint %s%s", gw->peer_endpoint,
		 gw->peer_curve ? " (CurveZMQ: gateways the hub admitted only)" : "");
	return 0;
}

static void peer_unadopt(struct lws **wsi)
{
	if (*wsi) {
		struct lws *w = *wsi;
		*wsi = NULL;
		lws_set_timeout(w, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
	}
}

void peer_close(struct gateway *gw)
{
	peer_forget_kept(gw);
	free(gw->blobs_out);
	gw->blobs_out = NULL;
	gw->blobs_out_cap = 0;
	free(gw->delivered);
	gw->delivered = NULL;
	gw->delivered_len = gw->delivered_cap = 0;
	struct peer_link *l;
	while ((l = TAILQ_FIRST(&gw->peer_links)))
		peer_link_close(gw, l);
	peer_unadopt(&gw->peer_wsi);
	peer_unadopt(&gw->zap_wsi);
	if (gw->peer_monitor) {
		zmq_socket_monitor(gw->peer_sock, NULL, 0);
		zmq_close(gw->peer_monitor);
		gw->peer_monitor = NULL;
	}
	if (gw->peer_sock) {
		zmq_close(gw->peer_sock);
		gw->peer_sock = NULL;
	}
	if (gw->peer_curve)
		zsec_zap_close(&gw->zap);
	gw->peer_curve = 0;
}
