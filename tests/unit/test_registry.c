/*
 * test_registry.c — the hub's registry, router and counts, driven directly, without a network.
 *
 * A real `struct hub` with a real ROUTER socket (inproc, ZMQ_ROUTER_MANDATORY as in main.c); the
 * gateways are DEALER sockets with known routing ids, so every REQUEST, NOT_FOUND, ROUTE and
 * COUNT the hub sends can be read back and checked. A gateway joined without a socket stands
 * for one that has vanished: sends to it fail, as they would in production.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hubfx.h"
#include "log.h"
#include "oom.h"

#define ENDPOINT "inproc://test-registry"
#define NGW	 2

static const char *const gw_peer[NGW] = {"gw-A", "gw-B"};
static const char *const gw_endpoint[NGW] = {"tcp://10.0.0.1:5560", "tcp://10.0.0.2:5560"};

struct fx {
	struct hub hub;
	void *sock[NGW];
	struct gateway *gw[NGW];
	struct request {
		uint64_t holder;
		uint8_t hash[HASH_LEN];
		size_t nnamed;	   /* waiters it names */
		uint64_t named[8]; /* the first of their connection ids */
		char peer[64];	   /* the peer endpoint of the first route ("": the holder's own) */
	} requests[NGW][64];	   /* requests of a REQUEST not yet expected */
	size_t nrequests[NGW], next_request[NGW];
	struct request last_request; /* the one expect_msg took last */
	struct hubmsg route[NGW];    /* a ROUTE whose routes are not all expected yet */
	size_t route_it[NGW];	     /* the next of them */
	int has_route[NGW];
};

static uint8_t X[HASH_LEN], Y[HASH_LEN], Z[HASH_LEN];

/* A gateway joined with no socket behind its routing id: sends to it fail, as to one that has
 * vanished or whose queue is full. */
static struct gateway *ghost_gateway(struct hub *hub)
{
	struct gateway *ghost =
	    registry_gateway_join(hub, (const uint8_t *)"gw-ghost", 8, 7, "", 0);
	assert_non_null(ghost);
	return ghost;
}

static int recv_wait(void *sock, struct hubmsg *m, int timeout_ms)
{
	zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
	if (zmq_poll(&item, 1, timeout_ms) <= 0)
		return 0;
	return hubproto_recv(sock, m, 0);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	struct hub *hub = &fx->hub;
	memset(X, 0x11, HASH_LEN);
	memset(Y, 0x22, HASH_LEN);
	memset(Z, 0x33, HASH_LEN);

	hubfx_init(hub);
	assert_int_equal(hubfx_bind(hub, ENDPOINT), 0);

	for (int g = 0; g < NGW; g++) {
		fx->sock[g] = hubproto_socket(hub->ctx, ZMQ_DEALER);
		assert_non_null(fx->sock[g]);
		assert_int_equal(zmq_setsockopt(fx->sock[g], ZMQ_ROUTING_ID, gw_peer[g], 4), 0);
		assert_int_equal(zmq_connect(fx->sock[g], ENDPOINT), 0);
		/* once the ROUTER has read from a peer it can address it */
		struct hubproto_out hello = {.cmd = HUB_HEARTBEAT};
		assert_int_equal(hubproto_send(fx->sock[g], NULL, 0, &hello), 0);
		zmq_pollitem_t item = {hub->router, 0, ZMQ_POLLIN, 0};
		assert_int_equal(zmq_poll(&item, 1, 2000), 1);
		struct hubmsg m;
		assert_int_equal(hubproto_recv(hub->router, &m, 1), 1);
		assert_memory_equal(m.peer, gw_peer[g], 4);
		hubmsg_close(&m);

		fx->gw[g] = registry_gateway_join(hub, (const uint8_t *)gw_peer[g], 4, 100 + g,
						  gw_peer[g], 4);
		assert_non_null(fx->gw[g]);
		snprintf(fx->gw[g]->endpoint, sizeof(fx->gw[g]->endpoint), "%s", gw_endpoint[g]);
	}
	assert_int_equal(hub->ngateways, NGW);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	for (int g = 0; g < NGW; g++) {
		if (fx->has_route[g])
			hubmsg_close(&fx->route[g]);
		zmq_close(fx->sock[g]);
	}
	hubfx_free(&fx->hub);
	assert_int_equal(fx->hub.ngateways, 0);
	assert_int_equal(fx->hub.nconns, 0);
	assert_int_equal(fx->hub.nholdings, 0);
	assert_int_equal(map_len(&fx->hub.hashes), 0);
	free(fx);
	return 0;
}

static struct conn *conn(struct fx *fx, int g, uint64_t id)
{
	struct conn *c = registry_conn(&fx->hub, fx->gw[g], id, 1);
	assert_non_null(c);
	return c;
}

/*
 * The next message gateway g receives must be cmd for connection id about hash. The hub sends
 * the REQUEST entries of one turn of its loop in one REQUEST (link_flush, which ends a turn
 * here): each expected REQUEST is the next entry of such a list.
 */
static void expect_msg(struct fx *fx, int g, uint8_t cmd, uint64_t id, const uint8_t *hash)
{
	struct hubmsg m;
	if (fx->next_request[g] < fx->nrequests[g]) {
		if (cmd != HUB_REQUEST)
			fail_msg("gateway %s: got REQUEST, expected %s", gw_peer[g],
				 hubproto_cmd_name(cmd));
		const struct request *rq = &fx->requests[g][fx->next_request[g]++];
		assert_true(rq->holder == id);
		assert_memory_equal(rq->hash, hash, HASH_LEN);
		fx->last_request = *rq;
		return;
	}
	link_flush(&fx->hub);
	if (recv_wait(fx->sock[g], &m, 2000) != 1)
		fail_msg("gateway %s: no %s", gw_peer[g], hubproto_cmd_name(cmd));
	if (m.cmd != cmd)
		fail_msg("gateway %s: got %s, expected %s", gw_peer[g], hubproto_cmd_name(m.cmd),
			 hubproto_cmd_name(cmd));
	if (cmd == HUB_REQUEST) {
		assert_true(m.list_count >= 1 && m.list_count <= 64);
		uint8_t conns[64 * 8];
		struct hubproto_route r;
		const char *why;
		size_t it = 0, n = 0;
		struct request *rq = NULL;
		while (hubproto_route_next(&m, &it, &r, conns, &why) == 1) {
			if (rq == NULL) {
				rq = &fx->requests[g][n++];
				memset(rq, 0, sizeof(*rq));
				rq->holder = r.token;
				memcpy(rq->hash, r.hash, HASH_LEN);
				snprintf(rq->peer, sizeof(rq->peer), "%.*s", (int)r.addr_len,
					 (const char *)r.addr);
			}
			for (size_t i = 0; i < r.nconns; i++, rq->nnamed++)
				if (rq->nnamed < 8)
					rq->named[rq->nnamed] = get_u64(conns + 8 * i);
			if (r.last)
				rq = NULL;
		}
		assert_int_equal(it, m.list_count);
		fx->nrequests[g] = n;
		fx->next_request[g] = 0;
		hubmsg_close(&m);
		expect_msg(fx, g, cmd, id, hash);
		return;
	}
	assert_true(m.id == id);
	assert_memory_equal(m.hash, hash, HASH_LEN);
	hubmsg_close(&m);
}

static void expect_quiet(struct fx *fx, int g)
{
	struct hubmsg m;
	if (fx->next_request[g] < fx->nrequests[g])
		fail_msg("gateway %s: unexpected REQUEST", gw_peer[g]);
	if (fx->has_route[g])
		fail_msg("gateway %s: unexpected ROUTE", gw_peer[g]);
	link_flush(&fx->hub);
	if (recv_wait(fx->sock[g], &m, 0) != 0) { /* (inproc: what was sent is there) */
		const char *name = hubproto_cmd_name(m.cmd);
		hubmsg_close(&m);
		fail_msg("gateway %s: unexpected %s", gw_peer[g], name);
	}
}

/* The next message to gateway g is a COUNT; returns the viewers it gives for hash, or -1. */
static long long expect_count(struct fx *fx, int g, const uint8_t *hash)
{
	struct hubmsg m;
	long long viewers = -1;
	assert_int_equal(recv_wait(fx->sock[g], &m, 2000), 1);
	assert_int_equal(m.cmd, HUB_COUNT);
	for (size_t i = 0; i < m.list_count; i++) {
		const uint8_t *e = m.list + i * HUBPROTO_COUNT_ENTRY;
		if (memcmp(e, hash, HASH_LEN) == 0)
			viewers = get_u32(e + HASH_LEN);
	}
	hubmsg_close(&m);
	return viewers;
}

/*
 * The next route gateway g is told is one for token about hash, with `more` routes of that blob
 * to follow in its ROUTE, naming the peer endpoint `endpoint` ("" : g's own connections); returns
 * the sum of the connection ids it lists and sets *n to how many. The hub sends the routes of one
 * turn of its loop in one ROUTE (link_flush, which ends a turn here).
 */
/*
 * Nothing more routes gateway g's blobs up to token: no message told it so in this turn, so
 * LINK_SETTLE_MS later a ROUTE with no entries does (its id: the settled mark).
 */
static void expect_settled(struct fx *fx, int g, uint64_t token)
{
	struct hubmsg m;
	link_flush(&fx->hub);
	int64_t now = now_ms();
	assert_true(link_settle(&fx->hub, now) >
		    now); /* not at once: another message may tell it */
	expect_quiet(fx, g);
	link_settle(&fx->hub, now + 1000);
	assert_int_equal(recv_wait(fx->sock[g], &m, 2000), 1);
	assert_int_equal(m.cmd, HUB_ROUTE);
	assert_int_equal(m.list_count, 0);
	assert_true(m.id == token);
	hubmsg_close(&m);
	assert_int_equal(link_settle(&fx->hub, now + 2000), -1);
}

static uint64_t expect_route(struct fx *fx, int g, uint64_t token, const uint8_t *hash,
			     uint32_t more, const char *endpoint, size_t *n)
{
	struct hubmsg *m = &fx->route[g];
	if (!fx->has_route[g]) {
		link_flush(&fx->hub);
		if (recv_wait(fx->sock[g], m, 2000) != 1)
			fail_msg("gateway %s: no ROUTE", gw_peer[g]);
		if (m->cmd != HUB_ROUTE)
			fail_msg("gateway %s: got %s, expected ROUTE", gw_peer[g],
				 hubproto_cmd_name(m->cmd));
		fx->has_route[g] = 1;
		fx->route_it[g] = 0;
	}
	assert_true(m->id >= token); /* it settles the blobs it routes */
	uint8_t conns[64 * 8];
	struct hubproto_route r, next;
	const char *why;
	assert_true(m->list_count <= 64);
	assert_int_equal(hubproto_route_next(m, &fx->route_it[g], &r, conns, &why), 1);
	assert_true(r.token == token);
	assert_memory_equal(r.hash, hash, HASH_LEN);
	assert_int_equal(r.addr_len, strlen(endpoint));
	assert_memory_equal(r.addr, endpoint, r.addr_len);
	uint32_t following = 0;
	uint8_t scratch[64 * 8];
	for (size_t it = fx->route_it[g];
	     hubproto_route_next(m, &it, &next, scratch, &why) == 1 && next.token == token;)
		following++;
	assert_int_equal(following, more);
	assert_int_equal(r.last, more == 0);
	uint64_t sum = 0;
	for (size_t i = 0; i < r.nconns; i++)
		sum += get_u64(conns + 8 * i);
	*n = r.nconns;
	if (fx->route_it[g] == m->list_count) {
		hubmsg_close(m);
		fx->has_route[g] = 0;
	}
	return sum;
}

static void test_holders(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2), *b1 = conn(fx, 1, 1);
	assert_ptr_not_equal(a1, b1); /* same id on two gateways: two connections */
	assert_ptr_equal(registry_conn(hub, fx->gw[0], 1, 0), a1);
	assert_int_equal(hub->nconns, 3);
	assert_int_equal(fx->gw[0]->connections, 2);

	assert_int_equal(registry_add_holder(hub, a1, X), 1);
	assert_int_equal(registry_viewers(hub, X), 1);
	assert_int_equal(hub->nholdings, 1);
	assert_int_equal(hub->nhashes_held, 1);
	assert_int_equal(registry_add_holder(hub, a1, X), 0); /* a duplicate changes nothing */
	assert_int_equal(registry_viewers(hub, X), 1);
	assert_int_equal(hub->nholdings, 1);
	assert_int_equal(a1->nholdings, 1);
	assert_int_equal(fx->gw[0]->holdings, 1);

	assert_int_equal(registry_add_holder(hub, a2, X), 1);
	assert_int_equal(registry_add_holder(hub, b1, X), 1);
	assert_int_equal(registry_add_holder(hub, b1, Y), 1);
	assert_int_equal(registry_viewers(hub, X), 3);
	assert_int_equal(registry_viewers(hub, Y), 1);
	assert_int_equal(registry_viewers(hub, Z), 0);
	assert_int_equal(hub->nholdings, 4);
	assert_int_equal(hub->nhashes_held, 2);
	assert_int_equal(fx->gw[0]->holdings, 2);
	assert_int_equal(fx->gw[1]->holdings, 2);
	assert_int_equal(b1->nholdings, 2);
	assert_true(registry_holds(hub, b1, Y));
	assert_false(registry_holds(hub, a1, Y));

	/* the newest holder is first in line, the first sharer last */
	struct hashent *h = registry_hash(hub, X, 0);
	assert_non_null(h);
	assert_ptr_equal(TAILQ_FIRST(&h->holders)->c, b1);
	assert_ptr_equal(TAILQ_LAST(&h->holders, holders_head)->c, a1);
	assert_int_equal(h->viewers, 3);

	assert_int_equal(router_drop(hub, a1, Y), 0);
	assert_int_equal(router_drop(hub, a1, X), 1);
	assert_int_equal(router_drop(hub, a1, X), 0);
	assert_int_equal(registry_viewers(hub, X), 2);
	assert_int_equal(hub->nholdings, 3);
	assert_int_equal(a1->nholdings, 0);
	assert_ptr_equal(TAILQ_LAST(&h->holders, holders_head)->c, a2);

	assert_int_equal(router_drop(hub, b1, Y), 1);
	assert_int_equal(hub->nhashes_held, 1);
	assert_non_null(registry_hash(hub, Y, 0)); /* kept until the flush */
	counts_flush(hub);
	assert_null(registry_hash(hub, Y, 0));
	assert_non_null(registry_hash(hub, X, 0));
	assert_int_equal(registry_viewers(hub, X), 2);

	/* connection ids: 1 .. 2^48-1 */
	assert_null(registry_conn(hub, fx->gw[0], 0, 1));
	assert_non_null(registry_conn(hub, fx->gw[0], HUB_CONN_ID_MAX, 1));
	assert_null(registry_conn(hub, fx->gw[0], HUB_CONN_ID_MAX + 1, 1));
	assert_null(registry_conn(hub, fx->gw[0], 77, 0));
	assert_int_equal(hub->nconns, 4);
}

static void test_conn_remove(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a1, Y);
	registry_add_holder(hub, a1, Z);
	registry_add_holder(hub, a2, X);
	assert_int_equal(hub->nholdings, 4);
	assert_int_equal(hub->nhashes_held, 3);

	router_conn_close(hub, a1);
	assert_int_equal(hub->nconns, 1);
	assert_int_equal(fx->gw[0]->connections, 1);
	assert_int_equal(fx->gw[0]->holdings, 1);
	assert_int_equal(hub->nholdings, 1);
	assert_int_equal(hub->nhashes_held, 1);
	assert_int_equal(registry_viewers(hub, X), 1);
	assert_int_equal(registry_viewers(hub, Y), 0);
	assert_int_equal(registry_viewers(hub, Z), 0);
	assert_null(registry_conn(hub, fx->gw[0], 1, 0));
	struct hashent *h = registry_hash(hub, X, 0);
	assert_ptr_equal(TAILQ_FIRST(&h->holders), TAILQ_LAST(&h->holders, holders_head));
	assert_ptr_equal(TAILQ_FIRST(&h->holders)->c, a2);

	counts_flush(hub);
	assert_null(registry_hash(hub, Y, 0));
	assert_null(registry_hash(hub, Z, 0));
	assert_non_null(registry_hash(hub, X, 0));
	assert_int_equal(map_len(&hub->holdings), 1);
}

static void test_gateway_remove(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	for (uint64_t id = 1; id <= 3; id++) {
		registry_add_holder(hub, conn(fx, 0, id), X);
		registry_add_holder(hub, conn(fx, 0, id), id == 2 ? Y : Z);
	}
	registry_add_holder(hub, conn(fx, 1, 1), X);
	assert_int_equal(hub->nconns, 4);
	assert_int_equal(hub->nholdings, 7);

	uint16_t slot = fx->gw[0]->slot;
	router_gateway_remove(hub, fx->gw[0]);
	fx->gw[0] = NULL;
	assert_int_equal(hub->ngateways, 1);
	assert_null(hub->gateways[slot]);
	assert_null(registry_gateway_by_peer(hub, (const uint8_t *)"gw-A", 4));
	assert_ptr_equal(registry_gateway_by_peer(hub, (const uint8_t *)"gw-B", 4), fx->gw[1]);
	assert_int_equal(hub->nconns, 1);
	assert_int_equal(hub->nholdings, 1);
	assert_int_equal(hub->nhashes_held, 1);
	assert_int_equal(registry_viewers(hub, X), 1);
	assert_int_equal(registry_viewers(hub, Y), 0);
	counts_flush(hub);
	assert_int_equal(map_len(&hub->hashes), 1);

	/* it comes back (new process, new instance): a fresh gateway with nothing */
	fx->gw[0] = registry_gateway_join(hub, (const uint8_t *)"gw-A", 4, 999, "A", 1);
	assert_non_null(fx->gw[0]);
	assert_int_equal(fx->gw[0]->connections, 0);
	assert_int_equal(hub->ngateways, 2);

	/* a HELLO again from a known instance forgets all it said before */
	struct gateway *old_b = fx->gw[1];
	uint64_t instance = old_b->instance;
	assert_ptr_equal(registry_gateway_find(hub, (const uint8_t *)"gw-?", 4, instance), old_b);
	assert_ptr_equal(registry_gateway_find(hub, (const uint8_t *)"gw-B", 4, 1), old_b);
	router_gateway_remove(hub, old_b);
	fx->gw[1] = registry_gateway_join(hub, (const uint8_t *)"gw-B", 4, instance, "B\x01", 2);
	assert_non_null(fx->gw[1]);
	assert_string_equal(fx->gw[1]->name, "B?");
	assert_int_equal(hub->ngateways, 2);
	assert_int_equal(hub->nconns, 0);
	assert_int_equal(registry_viewers(hub, X), 0);
	assert_int_equal(hub->nhashes_held, 0);
	counts_flush(hub);
	assert_int_equal(map_len(&hub->hashes), 0);
}

static void test_counts(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, b1, X);
	registry_add_holder(hub, b1, Y);
	counts_flush(hub);
	assert_int_equal(expect_count(fx, 0, X), 2);
	expect_quiet(fx, 0); /* one COUNT per gateway and flush */
	struct hubmsg m;
	assert_int_equal(recv_wait(fx->sock[1], &m, 2000), 1);
	assert_int_equal(m.cmd, HUB_COUNT);
	assert_int_equal(m.list_count, 2);
	hubmsg_close(&m);

	counts_flush(hub); /* nothing changed: nothing sent */
	expect_quiet(fx, 0);
	expect_quiet(fx, 1);

	router_drop(hub, a1, X);
	counts_flush(hub);
	assert_int_equal(expect_count(fx, 1, X), 1);
	expect_quiet(fx, 0); /* gateway A holds nothing any more */

	router_drop(hub, b1, X);
	router_drop(hub, b1, Y);
	counts_flush(hub);
	expect_quiet(fx, 1);
	assert_null(registry_hash(hub, X, 0));
	assert_null(registry_hash(hub, Y, 0));
}

static void test_want_unknown(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *b1 = conn(fx, 1, 1), *a1 = conn(fx, 0, 1);

	router_want(hub, b1, X);
	assert_int_equal(hub->stats.requests_total, 1);
	assert_int_equal(hub->stats.requests_failed, 1);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, X);
	assert_null(registry_hash(hub, X, 0)); /* a want does not create a hash */

	/* the only holder is the requester itself */
	registry_add_holder(hub, b1, Y);
	router_want(hub, b1, Y);
	assert_int_equal(hub->stats.requests_failed, 2);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, Y);
	assert_null(registry_hash(hub, Y, 0)->fetch);

	/* a hash whose last holder just left (entry not yet flushed) */
	registry_add_holder(hub, a1, Z);
	router_drop(hub, a1, Z);
	router_want(hub, b1, Z);
	assert_int_equal(hub->stats.requests_failed, 3);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, Z);
	assert_int_equal(hub->stats.requests_total, 3);
	expect_quiet(fx, 0);
	assert_int_equal(router_next_deadline(hub), -1);
}

static void test_want_shared_fetch(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1), *b2 = conn(fx, 1, 2);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, b1, X); /* newest, first in line, but it is the requester */

	int64_t before = now_ms();
	router_want(hub, b1, X);
	struct hashent *h = registry_hash(hub, X, 0);
	assert_non_null(h->fetch);
	assert_ptr_equal(h->fetch->holder, a1);
	assert_int_equal(h->fetch->nwaiters, 1);
	assert_ptr_equal(LIST_FIRST(&h->fetch->waiters)->c, b1);
	assert_true(router_next_deadline(hub) >= before + 10000);

	/* the same connection again (before a REQUEST named it): no second waiter, no second
	 * request, not a second want in the figures (requests_total = served + failed + open) */
	router_want(hub, b1, X);
	assert_int_equal(hub->stats.requests_total, 1);
	assert_int_equal(h->fetch->nwaiters, 1);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	expect_quiet(fx, 0);
	expect_quiet(fx, 1);

	/* another connection shares the transfer in flight */
	router_want(hub, b2, X);
	assert_int_equal(h->fetch->nwaiters, 2);
	assert_ptr_equal(h->fetch->holder, a1);
	expect_quiet(fx, 0);
	counts_flush(hub);
	assert_ptr_equal(registry_hash(hub, X, 0), h);
	assert_int_equal(expect_count(fx, 1, X), 2);
	assert_int_equal(expect_count(fx, 0, X), 2);

	/* the holder's gateway is told where both waiters are, in one ROUTE; the hub sees no
	 * bytes, and counts what the gateway reports it delivered */
	size_t n;
	router_blob(hub, fx->gw[0], 7, X, 1234, 0, HUBPROTO_BLOB_MORE);
	assert_int_equal(expect_route(fx, 0, 7, X, 0, gw_endpoint[1], &n), 3);
	assert_int_equal(n, 2);
	expect_quiet(fx, 1);
	assert_int_equal(hub->stats.requests_served, 0);
	router_delivered(hub, fx->gw[0], 7, 2);
	assert_int_equal(hub->stats.requests_served, 2);
	assert_int_equal(hub->stats.bytes_relayed, 2 * 1234);
	router_delivered(hub, fx->gw[0], 7, 2); /* once only */
	assert_int_equal(hub->stats.requests_served, 2);
	assert_int_equal(hub->stats.requests_total,
			 hub->stats.requests_served + hub->stats.requests_failed);
	assert_null(h->fetch);
	assert_true(LIST_EMPTY(&b1->waits));
	assert_int_equal(router_next_deadline(hub), -1);

	/* a late second answer finds nobody waiting: no route; a ROUTE with no entries settles it
	 */
	router_blob(hub, fx->gw[0], 8, X, 1234, 0, HUBPROTO_BLOB_MORE);
	expect_settled(fx, 0, 8);
	expect_quiet(fx, 1);
	assert_int_equal(hub->stats.requests_served, 2);
}

/* One DELIVERED lists the transfers a gateway finished in one turn of its loop: each is counted
 * once, by the gateway that reported it (tokens are per gateway), and unknown tokens are skipped.
 */
static void test_delivered_list(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2), *b1 = conn(fx, 1, 1),
		    *b2 = conn(fx, 1, 2);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, b1, Y);
	router_want(hub, b2, X);
	router_want(hub, a2, Y);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	expect_msg(fx, 1, HUB_REQUEST, 1, Y);
	router_blob(hub, fx->gw[0], 5, X, 100, 0,
		    HUBPROTO_BLOB_MORE); /* the same token on both gateways */
	router_blob(hub, fx->gw[1], 5, Y, 200, 0, HUBPROTO_BLOB_MORE);

	uint8_t *list = NULL;
	size_t len = 0, cap = 0;
	assert_int_equal(hubproto_delivered_put(&list, &len, &cap, 99, 7), 0); /* unknown */
	assert_int_equal(hubproto_delivered_put(&list, &len, &cap, 5, 1), 0);
	assert_int_equal(len, 2 * HUBPROTO_DELIVERED_ENTRY);
	struct hubmsg m = {.cmd = HUB_DELIVERED,
			   .peer_len = 4,
			   .list = list,
			   .list_count = len / HUBPROTO_DELIVERED_ENTRY};
	memcpy(m.peer, gw_peer[1], 4);
	link_handle(hub, &m);
	assert_int_equal(hub->stats.requests_served, 1);
	assert_int_equal(hub->stats.bytes_relayed, 200);
	link_handle(hub, &m); /* once only */
	assert_int_equal(hub->stats.requests_served, 1);
	memcpy(m.peer, gw_peer[0], 4);
	link_handle(hub, &m);
	assert_int_equal(hub->stats.requests_served, 2);
	assert_int_equal(hub->stats.bytes_relayed, 300);
	assert_int_equal(hub->stats.requests_total,
			 hub->stats.requests_served + hub->stats.requests_failed);
	assert_true(LIST_EMPTY(&hub->transfers));
	free(list);
}

/* One WANT lists the wants of one turn of a gateway's loop: each joins its fetch. */
static void test_want_list(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1);
	registry_add_holder(hub, a1, X);
	uint8_t list[2][HUBPROTO_CONN_KEY_LEN];
	put_u64(list[0], 1);
	memcpy(HUBPROTO_CONN_KEY_HASH(list[0]), X, HASH_LEN);
	put_u64(list[1], 2);
	memcpy(HUBPROTO_CONN_KEY_HASH(list[1]), X, HASH_LEN);
	struct hubmsg m = {.cmd = HUB_WANT, .peer_len = 4, .list = list[0], .list_count = 2};
	memcpy(m.peer, gw_peer[1], 4);
	link_handle(hub, &m);
	assert_int_equal(hub->stats.requests_total, 2);
	assert_int_equal(registry_hash(hub, X, 0)->fetch->nwaiters, 2);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	expect_quiet(fx, 0);
}

/* The REQUESTs of one turn of the hub's loop go to a gateway as one message listing them all. */
static void test_requests_one_per_turn(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a2, Y);
	router_want(hub, b1, X);
	router_want(hub, b1, Y);
	link_flush(hub);
	struct hubmsg m;
	assert_int_equal(recv_wait(fx->sock[0], &m, 2000), 1);
	assert_int_equal(m.cmd, HUB_REQUEST);
	assert_int_equal(m.list_count, 2); /* each names its waiter */
	assert_true(get_u64(m.list) == 1);
	assert_memory_equal(m.list + 8, X, HASH_LEN);
	assert_true(get_u64(m.list + HUBPROTO_ROUTE_ENTRY) == 2);
	assert_memory_equal(m.list + HUBPROTO_ROUTE_ENTRY + 8, Y, HASH_LEN);
	hubmsg_close(&m);
	expect_quiet(fx, 0);
}

/* Wants of one hash are spread over its holders, and never land on the requester. */
static void test_holder_rotation(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *holders[3];
	for (int i = 0; i < 3; i++) {
		holders[i] = conn(fx, 0, (uint64_t)i + 1);
		registry_add_holder(hub, holders[i], X);
	}
	struct conn *b1 = conn(fx, 1, 1);
	int asked[4] = {0};
	for (int round = 0; round < 3; round++) {
		router_want(hub, b1, X);
		struct fetch *f = registry_hash(hub, X, 0)->fetch;
		assert_non_null(f);
		assert_true(f->holder->id >= 1 && f->holder->id <= 3);
		asked[f->holder->id]++;
		expect_msg(fx, 0, HUB_REQUEST, f->holder->id, X);
		router_fail(hub, f->holder, X, HUB_FAIL_GONE); /* no claim dropped */
		f = registry_hash(hub, X, 0)->fetch;
		assert_non_null(f);
		assert_ptr_not_equal(f->holder, NULL);
		expect_msg(fx, 0, HUB_REQUEST, f->holder->id, X);
		router_cancel_waiter(hub, LIST_FIRST(&b1->waits));
		assert_null(registry_hash(hub, X, 0)->fetch);
	}
	assert_int_equal(asked[1], 1);
	assert_int_equal(asked[2], 1);
	assert_int_equal(asked[3], 1);

	/* every holder in turn wants it: the one asked is always someone else */
	for (int round = 0; round < 6; round++) {
		struct conn *req = holders[round % 3];
		router_want(hub, req, X);
		struct fetch *f = registry_hash(hub, X, 0)->fetch;
		assert_non_null(f);
		assert_ptr_not_equal(f->holder, req);
		expect_msg(fx, 0, HUB_REQUEST, f->holder->id, X);
		size_t n;
		router_blob(hub, fx->gw[0], (uint64_t)round + 1, X, 1234, 0, HUBPROTO_BLOB_MORE);
		/* the waiter is on the holder's own gateway: no endpoint, in process */
		assert_int_equal(expect_route(fx, 0, (uint64_t)round + 1, X, 0, "", &n), req->id);
		assert_int_equal(n, 1);
		router_delivered(hub, fx->gw[0], (uint64_t)round + 1, 1);
	}
	assert_int_equal(hub->stats.requests_served, 6);
}

/*
 * Among holders asked as much as each other, one on the waiter's own gateway is asked first (the
 * blob stays there); one already busy is not preferred for it, so pieces still spread.
 */
static void test_holder_near_waiter(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *b1 = conn(fx, 1, 1), *a1 = conn(fx, 0, 1), *b2 = conn(fx, 1, 2);
	registry_add_holder(hub, b1, X); /* a1 joins after: first in the hash's line */
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, b1, Y);
	registry_add_holder(hub, a1, Y);
	router_want(hub, b2, X);
	assert_ptr_equal(registry_hash(hub, X, 0)->fetch->holder, b1);
	expect_msg(fx, 1, HUB_REQUEST, 1, X);
	/* b1 is busy with X: Y goes to a1, though it is on the other gateway */
	router_want(hub, b2, Y);
	assert_ptr_equal(registry_hash(hub, Y, 0)->fetch->holder, a1);
	expect_msg(fx, 0, HUB_REQUEST, 1, Y);
	expect_quiet(fx, 0);
	expect_quiet(fx, 1);
}

static void test_fail_mismatch_and_decline(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a2, X);
	router_want(hub, b1, X);
	struct hashent *h = registry_hash(hub, X, 0);
	assert_ptr_equal(h->fetch->holder, a2);
	expect_msg(fx, 0, HUB_REQUEST, 2, X);

	/* a FAIL from someone who was not asked changes nothing for the fetch */
	router_fail(hub, a1, X, HUB_FAIL_GONE);
	assert_ptr_equal(h->fetch->holder, a2);
	expect_quiet(fx, 0);

	router_fail(hub, a2, X, HUB_FAIL_MISMATCH);
	assert_int_equal(hub->stats.hash_mismatches, 1);
	assert_false(registry_holds(hub, a2, X));
	assert_int_equal(registry_viewers(hub, X), 1);
	assert_non_null(h->fetch);
	assert_ptr_equal(h->fetch->holder, a1);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	expect_quiet(fx, 1);

	router_fail(hub, a1, X, HUB_FAIL_DECLINED);
	assert_int_equal(hub->stats.declines, 1);
	assert_int_equal(registry_viewers(hub, X), 0);
	assert_null(h->fetch);
	assert_true(LIST_EMPTY(&b1->waits));
	assert_int_equal(hub->stats.requests_failed, 1);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, X);
	assert_int_equal(router_next_deadline(hub), -1);
	counts_flush(hub);
	assert_null(registry_hash(hub, X, 0));
}

static void test_expire(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a2, X);
	router_want(hub, b1, X);
	struct hashent *h = registry_hash(hub, X, 0);
	assert_ptr_equal(h->fetch->holder, a2);
	expect_msg(fx, 0, HUB_REQUEST, 2, X);
	int64_t d1 = router_next_deadline(hub);
	assert_true(d1 > 0);

	router_expire(hub, d1 - 1);
	assert_int_equal(hub->stats.holder_timeouts, 0);
	assert_ptr_equal(h->fetch->holder, a2);

	/* at the deadline the next holder is asked, with a deadline of its own */
	hub->holder_timeout_ms = 20000;
	router_expire(hub, d1);
	assert_int_equal(hub->stats.holder_timeouts, 1);
	assert_ptr_equal(h->fetch->holder, a1);
	assert_true(router_next_deadline(hub) > d1);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);

	/* long after: nobody left to ask */
	hub->holder_timeout_ms = 1;
	router_expire(hub, now_ms() + 1000000);
	assert_int_equal(hub->stats.holder_timeouts, 2);
	assert_null(h->fetch);
	assert_int_equal(hub->stats.requests_failed, 1);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, X);
	assert_int_equal(router_next_deadline(hub), -1);
	/* slow holders keep their claims */
	assert_int_equal(registry_viewers(hub, X), 2);

	/* a late answer from a slow holder is dropped: nobody waits */
	router_blob(hub, fx->gw[0], 5, X, 1234, 0, HUBPROTO_BLOB_MORE);
	expect_settled(fx, 0, 5);
	expect_quiet(fx, 1);
	assert_int_equal(hub->stats.requests_served, 0);
}

/* A holder on a gateway the ROUTER cannot reach is skipped like one that failed. */
static void test_unreachable_holder(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct gateway *ghost = ghost_gateway(hub);
	assert_string_equal(ghost->name, "gw2");
	struct conn *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1);
	struct conn *g1 = registry_conn(hub, ghost, 1, 1);
	assert_non_null(g1);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, g1, X);
	router_want(hub, b1, X);
	link_flush(hub); /* the turn's REQUESTs go out: the ghost's fails, a1 is asked */
	assert_ptr_equal(registry_hash(hub, X, 0)->fetch->holder, a1);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);

	/* a gateway known to take no messages is asked nothing: not_found at once */
	registry_add_holder(hub, g1, Y);
	router_want(hub, b1, Y);
	assert_null(registry_hash(hub, Y, 0)->fetch);
	assert_int_equal(hub->stats.requests_failed, 1);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, Y);
}

static void test_requesters_and_holders_leave(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2);
	struct conn *b1 = conn(fx, 1, 1), *b2 = conn(fx, 1, 2);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a2, X);
	router_want(hub, b1, X);
	router_want(hub, b2, X);
	struct hashent *h = registry_hash(hub, X, 0);
	assert_int_equal(h->fetch->nwaiters, 2);
	expect_msg(fx, 0, HUB_REQUEST, 2, X);

	/* the asked holder closes: the next is asked */
	router_conn_close(hub, a2);
	assert_ptr_equal(h->fetch->holder, a1);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);

	/* requesters close: the fetch ends with the last of them, and nobody is told */
	router_conn_close(hub, b1);
	assert_int_equal(h->fetch->nwaiters, 1);
	router_conn_close(hub, b2);
	assert_null(h->fetch);
	assert_int_equal(router_next_deadline(hub), -1);
	assert_int_equal(hub->stats.requests_failed, 0);
	expect_quiet(fx, 1);

	/* a whole gateway of holders goes while someone waits: not found */
	b1 = conn(fx, 1, 1);
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	router_gateway_remove(hub, fx->gw[0]);
	fx->gw[0] = NULL;
	assert_null(h->fetch);
	assert_int_equal(hub->stats.requests_failed, 1);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, X);
	assert_int_equal(registry_viewers(hub, X), 0);
	counts_flush(hub);
	assert_null(registry_hash(hub, X, 0));
}

/* Out of memory while adding a holder, at every allocation it makes: it fails whole, and the
 * hash entry it may have made is freed at the next flush (it used to stay for ever). */
static void test_oom_add_holder(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1);
	int rc = -1;
	long n;
	for (n = 1; n < 100 && rc != 1; n++) {
		oom_fail_after(n);
		rc = registry_add_holder(hub, a1, X);
		oom_fail_after(0);
		if (rc == 1)
			break;
		assert_int_equal(rc, -1);
		assert_int_equal(hub->nholdings, 0);
		assert_int_equal(a1->nholdings, 0);
		assert_int_equal(hub->nhashes_held, 0);
		assert_false(registry_holds(hub, a1, X));
		counts_flush(hub);
		assert_null(registry_hash(hub, X, 0));
	}
	assert_int_equal(rc, 1);
	assert_true(n > 2); /* the entry, the holding, the gateway's reference, maps grow */
	assert_int_equal(registry_viewers(hub, X), 1);
	assert_int_equal(router_drop(hub, a1, X), 1);
	counts_flush(hub);
	assert_null(registry_hash(hub, X, 0));
}

/* Out of memory at any allocation of a want (its waiter, its fetch, the gateway's reference,
 * the holder's mark): the requester hears NOT_FOUND at once, counted failed, or the holder is
 * asked; never a want dropped without an answer (it used to wait for its 60 s timeout). */
static void test_oom_want(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	long n, failed = 0;
	for (n = 1; n < 100; n++) {
		oom_fail_after(n);
		router_want(hub, b1, X);
		oom_fail_after(0);
		struct hashent *h = registry_hash(hub, X, 0);
		if (h->fetch != NULL) {
			expect_msg(fx, 0, HUB_REQUEST, 1, X);
			assert_int_equal(h->fetch->nwaiters, 1);
			break;
		}
		failed++;
		expect_msg(fx, 1, HUB_NOT_FOUND, 1, X);
		expect_quiet(fx, 1);
		assert_true(LIST_EMPTY(&b1->waits));
		assert_int_equal(hub->stats.requests_failed, failed);
		assert_int_equal(hub->stats.requests_total, failed);
	}
	assert_true(failed >= 2); /* the waiter, the fetch (and whatever else allocates) */
	assert_int_equal(hub->stats.requests_total, failed + 1); /* + the one open */
	expect_quiet(fx, 1);
	router_conn_close(hub, b1);
	router_conn_close(hub, a1);
}

/* A WANT from a connection the hub must first make (a gateway re-announcing), out of memory
 * for it: NOT_FOUND at once, counted as a want that failed. */
static void test_oom_want_new_conn(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	registry_add_holder(hub, conn(fx, 0, 1), X);
	uint8_t entry[HUBPROTO_CONN_KEY_LEN];
	hubproto_conn_key(entry, 5, X);
	struct hubmsg m = {.cmd = HUB_WANT, .peer_len = 4, .list = entry, .list_count = 1};
	memcpy(m.peer, gw_peer[1], 4);
	oom_fail_after(1);
	link_handle(hub, &m);
	oom_fail_after(0);
	expect_msg(fx, 1, HUB_NOT_FOUND, 5, X);
	assert_null(registry_conn(hub, fx->gw[1], 5, 0));
	assert_int_equal(hub->stats.requests_total, 1);
	assert_int_equal(hub->stats.requests_failed, 1);
	expect_quiet(fx, 0);
	link_handle(hub, &m); /* with memory: the holder is asked */
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	assert_int_equal(hub->stats.requests_total, 2);
}

/* A BLOB the hub has no memory to route: the gateway is told to let it go, and the fetch moves
 * on at once (here: no other holder, so NOT_FOUND), not at its holder timeout. */
static void test_oom_blob(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	oom_fail_after(1);
	router_blob(hub, fx->gw[0], 9, X, 100, 0, HUBPROTO_BLOB_MORE);
	oom_fail_after(0);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, X);
	expect_settled(fx, 0, 9);
	assert_null(registry_hash(hub, X, 0)->fetch);
	assert_int_equal(hub->stats.requests_total, hub->stats.requests_failed);
}

/* A gateway is removed whole even when memory is short: none of its connections may be left
 * behind pointing at it (the scratch array's realloc used to fail and leave them). */
static void test_oom_gateway_remove(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	for (uint64_t id = 1; id <= 300; id++)
		registry_add_holder(hub, conn(fx, 0, id), X);
	registry_add_holder(hub, conn(fx, 1, 1), X);
	assert_int_equal(hub->nconns, 301);
	for (long n = 1; n <= 3; n++) {
		oom_fail_after(n);
		router_gateway_remove(hub, fx->gw[0]);
		oom_fail_after(0);
		fx->gw[0] = registry_gateway_join(hub, (const uint8_t *)"gw-A", 4, 100, "A", 1);
		assert_non_null(fx->gw[0]);
		assert_int_equal(hub->nconns, 1);
		assert_int_equal(hub->nholdings, 1);
		assert_int_equal(registry_viewers(hub, X), 1);
		for (uint64_t id = 1; id <= 300; id++)
			registry_add_holder(hub, conn(fx, 0, id), X);
	}
	size_t it = 0;
	struct conn *c;
	while ((c = map_next(&hub->conns, &it)))
		assert_true(c->gw == fx->gw[0] || c->gw == fx->gw[1]);
}

/*
 * One ROUTE per gateway with waiters (the holder's own named by an empty endpoint), and waiters
 * the holder's gateway then cannot reach hear NOT_FOUND at once instead of at their timeout.
 */
static void test_routes_and_undelivered(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2);
	struct conn *b1 = conn(fx, 1, 1), *b2 = conn(fx, 1, 2);
	registry_add_holder(hub, a1, X);
	router_want(hub, a2, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	router_want(hub, b1, X);
	router_want(hub, b2, X);
	struct hashent *h = registry_hash(hub, X, 0);

	router_blob(hub, fx->gw[0], 9, X, 1234, 0, HUBPROTO_BLOB_MORE);
	size_t n;
	assert_int_equal(expect_route(fx, 0, 9, X, 1, gw_endpoint[1], &n), 1 + 2);
	assert_int_equal(n, 2);
	assert_int_equal(expect_route(fx, 0, 9, X, 0, "", &n), 2);
	assert_int_equal(n, 1);
	expect_quiet(fx, 1);
	assert_null(h->fetch);
	assert_int_equal(hub->stats.requests_failed, 0);

	/* gw-A cannot reach gw-B: both its waiters hear not_found now */
	uint8_t ids[16];
	put_u64(ids, 1);
	put_u64(ids + 8, 2);
	router_undelivered(hub, fx->gw[0], X, gw_endpoint[1], ids, 2);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, X);
	expect_msg(fx, 1, HUB_NOT_FOUND, 2, X);
	assert_int_equal(hub->stats.requests_failed, 2);

	/* one that waits again is left to its own fetch */
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	router_undelivered(hub, fx->gw[0], X, gw_endpoint[1], ids, 1);
	expect_quiet(fx, 1);
	/* an endpoint no gateway has any more: its connections are gone with it */
	router_undelivered(hub, fx->gw[0], X, "tcp://10.9.9.9:1", ids, 2);
	expect_quiet(fx, 0);
	expect_quiet(fx, 1);
	/* the empty endpoint names the sender's own connections */
	put_u64(ids, 2);
	router_undelivered(hub, fx->gw[0], X, "", ids, 1);
	expect_msg(fx, 0, HUB_NOT_FOUND, 2, X);
	assert_int_equal(hub->stats.requests_failed, 3);
	assert_int_equal(hub->stats.requests_served, 0);
	(void)a1;
}

/* A waiter on a gateway that announced no peer endpoint cannot be reached: not_found now. */
static void test_route_to_gateway_without_endpoint(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1);
	fx->gw[1]->endpoint[0] = '\0';
	registry_add_holder(hub, a1, X);
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	router_blob(hub, fx->gw[0], 4, X, 1234, 0, HUBPROTO_BLOB_MORE);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, X);
	expect_settled(fx, 0, 4); /* nobody left: the blob may go */
	assert_null(registry_hash(hub, X, 0)->fetch);
	assert_int_equal(hub->stats.requests_failed, 1);
}

/* A ROUTE that cannot be sent to the holder's gateway: the waiters wait again, a holder is asked.
 */
static void test_route_unsendable(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct gateway *ghost = ghost_gateway(hub);
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a2, X);
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 2, X);
	router_blob(hub, ghost, 3, X, 1234, 0,
		    HUBPROTO_BLOB_MORE); /* a late answer from a gateway that is going away */
	link_flush(hub); /* the turn ends: its ROUTE cannot be sent, the waiter waits again */
	struct fetch *f = registry_hash(hub, X, 0)->fetch;
	assert_non_null(f);
	assert_int_equal(f->nwaiters, 1);
	assert_non_null(f->holder);
	assert_true(f->holder == a1 || f->holder == a2);
	expect_msg(fx, 0, HUB_REQUEST, f->holder->id, X);
	assert_int_equal(hub->stats.requests_total, 1);
	assert_int_equal(hub->stats.requests_served + hub->stats.requests_failed, 0);
	expect_quiet(fx, 1);
}

/*
 * A REQUEST names the waiters its fetch has (hub protocol 6), those on another gateway first and
 * the holder's own last, so the holder's gateway serves them the moment the blob verifies. The
 * BLOB that answers that holder counts them in the transfer: its ROUTE carries only who came
 * since, and the figures count at most the waiters the transfer holds.
 */
static void test_request_names_waiters(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2);
	struct conn *b1 = conn(fx, 1, 1), *b2 = conn(fx, 1, 2), *b3 = conn(fx, 1, 3);
	registry_add_holder(hub, a1, X);
	router_want(hub, a2, X);
	router_want(hub, b1, X);
	router_want(hub, b2, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	assert_int_equal(fx->last_request.nnamed, 3);
	assert_string_equal(fx->last_request.peer, gw_endpoint[1]);
	assert_true(fx->last_request.named[0] + fx->last_request.named[1] == 1 + 2);
	assert_true(fx->last_request.named[2] == 2); /* a2, on the holder's gateway, last */
	expect_quiet(fx, 1);

	/* b3 came after the REQUEST: the ROUTE answering the BLOB names it alone */
	router_want(hub, b3, X);
	router_blob(hub, fx->gw[0], 7, X, 1000, a1->id, HUBPROTO_BLOB_MORE);
	size_t n;
	assert_int_equal(expect_route(fx, 0, 7, X, 0, gw_endpoint[1], &n), 3);
	assert_int_equal(n, 1);
	expect_quiet(fx, 0);
	expect_quiet(fx, 1);
	assert_null(registry_hash(hub, X, 0)->fetch);
	assert_true(LIST_EMPTY(&b1->waits));

	/* four waiters in the transfer: a fifth delivery is not counted */
	router_delivered(hub, fx->gw[0], 7, 5);
	assert_int_equal(hub->stats.requests_served, 4);
	assert_int_equal(hub->stats.bytes_relayed, 4 * 1000);
	assert_int_equal(hub->stats.requests_total,
			 hub->stats.requests_served + hub->stats.requests_failed);
}

/*
 * Named waiters that are gone by the BLOB, or that their holder's gateway cannot reach: the first
 * may be sent the blob but are not counted; the others hear NOT_FOUND from the UNDELIVERED that
 * follows the BLOB, as when a ROUTE named them.
 */
static void test_request_named_left_or_unreached(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1), *b2 = conn(fx, 1, 2);
	registry_add_holder(hub, a1, X);
	router_want(hub, b1, X);
	router_want(hub, b2, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	assert_int_equal(fx->last_request.nnamed, 2);
	router_conn_close(hub, b2);

	/* every waiter left was named: no route; the gateway reports later (its link to b2's
	 * gateway was still connecting), when a message settles the blob */
	router_blob(hub, fx->gw[0], 3, X, 10, a1->id, HUBPROTO_BLOB_MORE);
	expect_settled(fx, 0, 3);
	expect_quiet(fx, 1);
	router_delivered(hub, fx->gw[0], 3, 2);
	assert_int_equal(hub->stats.requests_served, 1);
	assert_int_equal(hub->stats.bytes_relayed, 10);

	/* again, and gw-A cannot reach gw-B */
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	assert_int_equal(fx->last_request.nnamed, 1);
	router_blob(hub, fx->gw[0], 4, X, 10, a1->id, HUBPROTO_BLOB_MORE);
	expect_settled(fx, 0, 4);
	uint8_t ids[8];
	put_u64(ids, 1);
	router_undelivered(hub, fx->gw[0], X, gw_endpoint[1], ids, 1);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, X);
	assert_int_equal(hub->stats.requests_failed, 1);
	router_delivered(hub, fx->gw[0], 4, 0);
	assert_int_equal(hub->stats.requests_served, 1);
}

/*
 * A holder that timed out: the next holder's REQUEST names the waiters again, but a late answer
 * from the first still reaches those its own REQUEST named (its gateway keeps that list), so it
 * serves them by name: a second copy by ROUTE could answer their next want, which the hub would
 * then count and serve again (seen in tests/e2e/named-waiters.test.mjs). The next holder's
 * answer then finds nobody waiting.
 */
static void test_request_named_late_answer(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a2, X);
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 2, X);
	assert_int_equal(fx->last_request.nnamed, 1);
	hub->holder_timeout_ms = 20000; /* the next deadline comes after this one */
	router_expire(hub, router_next_deadline(hub));
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	assert_int_equal(fx->last_request.nnamed, 1);
	assert_true(fx->last_request.named[0] == 1);

	router_blob(hub, fx->gw[0], 5, X, 10, a2->id, 1); /* the late answer, to its list */
	assert_int_equal(hub->stats.requests_served, 1);
	expect_settled(fx, 0, 5); /* no second copy */
	router_blob(hub, fx->gw[0], 6, X, 10, a1->id, 1);
	expect_settled(fx, 0, 6);
	router_delivered(hub, fx->gw[0], 6, 1); /* (its stale list: not a transfer) */
	assert_int_equal(hub->stats.requests_served, 1);
	assert_int_equal(hub->stats.requests_total, 1);
	expect_quiet(fx, 1);
}

/*
 * As above, but the waiter wants the hash again (the late holder's gateway gave it the blob)
 * before that BLOB reaches the hub: a second want, which the late BLOB counts as served by name
 * and routes for the next want (not counted twice by the next holder's name).
 */
static void test_request_named_late_answer_again(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a2, X);
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 2, X);
	hub->holder_timeout_ms = 20000;
	router_expire(hub, router_next_deadline(hub));
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	router_want(hub, b1, X); /* a2's gateway served it by name */
	assert_int_equal(hub->stats.requests_total, 2);
	router_blob(hub, fx->gw[0], 5, X, 10, a2->id, 1); /* the late answer, to its list */
	assert_int_equal(hub->stats.requests_served, 1);
	size_t n;
	assert_int_equal(expect_route(fx, 0, 5, X, 0, gw_endpoint[1], &n), 1); /* the next want */
	assert_int_equal(n, 1);
	router_delivered(hub, fx->gw[0], 5, 1);
	router_blob(hub, fx->gw[0], 6, X, 10, a1->id, 1);
	expect_settled(fx, 0, 6);
	router_delivered(hub, fx->gw[0], 6, 1);
	assert_int_equal(hub->stats.requests_served, 2);
	assert_int_equal(hub->stats.requests_total, 2);
	assert_int_equal(hub->stats.bytes_relayed, 20);
	expect_quiet(fx, 1);
}

/*
 * A ROUTE that cannot be sent: the waiters it named wait again, but not those the REQUEST named,
 * who have the blob; the transfer keeps them until the gateway reports it (after PEER_KEEP_MS).
 */
static void test_request_named_route_unsendable(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2);
	struct conn *b1 = conn(fx, 1, 1), *b2 = conn(fx, 1, 2);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a2, X);
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 2, X);
	router_want(hub, b2, X);
	router_blob(hub, fx->gw[0], 8, X, 10, a2->id, 1);
	/* the turn's ROUTE (b2's) is lost, as link_flush_routes finds it */
	uint8_t entry[HUBPROTO_ROUTE_ENTRY] = {0};
	put_u64(entry, 8);
	hubproto_routes_clear(&fx->gw[0]->routes);
	router_unrouted(hub, fx->gw[0], entry, 1);
	struct fetch *f = registry_hash(hub, X, 0)->fetch;
	assert_non_null(f);
	assert_int_equal(f->nwaiters, 1);
	assert_ptr_equal(LIST_FIRST(&f->waiters)->c, b2);
	assert_true(LIST_EMPTY(&b1->waits));
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	assert_int_equal(fx->last_request.nnamed, 1);
	assert_true(fx->last_request.named[0] == 2);
	uint64_t key[2] = {8, fx->gw[0]->slot};
	assert_null(map_get(&hub->transfer_keys, key)); /* b1 was counted from the BLOB */
	router_delivered(hub, fx->gw[0], 8, 2);
	assert_int_equal(hub->stats.requests_served, 1);
	expect_quiet(fx, 1);
	(void)a1;
}

/*
 * Hub protocol 7: a blob every waiter of which the REQUEST named costs its BLOB alone. The
 * deliveries the entry gives are counted at once (at most the named waiters), nothing is routed,
 * no transfer waits for a DELIVERED, and the next message to that gateway says the blob is
 * settled; a stale list's surplus answers a routed waiter's newer want and counts with the
 * DELIVERED of that transfer, as version 6 counted both together.
 */
static void test_blob_named_settles(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *a2 = conn(fx, 0, 2), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a1, Y);
	router_want(hub, b1, X);
	router_want(hub, a2, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	assert_int_equal(fx->last_request.nnamed, 2);
	counts_flush(hub); /* the counts the wants asked for */
	assert_int_equal(expect_count(fx, 0, X), 1);
	assert_int_equal(expect_count(fx, 1, X), 1);
	router_blob(hub, fx->gw[0], 7, X, 100, a1->id, 3); /* one more than it named: not counted */
	assert_int_equal(hub->stats.requests_served, 2);
	assert_int_equal(hub->stats.bytes_relayed, 200);
	assert_null(registry_hash(hub, X, 0)->fetch);
	assert_true(LIST_EMPTY(&hub->transfers));
	assert_int_equal(fx->gw[0]->routes.list_len, 0);
	counts_flush(hub); /* the fetch's end changed no count: no COUNT tells it again */
	expect_quiet(fx, 0);
	expect_quiet(fx, 1);

	/* the next REQUEST to that gateway settles it: no ROUTE of its own is due */
	router_want(hub, b1, Y);
	link_flush(hub);
	struct hubmsg m;
	assert_int_equal(recv_wait(fx->sock[0], &m, 2000), 1);
	assert_int_equal(m.cmd, HUB_REQUEST);
	assert_true(m.id == 7);
	hubmsg_close(&m);
	assert_int_equal(link_settle(hub, now_ms() + 1000), -1);
	expect_quiet(fx, 0);
	router_blob(hub, fx->gw[0], 8, Y, 10, a1->id, 1);
	assert_int_equal(hub->stats.requests_served, 3);
	expect_settled(fx, 0, 8);

	/* a stale list: a1's REQUEST named b1 and a2, the hub marked neither for a1 (a2 is
	 * asked now), b1 wanted it again: its route, and the surplus of the BLOB, count together */
	registry_add_holder(hub, a1, Z);
	registry_add_holder(hub, a2, Z);
	router_want(hub, b1, Z);
	expect_msg(fx, 0, HUB_REQUEST, 2, Z);		  /* a2: the newer holder, at the front */
	router_blob(hub, fx->gw[0], 9, Z, 10, a1->id, 1); /* (a list of an earlier fetch) */
	assert_int_equal(hub->stats.requests_served, 3);
	size_t n;
	assert_int_equal(expect_route(fx, 0, 9, Z, 0, gw_endpoint[1], &n), 1);
	assert_int_equal(n, 1);
	router_delivered(hub, fx->gw[0], 9, 0); /* b1 had the stale copy: the route's dropped */
	assert_int_equal(hub->stats.requests_served, 4);
	assert_int_equal(hub->stats.requests_total, 4);
	assert_int_equal(hub->stats.bytes_relayed, 200 + 10 + 10);
	assert_true(LIST_EMPTY(&hub->transfers));
}

/*
 * A BLOB that says more (a named waiter's link still connecting) counts nothing yet: its
 * DELIVERED counts what the BLOB gave and what came after, once. Should its gateway be forgotten
 * before that DELIVERED, every named waiter waits again (which of them got the blob, the hub
 * cannot tell): one counted served at the BLOB would then be answered a second time, and
 * served + failed would pass requests_total.
 */
static void test_blob_more_counts_with_delivered(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1), *b2 = conn(fx, 1, 2);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a1, Y);
	router_want(hub, b1, X);
	router_want(hub, b2, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	assert_int_equal(fx->last_request.nnamed, 2);
	router_blob(hub, fx->gw[0], 7, X, 100, a1->id, 1 | HUBPROTO_BLOB_MORE);
	assert_int_equal(hub->stats.requests_served, 0);
	assert_false(LIST_EMPTY(&hub->transfers));
	router_delivered(hub, fx->gw[0], 7, 1); /* the parked one went */
	assert_int_equal(hub->stats.requests_served, 2);
	assert_int_equal(hub->stats.bytes_relayed, 200);
	assert_true(LIST_EMPTY(&hub->transfers));

	router_want(hub, b1, Y);
	router_want(hub, b2, Y);
	expect_msg(fx, 0, HUB_REQUEST, 1, Y);
	assert_int_equal(fx->last_request.nnamed, 2);
	router_blob(hub, fx->gw[0], 8, Y, 100, a1->id, 1 | HUBPROTO_BLOB_MORE);
	router_gateway_remove(hub, fx->gw[0]); /* before its DELIVERED */
	fx->gw[0] = NULL;
	assert_int_equal(hub->stats.requests_total, 4);
	assert_int_equal(hub->stats.requests_failed, 2); /* no holder left: both hear NOT_FOUND */
	assert_int_equal(hub->stats.requests_served, 2);
	assert_int_equal(hub->stats.bytes_relayed, 200);
}

/* A gateway that takes no messages (gone, its queue full) is offered the ROUTE that only settles
 * once a heartbeat, not every LINK_SETTLE_MS: the next message that reaches it settles anyway. */
static void test_settle_unsendable(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct gateway *ghost = ghost_gateway(hub);
	router_blob(hub, ghost, 3, X, 10, 0, 0); /* a late answer: nobody waits */
	int64_t now = now_ms();
	assert_int_equal(link_settle(hub, now), now + 5);
	assert_int_equal(link_settle(hub, now + 5), now + 5 + hub->heartbeat_ms);
	assert_int_equal(link_settle(hub, now + 6), now + 5 + hub->heartbeat_ms);
	expect_quiet(fx, 0);
	expect_quiet(fx, 1);
}

/*
 * A named waiter's gateway wants the hash again before the BLOB that served it by name reaches
 * the hub (the holder's gateway and the waiter's race to the hub): a second want, counted; that
 * BLOB leaves it waiting, and its ROUTE names it, so the second want is served too.
 */
static void test_request_named_wants_again(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1);
	registry_add_holder(hub, a1, X);
	router_want(hub, b1, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	assert_int_equal(fx->last_request.nnamed, 1);
	router_want(hub, b1, X); /* served by name already, and wanted again */
	router_want(hub, b1, X); /* (once only) */
	assert_int_equal(hub->stats.requests_total, 2);
	expect_quiet(fx, 0);
	router_blob(hub, fx->gw[0], 2, X, 10, a1->id, 1);
	size_t n;
	assert_int_equal(expect_route(fx, 0, 2, X, 0, gw_endpoint[1], &n), 1);
	assert_int_equal(n, 1);
	assert_null(registry_hash(hub, X, 0)->fetch);
	router_delivered(hub, fx->gw[0], 2, 1);
	assert_int_equal(hub->stats.requests_served, 2);
	assert_int_equal(hub->stats.bytes_relayed, 20);
	expect_quiet(fx, 1);
}

/*
 * The holder's gateway dies after its ROUTE but before it reported the blob sent: the waiters it
 * was to serve want the blob again, from a holder that is left, or hear NOT_FOUND.
 */
static void test_holder_gateway_dies_mid_transfer(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *c2 = conn(fx, 1, 2), *a1 = conn(fx, 0, 1), *b1 = conn(fx, 1, 1),
		    *b3 = conn(fx, 1, 3);
	registry_add_holder(hub, c2, X);
	registry_add_holder(hub, c2, Z);
	registry_add_holder(hub, a1, X);
	registry_add_holder(hub, a1, Y);
	router_want(hub, b3, Z); /* c2 is busy: X is asked of a1, on the other gateway */
	router_want(hub, b1, X);
	router_want(hub, b1, Y);
	expect_msg(fx, 1, HUB_REQUEST, 2, Z);
	expect_msg(fx, 0, HUB_REQUEST, 1, X);
	expect_msg(fx, 0, HUB_REQUEST, 1, Y);
	size_t n;
	router_blob(hub, fx->gw[0], 5, X, 100, 0, HUBPROTO_BLOB_MORE);
	router_blob(hub, fx->gw[0], 6, Y, 100, 0, HUBPROTO_BLOB_MORE);
	expect_route(fx, 0, 5, X, 0, gw_endpoint[1], &n);
	expect_route(fx, 0, 6, Y, 0, gw_endpoint[1], &n);
	assert_null(registry_hash(hub, X, 0)->fetch);

	router_gateway_remove(hub, fx->gw[0]);
	fx->gw[0] = NULL;
	/* X is asked of the holder that is left; Y has none: not found */
	struct fetch *f = registry_hash(hub, X, 0)->fetch;
	assert_non_null(f);
	assert_ptr_equal(f->holder, c2);
	assert_ptr_equal(LIST_FIRST(&f->waiters)->c, b1);
	expect_msg(fx, 1, HUB_NOT_FOUND, 1, Y);
	expect_msg(fx, 1, HUB_REQUEST, 2, X);
	assert_int_equal(hub->stats.requests_total, 3);
	assert_int_equal(hub->stats.requests_failed, 1);
	assert_int_equal(hub->stats.requests_served, 0);
}

/*
 * A gateway's HEARTBEAT counters count since it started: the hub adds what grew. A gateway that
 * says HELLO again (a re-announcement to the same hub) is forgotten and joins anew, but what was
 * added of its counters is not added a second time.
 */
static void test_counters_survive_rejoin(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	uint8_t list[HUB_GWC_COUNT * 8] = {0};
	struct hubmsg beat = {.cmd = HUB_HEARTBEAT, .peer_len = 4, .id = 101};
	memcpy(beat.peer, gw_peer[1], 4);
	beat.list = list;
	beat.list_count = HUB_GWC_COUNT;
	put_u64(list + 8 * HUB_GWC_HUB_REFUSED, 7);
	link_handle(hub, &beat);
	assert_int_equal(hub->stats.gateway[HUB_GWC_HUB_REFUSED], 7);

	char data[HUBPROTO_HELLO_DATA_MAX];
	struct hubmsg hello = {.cmd = HUB_HELLO, .peer_len = 4, .id = 101};
	memcpy(hello.peer, gw_peer[1], 4);
	hello.data = (const uint8_t *)data;
	hello.data_len = hubproto_hello_data(data, "gw-B", gw_endpoint[1]);
	link_handle(hub, &hello);
	fx->gw[1] = registry_gateway_find(hub, (const uint8_t *)gw_peer[1], 4, 101);
	assert_non_null(fx->gw[1]);
	expect_msg(fx, 1, HUB_WELCOME, hub->instance, (const uint8_t[HASH_LEN]){0});
	link_handle(hub, &beat); /* the same figures: nothing new */
	assert_int_equal(hub->stats.gateway[HUB_GWC_HUB_REFUSED], 7);
	put_u64(list + 8 * HUB_GWC_HUB_REFUSED, 9);
	link_handle(hub, &beat);
	assert_int_equal(hub->stats.gateway[HUB_GWC_HUB_REFUSED], 9);
}

int main(void)
{
	log_init("test_registry", LOG_LEVEL_WARN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_holders, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_conn_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gateway_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_want_unknown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_want_shared_fetch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delivered_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_requests_one_per_turn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_want_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_holder_rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_holder_near_waiter, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counters_survive_rejoin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fail_mismatch_and_decline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routes_and_undelivered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_route_to_gateway_without_endpoint, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_route_unsendable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_names_waiters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_named_left_or_unreached, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_named_late_answer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_named_late_answer_again, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_named_wants_again, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blob_named_settles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_settle_unsendable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blob_more_counts_with_delivered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_named_route_unsendable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_holder_gateway_dies_mid_transfer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unreachable_holder, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_requesters_and_holders_leave, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oom_add_holder, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oom_gateway_remove, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oom_want, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oom_want_new_conn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oom_blob, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
