/*
 * test_watch.c — the hub telling frontends of count changes for hashes they looked up (watch.c).
 *
 * A real `struct hub` with a ROUTER socket (inproc); one gateway (a DEALER) whose connections
 * hold and drop, and frontends (DEALERs) that send LOOKUP as ephemeral-fcgi does. Every COUNT a
 * frontend receives is read back: a change of a watched hash reaches every frontend that asked
 * within its watch time, at once; nothing reaches a frontend that asked for no watch, nor after
 * the watch is over, nor for hashes nobody looked up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hubfx.h"
#include "log.h"

#define ENDPOINT "inproc://test-watch"
#define NFE	 2

static const char *const fe_peer[NFE] = {"fe-1", "fe-2"};

struct fx {
	struct hub hub;
	void *gw_sock;
	struct gateway *gw;
	void *fe[NFE];
	uint64_t next_id;
};

static uint8_t X[HASH_LEN], Y[HASH_LEN];

/* Lets the hub read and handle whatever its peers sent, as main.c's loop does. */
static void hub_turn(struct hub *hub)
{
	zmq_pollitem_t item = {hub->router, 0, ZMQ_POLLIN, 0};
	while (zmq_poll(&item, 1, 0) > 0) { /* (inproc: what was sent is there) */
		struct hubmsg m;
		if (hubproto_recv(hub->router, &m, 1) != 1)
			break;
		link_handle(hub, &m);
		hubmsg_close(&m);
	}
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
	struct hub *hub = &fx->hub;
	assert_non_null(fx);
	memset(X, 0x11, HASH_LEN);
	memset(Y, 0x22, HASH_LEN);

	hubfx_init(hub);
	assert_int_equal(hubfx_bind(hub, ENDPOINT), 0);

	fx->gw_sock = hubproto_socket(hub->ctx, ZMQ_DEALER);
	assert_int_equal(zmq_setsockopt(fx->gw_sock, ZMQ_ROUTING_ID, "gw-A", 4), 0);
	assert_int_equal(zmq_connect(fx->gw_sock, ENDPOINT), 0);
	fx->gw = registry_gateway_join(hub, (const uint8_t *)"gw-A", 4, 100, "gw-A", 4);
	assert_non_null(fx->gw);
	for (int f = 0; f < NFE; f++) {
		fx->fe[f] = hubproto_socket(hub->ctx, ZMQ_DEALER);
		assert_int_equal(zmq_setsockopt(fx->fe[f], ZMQ_ROUTING_ID, fe_peer[f], 4), 0);
		assert_int_equal(zmq_connect(fx->fe[f], ENDPOINT), 0);
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	zmq_close(fx->gw_sock);
	for (int f = 0; f < NFE; f++)
		zmq_close(fx->fe[f]);
	hubfx_free(&fx->hub);
	free(fx);
	return 0;
}

/* Frontend f looks hash up, asking to hear of changes for watch_ms; returns the viewers. */
static uint32_t lookup(struct fx *fx, int f, const uint8_t *hash, uint32_t watch_ms)
{
	struct hubproto_out o = {
	    .cmd = HUB_LOOKUP, .id = ++fx->next_id, .hash = hash, .value = watch_ms};
	assert_int_equal(hubproto_send(fx->fe[f], NULL, 0, &o), 0);
	hub_turn(&fx->hub);
	struct hubmsg m;
	assert_int_equal(recv_wait(fx->fe[f], &m, 2000), 1);
	assert_int_equal(m.cmd, HUB_LOOKUP_REPLY);
	assert_true(m.id == fx->next_id);
	uint32_t viewers = m.value;
	hubmsg_close(&m);
	return viewers;
}

/* The next message to frontend f is a COUNT giving hash these viewers. */
static void expect_count(struct fx *fx, int f, const uint8_t *hash, uint32_t viewers)
{
	struct hubmsg m;
	if (recv_wait(fx->fe[f], &m, 2000) != 1)
		fail_msg("frontend %s: no COUNT", fe_peer[f]);
	assert_int_equal(m.cmd, HUB_COUNT);
	assert_int_equal(m.list_count, 1);
	assert_memory_equal(m.list, hash, HASH_LEN);
	assert_int_equal(get_u32(m.list + HASH_LEN), viewers);
	hubmsg_close(&m);
}

static void expect_quiet(struct fx *fx, int f)
{
	struct hubmsg m;
	if (recv_wait(fx->fe[f], &m, 0) != 0) { /* (inproc: what was sent is there) */
		const char *name = hubproto_cmd_name(m.cmd);
		hubmsg_close(&m);
		fail_msg("frontend %s: unexpected %s", fe_peer[f], name);
	}
}

static struct conn *conn(struct fx *fx, uint64_t id)
{
	struct conn *c = registry_conn(&fx->hub, fx->gw, id, 1);
	assert_non_null(c);
	return c;
}

static void test_changes_reach_frontends_that_asked(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a = conn(fx, 1), *b = conn(fx, 2);

	assert_int_equal(lookup(fx, 0, X, 1000), 0); /* gone now: "tell me if it comes" */
	assert_int_equal(registry_add_holder(hub, a, X), 1);
	counts_flush(hub);
	expect_count(fx, 0, X, 1);
	assert_int_equal(registry_add_holder(hub, b, X), 1);
	counts_flush(hub);
	expect_count(fx, 0, X, 2); /* every change, not only zero crossings */
	expect_quiet(fx, 1);	   /* fe-2 asked nothing */

	assert_int_equal(lookup(fx, 1, Y, 1000), 0); /* fe-2 is now a watcher too */
	router_drop(hub, a, X);
	router_drop(hub, b, X);
	counts_flush(hub);
	expect_count(fx, 0, X, 0); /* one COUNT per turn, the last value */
	expect_count(fx, 1, X, 0); /* sent to every frontend watching anything */
	expect_quiet(fx, 0);

	assert_int_equal(registry_add_holder(hub, a, X), 1);
	assert_int_equal(router_drop(hub, a, X), 1);
	counts_flush(hub); /* came and went within one turn: nothing changed */
	expect_quiet(fx, 0);
	router_conn_close(hub, a);
	router_conn_close(hub, b);
	counts_flush(hub);
}

static void test_no_watch_no_count(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a = conn(fx, 1);

	assert_int_equal(lookup(fx, 0, X, 0), 0); /* ephemeral-ctl and old frontends: value 0 */
	assert_int_equal(registry_add_holder(hub, a, X), 1);
	counts_flush(hub);
	expect_quiet(fx, 0);

	assert_int_equal(lookup(fx, 0, X, 1), 1); /* a watch of 1 ms ... */
	struct timespec ts = {0, 5 * 1000 * 1000};
	nanosleep(&ts, NULL);
	router_drop(hub, a, X);
	counts_flush(hub);
	expect_quiet(fx, 0); /* ... is over */

	assert_int_equal(lookup(fx, 0, Y, 1000), 0);
	assert_int_equal(registry_add_holder(hub, a, X), 1); /* X: nobody watches it now */
	counts_flush(hub);
	expect_quiet(fx, 0);
	router_conn_close(hub, a);
	counts_flush(hub);
}

int main(void)
{
	log_init("test_watch", LOG_LEVEL_WARN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_changes_reach_frontends_that_asked, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_no_watch_no_count, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
