/*
 * link.c — the hub's side of the hub protocol: dispatches what gateways and frontends send, and
 * sends to gateways. Keeps gateways alive (PING out, any message in counts as a sign of life),
 * forgets a gateway silent for hub.peer_expiry_ms, and answers RESET to a gateway it does not
 * know (after a hub restart), which makes the gateway say HELLO and re-announce its state. With
 * CurveZMQ it remembers each gateway's key (the User-Id of its HELLO) and tells every gateway the
 * keys of all the others whenever a gateway joins or goes (PEER_KEYS): their peer endpoints let
 * in those keys only.
 */
#include "hub.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Sends to a gateway. A REQUEST, ROUTE or COUNT carries the settled mark in its id, set here
 * (gw->blobs_routed: every BLOB entry of gw up to that token has had all its routes) and noted as
 * told once sent. A gateway that cannot take messages (gone, or its queue full) is warned
 * about once, when the first message is dropped; the count of dropped messages is logged when it
 * takes messages again or expires (link_forget_unsent), not once per message.
 */
int link_send(struct hub *hub, struct gateway *gw, const struct hubproto_out *o)
{
	struct hubproto_out marked;
	int settles = hubproto_carries_settled(o->cmd);
	if (settles) {
		marked = *o;
		marked.id = gw->blobs_routed;
		o = &marked;
	}
	if (hubproto_send(hub->router, gw->peer, gw->peer_len, o) < 0) {
		if (gw->unsent++ == 0)
			log_warnx("gateway %s takes no messages (%s: %s): dropping them until it "
				  "does or expires",
				  gw->name, hubproto_cmd_name(o->cmd), zmq_strerror(errno));
		return -1;
	}
	link_forget_unsent(gw, "takes messages again");
	if (settles)
		gw->blobs_told = o->id;
	return 0;
}

/* A kept blob waits at most this long for a message that settles it (its memory, against a
 * message of its own on every blob). */
#define LINK_SETTLE_MS 5

int64_t link_settle(struct hub *hub, int64_t now)
{
	int64_t next = -1;
	for (uint32_t i = 0; i < hub->ngateways; i++) {
		struct gateway *gw = hub->active[i];
		if (gw->blobs_told >= gw->blobs_routed) {
			gw->settle_at = 0;
			continue;
		}
		if (gw->settle_at == 0)
			gw->settle_at = now + LINK_SETTLE_MS;
		if (now >= gw->settle_at) {
			struct hubproto_out o = {.cmd = HUB_ROUTE}; /* (no entries, no addresses) */
			if (link_send(hub, gw, &o) == 0) {
				gw->settle_at = 0;
				continue;
			}
			/* It takes no messages: tried again a heartbeat later, not every 5 ms (the
			 * next message that reaches it settles its blobs anyway). */
			gw->settle_at = now + hub->heartbeat_ms;
		}
		if (next < 0 || gw->settle_at < next)
			next = gw->settle_at;
	}
	return next;
}

int link_request(struct gateway *gw, uint64_t holder, const uint8_t hash[HASH_LEN])
{
	uint8_t entry[HUBPROTO_CONN_KEY_LEN];
	if (gw->unsent)
		return -1;
	hubproto_conn_entry(entry, holder, hash);
	return hubproto_list_put(&gw->asked, &gw->asked_len, &gw->asked_cap, entry, sizeof(entry));
}

int link_route_peer(struct gateway *gw, struct hubproto_routes *list, struct gateway *to)
{
	uint8_t addr[HUBPROTO_MAX_PEER_ADDRESS];
	size_t len = to == gw ? 0 : hubproto_peer_address(addr, to->endpoint, to->public_key);
	if (gw->unsent || (to != gw && len == 0))
		return -1;
	return hubproto_routes_peer(list, addr, len);
}

int link_route(struct gateway *gw, struct hubproto_routes *list, uint64_t key,
	       const uint8_t hash[HASH_LEN], uint64_t conn, int peer)
{
	if (gw->unsent)
		return -1;
	return hubproto_routes_put(list, key, hash, conn, peer);
}

/* This turn's ROUTE to gw; one that cannot be sent lets its waiters wait again (router.c): -1. */
static int link_flush_routes(struct hub *hub, struct gateway *gw)
{
	struct hubproto_routes *r = &gw->routes;
	if (r->list_len == 0)
		return 0;
	struct hubproto_out o = hubproto_routes_message(r, HUB_ROUTE);
	int rc = link_send(hub, gw, &o);
	if (rc < 0) /* (link_send marked gw unsent: waiting again queues no route to it) */
		router_unrouted(hub, gw, r->list, o.list_count);
	hubproto_routes_clear(r);
	return rc;
}

/* This turn's REQUEST to gw, naming the waiters each fetch has now; one that cannot be sent moves
 * its fetches on (router.c): -1. */
static int link_flush_requests(struct hub *hub, struct gateway *gw)
{
	struct hubproto_routes *r = &gw->requests;
	if (gw->asked_len == 0)
		return 0;
	router_name_waiters(hub, gw);
	if (r->list_len == 0)
		return 0;
	struct hubproto_out o = hubproto_routes_message(r, HUB_REQUEST);
	int rc = link_send(hub, gw, &o);
	if (rc < 0) /* (gw is marked unsent: the holders asked next are on other gateways) */
		router_unrequested(hub, gw, r->list, o.list_count);
	hubproto_routes_clear(r);
	return rc;
}

/*
 * This turn's ROUTEs and REQUESTs. A REQUEST that cannot be sent (the gateway is gone or its
 * queue is full) moves its fetches on at once, as a failed send always did, and the waiters of a
 * ROUTE that cannot be sent wait again; the holders asked next may be on gateways already flushed
 * in this pass, hence the passes until nothing is left.
 */
void link_flush(struct hub *hub)
{
	for (int again = 1; again;) {
		again = 0;
		for (uint32_t i = 0; i < hub->ngateways; i++) {
			struct gateway *gw = hub->active[i];
			if (link_flush_routes(hub, gw) < 0)
				again = 1;
			if (link_flush_requests(hub, gw) < 0)
				again = 1;
		}
	}
}

void link_forget_unsent(struct gateway *gw, const char *why)
{
	if (gw->unsent == 0)
		return;
	log_warnx("gateway %s %s: %llu messages to it were dropped", gw->name, why,
		  (unsigned long long)gw->unsent);
	gw->unsent = 0;
}

static void link_reply(struct hub *hub, const struct hubmsg *m, const struct hubproto_out *o)
{
	if (hubproto_send(hub->router, m->peer, m->peer_len, o) < 0)
		log_debug("%s: %s: %s", __func__, hubproto_cmd_name(o->cmd), zmq_strerror(errno));
}

typedef void (*link_gw_handler)(struct hub *, struct gateway *, struct hubmsg *);

/* The gateway's counters since it started: what grew since its last HEARTBEAT is added to the
 * hub's sums (a gateway this hub has not heard before adds all it counted). */
static void on_heartbeat(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	for (size_t i = 0; i < m->list_count && i < HUB_GWC_COUNT; i++) {
		uint64_t v = get_u64(m->list + 8 * i);
		if (v > gw->counters[i])
			hub->stats.gateway[i] += v - gw->counters[i];
		gw->counters[i] = v;
	}
}

static struct conn *conn_of(struct hub *hub, struct gateway *gw, uint64_t id, int create)
{
	struct conn *c = registry_conn(hub, gw, id, create);
	if (c == NULL && create)
		log_warnx("%s: gateway %s: %s connection id %llu", __func__, gw->name,
			  HUB_CONN_ID_VALID(id) ? "out of memory for" : "bad",
			  (unsigned long long)id);
	return c;
}

static void on_conn_open(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	conn_of(hub, gw, m->id, 1);
}

static void on_conn_close(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	struct conn *c = conn_of(hub, gw, m->id, 0);
	if (c)
		router_conn_close(hub, c);
}

static void on_have(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	struct conn *c = conn_of(hub, gw, m->id, 1);
	if (c == NULL)
		return;
	for (size_t i = 0; i < m->list_count; i++) {
		const uint8_t *hash = m->list + i * HASH_LEN;
		registry_add_holder(hub, c, hash);
		/* The holder hears the count at once, changed or not. */
		struct hashent *h = registry_hash(hub, hash, 0);
		if (h)
			counts_queue(gw, h);
	}
}

static void on_drop(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	struct conn *c = conn_of(hub, gw, m->id, 0);
	for (size_t i = 0; c && i < m->list_count; i++)
		router_drop(hub, c, m->list + i * HASH_LEN);
}

static void on_want(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	for (size_t i = 0; i < m->list_count; i++) {
		const uint8_t *e = m->list + i * HUBPROTO_CONN_KEY_LEN;
		uint64_t id = get_u64(e);
		struct conn *c = conn_of(hub, gw, id, 1);
		if (c) {
			router_want(hub, c, HUBPROTO_CONN_KEY_HASH(e));
		} else if (HUB_CONN_ID_VALID(id)) {
			/* Out of memory: answered at once, and counted, like any want nobody can
			 * serve. */
			struct hubproto_out o = {
			    .cmd = HUB_NOT_FOUND, .id = id, .hash = HUBPROTO_CONN_KEY_HASH(e)};
			link_send(hub, gw, &o);
			hub->stats.requests_total++;
			hub->stats.requests_failed++;
		}
	}
}

static void on_blob(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	for (size_t i = 0; i < m->list_count; i++) {
		struct hubproto_blob b = hubproto_blob_get(m->list, i);
		router_blob(hub, gw, b.token, b.hash, b.size, b.holder, b.delivered);
	}
}

static void on_delivered(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	for (size_t i = 0; i < m->list_count; i++) {
		uint32_t deliveries;
		uint64_t token = hubproto_delivered_get(m->list, i, &deliveries);
		router_delivered(hub, gw, token, deliveries);
	}
}

static void on_undelivered(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	char endpoint[HUBPROTO_MAX_ENDPOINT + 1];
	memcpy(endpoint, m->data, m->data_len);
	endpoint[m->data_len] = '\0';
	router_undelivered(hub, gw, m->hash, endpoint, m->list, m->list_count);
}

static void on_fail(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	struct conn *c = conn_of(hub, gw, m->id, 0);
	if (c)
		router_fail(hub, c, m->hash, m->value);
}

static void on_file(struct hub *hub, struct gateway *gw, struct hubmsg *m)
{
	struct conn *c = conn_of(hub, gw, m->id, 0);
	for (size_t i = 0; c && i < m->list_count; i++) {
		const uint8_t *e = m->list + i * HUBPROTO_FILE_ENTRY;
		files_confirm(hub, c, e, e + HASH_LEN);
	}
}

static const struct {
	uint8_t cmd;
	link_gw_handler fn;
} link_gw_handlers[] = {
    {HUB_HEARTBEAT, on_heartbeat},
    {HUB_CONN_OPEN, on_conn_open},
    {HUB_CONN_CLOSE, on_conn_close},
    {HUB_HAVE, on_have},
    {HUB_DROP, on_drop},
    {HUB_WANT, on_want},
    {HUB_BLOB, on_blob},
    {HUB_FAIL, on_fail},
    {HUB_DELIVERED, on_delivered},
    {HUB_UNDELIVERED, on_undelivered},
    {HUB_FILE, on_file},
};

void link_handle(struct hub *hub, struct hubmsg *m)
{
	switch (m->cmd) {
	case HUB_LOOKUP: {
		struct hubproto_out o = {.cmd = HUB_LOOKUP_REPLY,
					 .id = m->id,
					 .hash = m->hash,
					 .value = registry_viewers(hub, m->hash)};
		link_reply(hub, m, &o);
		watch_lookup(hub, m->peer, m->peer_len, m->hash, m->value, o.value);
		return;
	}
	case HUB_FILES: {
		uint8_t list[HUBPROTO_MAX_MANIFESTS][HUBPROTO_COUNT_ENTRY];
		struct hubproto_out o = {.cmd = HUB_FILES_REPLY,
					 .id = m->id,
					 .hash = m->hash,
					 .value = registry_viewers(hub, m->hash),
					 .list = list,
					 .list_count = files_lookup(hub, m->hash, list)};
		link_reply(hub, m, &o);
		return;
	}
	case HUB_STATS: {
		char *json = operator_stats_json(hub);
		struct hubproto_out o = {.cmd = HUB_STATS_REPLY,
					 .id = m->id,
					 .data = json,
					 .data_len = json ? strlen(json) : 0};
		link_reply(hub, m, &o);
		free(json);
		return;
	}
	case HUB_HELLO: {
		const char *name;
		size_t name_len;
		char endpoint[HUBPROTO_MAX_ENDPOINT + 1];
		if (hubproto_hello_parse(m, &name, &name_len, endpoint) < 0) {
			log_warnx("%s: HELLO with a name or endpoint too long", __func__);
			return;
		}
		struct gateway *gw = registry_gateway_find(hub, m->peer, m->peer_len, m->id);
		uint64_t counters[HUB_GWC_COUNT] = {0};
		if (gw) {
			/* A gateway that says HELLO again re-teaches us everything: forget the old,
			 * but not how far its counters were added (they count since it started). */
			log_info("gateway %s re-joined", gw->name);
			memcpy(counters, gw->counters, sizeof(counters));
			router_gateway_remove(hub, gw);
		}
		gw = registry_gateway_join(hub, m->peer, m->peer_len, m->id, name, name_len);
		if (gw == NULL)
			return;
		memcpy(gw->counters, counters, sizeof(counters));
		snprintf(gw->endpoint, sizeof(gw->endpoint), "%s", endpoint);
		for (uint32_t i = 0; i < hub->ngateways; i++)
			if (hub->active[i] != gw && gw->endpoint[0] &&
			    strcmp(hub->active[i]->endpoint, gw->endpoint) == 0)
				log_warnx("gateways %s and %s both announce the peer endpoint %s: "
					  "set gateway.peer_endpoint",
					  hub->active[i]->name, gw->name, gw->endpoint);
		/* Its key as the ZAP handler let it in, never as a gateway might describe itself:
		 * other gateways learn it from us (ROUTE) to tell the real one from an impostor. */
		const char *key = hubmsg_user_id(m);
		snprintf(gw->public_key, sizeof(gw->public_key), "%s",
			 key && strlen(key) == ZSEC_Z85_LEN ? key : "");
		gw->last_seen_ms = now_ms();
		struct hubproto_out o = {.cmd = HUB_WELCOME, .id = hub->instance};
		link_send(hub, gw, &o);
		link_peer_keys(hub, gw);
		return;
	}
	default:
		break;
	}
	struct gateway *gw = registry_gateway_by_peer(hub, m->peer, m->peer_len);
	if (gw == NULL) {
		/* After a hub restart, gateways keep talking to us: ask them to start over. */
		struct hubproto_out o = {.cmd = HUB_RESET, .id = hub->instance};
		link_reply(hub, m, &o);
		return;
	}
	gw->last_seen_ms = now_ms();
	log_debug("%s: %s id=%llu", gw->name, hubproto_cmd_name(m->cmd), (unsigned long long)m->id);
	for (size_t i = 0; i < sizeof(link_gw_handlers) / sizeof(link_gw_handlers[0]); i++) {
		if (link_gw_handlers[i].cmd == m->cmd) {
			link_gw_handlers[i].fn(hub, gw, m);
			return;
		}
	}
	log_warnx("%s: gateway %s sent %s, which only the hub sends", __func__, gw->name,
		  hubproto_cmd_name(m->cmd));
}

void link_peer_keys(struct hub *hub, struct gateway *joined)
{
	if (hub->zap.sock == NULL || hub->ngateways == 0)
		return; /* no CurveZMQ: peer endpoints are plain, on loopback */
	uint8_t *keys = malloc((size_t)hub->ngateways * ZSEC_KEY_LEN), own[ZSEC_KEY_LEN];
	struct map seen; /* gateways of one machine may share a key pair: each key listed once */
	size_t n = 0;
	int has_own = joined && zmq_z85_decode(own, joined->public_key) != NULL, shared = 0;
	map_init(&seen, 0, ZSEC_KEY_LEN);
	for (uint32_t i = 0; keys && i < hub->ngateways; i++) {
		uint8_t *key = keys + n * ZSEC_KEY_LEN;
		if (hub->active[i]->public_key[0] == '\0' ||
		    zmq_z85_decode(key, hub->active[i]->public_key) == NULL)
			continue;
		shared |=
		    has_own && hub->active[i] != joined && memcmp(key, own, ZSEC_KEY_LEN) == 0;
		if (map_get(&seen, key) != NULL)
			continue;
		if (map_put(&seen, key) < 0) {
			free(keys);
			keys = NULL;
		}
		n++;
	}
	map_free(&seen);
	if (keys == NULL) {
		log_warnx("%s: out of memory: gateways keep the keys they had", __func__);
		return;
	}
	struct hubproto_out all = {
	    .cmd = HUB_PEER_KEYS, .value = HUB_PEER_KEYS_ALL, .list = keys, .list_count = n};
	struct hubproto_out add = {
	    .cmd = HUB_PEER_KEYS, .value = HUB_PEER_KEYS_ADD, .list = own, .list_count = 1};
	for (uint32_t i = 0; i < hub->ngateways; i++) {
		struct gateway *gw = hub->active[i];
		if (joined == NULL || gw == joined)
			link_send(hub, gw, &all);
		else if (has_own && !shared)
			link_send(hub, gw, &add); /* 32 bytes, not the whole list to everyone */
	}
	free(keys);
}

void link_heartbeat(struct hub *hub, int64_t now, int behind)
{
	uint32_t before = hub->ngateways;
	for (uint32_t i = hub->ngateways; i-- > 0;) {
		struct gateway *gw = hub->active[i]; /* backwards: removal reorders the tail only */
		/* Behind (messages left unread this turn), a gateway's sign of life may be among
		 * them: judge nobody until they are read. */
		if (!behind && now - gw->last_seen_ms > hub->expiry_ms) {
			log_warnx("gateway %s silent for %lld ms: forgetting its %llu holdings",
				  gw->name, (long long)(now - gw->last_seen_ms),
				  (unsigned long long)gw->holdings);
			router_gateway_remove(hub, gw);
			continue;
		}
		struct hubproto_out o = {.cmd = HUB_PING, .id = hub->instance};
		link_send(hub, gw, &o);
	}
	if (hub->ngateways != before)
		link_peer_keys(hub,
			       NULL); /* the whole list again: without the keys of those gone */
}
