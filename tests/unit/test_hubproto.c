/*
 * test_hubproto.c — the hub protocol over real ZeroMQ sockets, and its parser on bad input.
 *
 * Every command makes a round trip DEALER -> ROUTER and ROUTER -> DEALER (inproc, one context)
 * through hubproto_send and hubproto_recv; the expected shape of each command is written out
 * here as data, independently of hubproto.c's own table. Malformed messages must come back as
 * -1 with a reason and leave the socket ready for the next good message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hubproto.h"
#include "oom.h"

#define ENDPOINT "inproc://test-hubproto"
#define GW_ID	 "gw-1"

/* What each command carries, as PROTOCOL/HUB-PROTOCOL documents it. */
static const struct {
	uint8_t cmd;
	size_t list_elem; /* 0: no list frame */
	int has_data;
} shapes[] = {
    {HUB_HELLO, 0, 1},
    {HUB_HEARTBEAT, 8, 0},
    {HUB_CONN_OPEN, 0, 0},
    {HUB_CONN_CLOSE, 0, 0},
    {HUB_HAVE, HASH_LEN, 0},
    {HUB_DROP, HASH_LEN, 0},
    {HUB_WANT, HUBPROTO_CONN_KEY_LEN, 0},
    {HUB_BLOB, HUBPROTO_BLOB_ENTRY, 0},
    {HUB_FAIL, 0, 0},
    {HUB_DELIVERED, HUBPROTO_DELIVERED_ENTRY, 0},
    {HUB_UNDELIVERED, 8, 1},
    {HUB_WELCOME, 0, 0},
    {HUB_PING, 0, 0},
    {HUB_RESET, 0, 0},
    {HUB_REQUEST, HUBPROTO_ROUTE_ENTRY, 1},
    {HUB_NOT_FOUND, 0, 0},
    {HUB_COUNT, HUBPROTO_COUNT_ENTRY, 0},
    {HUB_ROUTE, HUBPROTO_ROUTE_ENTRY, 1},
    {HUB_PEER_KEYS, ZSEC_KEY_LEN, 0},
    {HUB_LOOKUP, 0, 0},
    {HUB_STATS, 0, 0},
    {HUB_LOOKUP_REPLY, 0, 0},
    {HUB_STATS_REPLY, 0, 1},
    {HUB_DELIVER, 8, 1},
};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

struct pair {
	void *ctx;
	void *router;
	void *dealer;
};

/* Waits up to two seconds for a message, then receives it. */
static int recv_wait(void *sock, struct hubmsg *m, int peer_frame)
{
	zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
	if (zmq_poll(&item, 1, 2000) <= 0)
		return 0;
	return hubproto_recv(sock, m, peer_frame);
}

static void send_ok(void *sock, const uint8_t *peer, size_t peer_len, const struct hubproto_out *o)
{
	if (hubproto_send(sock, peer, peer_len, o) != 0)
		fail_msg("hubproto_send %s: %s", hubproto_cmd_name(o->cmd), zmq_strerror(errno));
}

static int setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	int one = 1;
	assert_non_null(p);
	p->ctx = zmq_ctx_new();
	assert_non_null(p->ctx);
	p->router = hubproto_socket(p->ctx, ZMQ_ROUTER);
	assert_non_null(p->router);
	assert_int_equal(zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)), 0);
	assert_int_equal(zmq_bind(p->router, ENDPOINT), 0);
	p->dealer = hubproto_socket(p->ctx, ZMQ_DEALER);
	assert_non_null(p->dealer);
	assert_int_equal(zmq_setsockopt(p->dealer, ZMQ_ROUTING_ID, GW_ID, strlen(GW_ID)), 0);
	assert_int_equal(zmq_connect(p->dealer, ENDPOINT), 0);

	/* Once the ROUTER has read from the DEALER it knows its routing id both ways. */
	struct hubproto_out o = {.cmd = HUB_HEARTBEAT, .id = 1};
	struct hubmsg m;
	send_ok(p->dealer, NULL, 0, &o);
	assert_int_equal(recv_wait(p->router, &m, 1), 1);
	hubmsg_close(&m);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;
	zmq_close(p->dealer);
	zmq_close(p->router);
	zmq_ctx_term(p->ctx);
	free(p);
	return 0;
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
}

/* Sends one message of every command and checks every field on the other side. */
static void round_trip(void *from, void *to, int to_is_router, const uint8_t *peer, size_t peer_len,
		       uint64_t id, uint32_t value, int null_hash)
{
	for (size_t i = 0; i < NSHAPES; i++) {
		/* list: three elements of any shape's size (at most 64 bytes) */
		uint8_t hash[HASH_LEN], list[3 * 64], data[64];
		assert_true(shapes[i].list_elem <= 64);
		size_t list_count = shapes[i].list_elem ? 3 : 0;
		size_t data_len = shapes[i].has_data ? sizeof(data) : 0;
		fill(hash, sizeof(hash), (uint8_t)(shapes[i].cmd + 1));
		fill(list, sizeof(list), (uint8_t)(shapes[i].cmd + 2));
		fill(data, sizeof(data), (uint8_t)(shapes[i].cmd + 3));

		struct hubproto_out o = {.cmd = shapes[i].cmd,
					 .id = id,
					 .hash = null_hash ? NULL : hash,
					 .value = value,
					 .list = list,
					 .list_count = list_count,
					 .data = data,
					 .data_len = data_len};
		send_ok(from, peer, peer_len, &o);

		struct hubmsg m;
		assert_int_equal(recv_wait(to, &m, to_is_router), 1);
		assert_null(m.error);
		assert_int_equal(m.cmd, shapes[i].cmd);
		if (to_is_router)
			assert_memory_equal(m.peer, GW_ID, strlen(GW_ID));
		assert_int_equal(m.peer_len, to_is_router ? strlen(GW_ID) : 0);
		assert_true(m.id == id);
		assert_int_equal(m.value, value);
		if (null_hash) {
			uint8_t zeros[HASH_LEN] = {0};
			assert_memory_equal(m.hash, zeros, HASH_LEN);
		} else {
			assert_memory_equal(m.hash, hash, HASH_LEN);
		}
		assert_int_equal(m.list_count, list_count);
		if (list_count) {
			assert_non_null(m.list);
			assert_memory_equal(m.list, list, list_count * shapes[i].list_elem);
		} else {
			assert_null(m.list);
		}
		assert_int_equal(m.data_len, data_len);
		if (data_len) {
			assert_non_null(m.data);
			assert_memory_equal(m.data, data, data_len);
			assert_non_null(m.data_frame);
			assert_ptr_equal(zmq_msg_data(m.data_frame), m.data);
		} else {
			assert_null(m.data);
			assert_null(m.data_frame);
		}
		assert_int_equal(m.nframes, 1 + !!shapes[i].list_elem + shapes[i].has_data);
		hubmsg_close(&m);
		assert_int_equal(m.nframes, 0);
	}
}

/* HELLO's data: built and split by one pair of functions; a resent HELLO (after a hub restart)
 * carries the same endpoint as the first. */
static void test_hello_data(void **state)
{
	(void)state;
	char buf[HUBPROTO_HELLO_DATA_MAX];
	struct hubmsg m = {0};
	const char *name;
	size_t name_len;
	char ep[HUBPROTO_MAX_ENDPOINT + 1];
	m.data = (const uint8_t *)buf;
	m.data_len = hubproto_hello_data(buf, "gw1", "tcp://127.0.0.1:5560");
	assert_int_equal(hubproto_hello_parse(&m, &name, &name_len, ep), 0);
	assert_int_equal(name_len, 3);
	assert_memory_equal(name, "gw1", 3);
	assert_string_equal(ep, "tcp://127.0.0.1:5560");

	/* an old-style HELLO (name only) has no endpoint */
	m.data = (const uint8_t *)"gw2";
	m.data_len = 3;
	assert_int_equal(hubproto_hello_parse(&m, &name, &name_len, ep), 0);
	assert_int_equal(name_len, 3);
	assert_string_equal(ep, "");

	/* a name past its maximum is refused */
	char longname[HUBPROTO_MAX_NAME + 2];
	memset(longname, 'n', sizeof(longname));
	m.data = (const uint8_t *)longname;
	m.data_len = sizeof(longname);
	assert_int_equal(hubproto_hello_parse(&m, &name, &name_len, ep), -1);
}

/* DELIVERED's list: (token, deliveries) entries that grow as a gateway's turn finishes blobs,
 * and arrive as they were put. */
static void test_delivered_list(void **state)
{
	struct pair *p = *state;
	uint8_t *list = NULL;
	size_t len = 0, cap = 0;
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(
		    hubproto_delivered_put(&list, &len, &cap, UINT64_MAX - i, (uint32_t)i), 0);
	assert_int_equal(len, 100 * HUBPROTO_DELIVERED_ENTRY);
	struct hubproto_out o = {.cmd = HUB_DELIVERED, .list = list, .list_count = 100};
	send_ok(p->dealer, NULL, 0, &o);
	struct hubmsg m;
	assert_int_equal(recv_wait(p->router, &m, 1), 1);
	assert_int_equal(m.cmd, HUB_DELIVERED);
	assert_int_equal(m.list_count, 100);
	for (uint64_t i = 0; i < 100; i++) {
		assert_true(get_u64(m.list + i * HUBPROTO_DELIVERED_ENTRY) == UINT64_MAX - i);
		assert_int_equal(get_u32(m.list + i * HUBPROTO_DELIVERED_ENTRY + 8), i);
		uint32_t d;
		assert_true(hubproto_delivered_get(m.list, i, &d) == UINT64_MAX - i);
		assert_int_equal(d, i);
	}
	hubmsg_close(&m);
	free(list);
}

static void test_round_trip_dealer_to_router(void **state)
{
	struct pair *p = *state;
	round_trip(p->dealer, p->router, 1, NULL, 0, 0x0102030405060708ull, 0xdeadbeef, 0);
	round_trip(p->dealer, p->router, 1, NULL, 0, UINT64_MAX, UINT32_MAX, 0);
	round_trip(p->dealer, p->router, 1, NULL, 0, 0, 0, 1);
}

static void test_round_trip_router_to_dealer(void **state)
{
	struct pair *p = *state;
	const uint8_t *peer = (const uint8_t *)GW_ID;
	round_trip(p->router, p->dealer, 0, peer, strlen(GW_ID), 0x8000000000000001ull, 7, 0);
	round_trip(p->router, p->dealer, 0, peer, strlen(GW_ID), 42, 0x80000000u, 1);
}

/* Empty lists and empty data still travel as frames, and big blobs arrive whole. */
static void test_empty_and_large(void **state)
{
	struct pair *p = *state;
	struct hubmsg m;

	struct hubproto_out have = {.cmd = HUB_HAVE, .id = 9, .list = NULL, .list_count = 0};
	send_ok(p->dealer, NULL, 0, &have);
	assert_int_equal(recv_wait(p->router, &m, 1), 1);
	assert_int_equal(m.cmd, HUB_HAVE);
	assert_int_equal(m.list_count, 0);
	assert_int_equal(m.nframes, 2);
	hubmsg_close(&m);

	struct hubproto_out blob = {.cmd = HUB_DELIVER, .id = 3, .data = NULL, .data_len = 0};
	send_ok(p->dealer, NULL, 0, &blob);
	assert_int_equal(recv_wait(p->router, &m, 1), 1);
	assert_int_equal(m.cmd, HUB_DELIVER);
	assert_int_equal(m.data_len, 0);
	assert_non_null(m.data_frame);
	hubmsg_close(&m);

	size_t big = 4 * 1024 * 1024 + 17;
	uint8_t *buf = malloc(big);
	assert_non_null(buf);
	fill(buf, big, 0x33);
	struct hubproto_out large = {.cmd = HUB_DELIVER, .id = 4, .data = buf, .data_len = big};
	send_ok(p->dealer, NULL, 0, &large);
	assert_int_equal(recv_wait(p->router, &m, 1), 1);
	assert_int_equal(m.data_len, big);
	assert_memory_equal(m.data, buf, big);
	hubmsg_close(&m);
	free(buf);

	/* 1000 COUNT entries in one list */
	size_t n = 1000;
	uint8_t *counts = malloc(n * HUBPROTO_COUNT_ENTRY);
	assert_non_null(counts);
	fill(counts, n * HUBPROTO_COUNT_ENTRY, 0x44);
	struct hubproto_out cnt = {.cmd = HUB_COUNT, .list = counts, .list_count = n};
	send_ok(p->router, (const uint8_t *)GW_ID, strlen(GW_ID), &cnt);
	assert_int_equal(recv_wait(p->dealer, &m, 0), 1);
	assert_int_equal(m.list_count, n);
	assert_memory_equal(m.list, counts, n * HUBPROTO_COUNT_ENTRY);
	hubmsg_close(&m);
	free(counts);
}

static int frees;
static void *free_hint_seen;

static void count_free(void *data, void *hint)
{
	frees++;
	free_hint_seen = hint;
	free(data);
}

/* data_free: zmq owns the buffer and frees it exactly once, when the receiver lets go. */
static void test_zero_copy(void **state)
{
	struct pair *p = *state;
	int hint;
	uint8_t *buf = malloc(1000);
	assert_non_null(buf);
	fill(buf, 1000, 0x55);
	uint8_t copy[1000];
	memcpy(copy, buf, sizeof(copy));

	frees = 0;
	free_hint_seen = NULL;
	struct hubproto_out o = {.cmd = HUB_DELIVER,
				 .id = 77,
				 .data = buf,
				 .data_len = 1000,
				 .data_free = count_free,
				 .data_hint = &hint};
	send_ok(p->dealer, NULL, 0, &o);
	struct hubmsg m;
	assert_int_equal(recv_wait(p->router, &m, 1), 1);
	assert_int_equal(m.data_len, 1000);
	assert_memory_equal(m.data, copy, 1000);
	/* inproc hands the very buffer over: nothing was copied */
	assert_ptr_equal(m.data, buf);
	assert_int_equal(frees, 0);
	hubmsg_close(&m);
	assert_int_equal(frees, 1);
	assert_ptr_equal(free_hint_seen, &hint);
}

/* data_free on every failure path: unknown peer, no peer at all, unknown command. */
static void test_zero_copy_send_failure(void **state)
{
	struct pair *p = *state;
	struct hubproto_out o = {.cmd = HUB_DELIVER, .data_len = 10, .data_free = count_free};

	frees = 0;
	o.data = malloc(10);
	assert_non_null(o.data);
	errno = 0;
	assert_int_equal(hubproto_send(p->router, (const uint8_t *)"nobody", 6, &o), -1);
	assert_int_equal(errno, EHOSTUNREACH);
	assert_int_equal(frees, 1);

	/* a DEALER with no peer cannot queue anything (closed before any assertion: a socket
	 * left open would make zmq_ctx_term wait for ever) */
	o.cmd = HUB_STATS_REPLY;
	o.data = malloc(10);
	assert_non_null(o.data);
	void *lonely = hubproto_socket(p->ctx, ZMQ_DEALER);
	assert_non_null(lonely);
	errno = 0;
	int rc = hubproto_send(lonely, NULL, 0, &o);
	int err = errno;
	zmq_close(lonely);
	assert_int_equal(rc, -1);
	assert_int_equal(err, EAGAIN);
	assert_int_equal(frees, 2);

	/* a command the protocol does not have is refused, and the data still freed */
	o.cmd = 200;
	o.data = malloc(10);
	assert_non_null(o.data);
	errno = 0;
	assert_int_equal(hubproto_send(p->dealer, NULL, 0, &o), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(frees, 3);

	/* a command without a data frame takes ownership too: freed once, after sending */
	o.cmd = HUB_PING;
	o.data = malloc(10);
	assert_non_null(o.data);
	send_ok(p->dealer, NULL, 0, &o);
	assert_int_equal(frees, 4);
	struct hubmsg m;
	assert_int_equal(recv_wait(p->router, &m, 1), 1);
	assert_int_equal(m.cmd, HUB_PING);
	hubmsg_close(&m);
	assert_int_equal(frees, 4);
}

/* data_msg: one blob frame shared by many sends; the buffer lives until the last user closes. */
static void test_shared_data_frame(void **state)
{
	struct pair *p = *state;
	uint8_t *buf = malloc(5000);
	assert_non_null(buf);
	fill(buf, 5000, 0x66);
	uint8_t copy[5000];
	memcpy(copy, buf, sizeof(copy));

	frees = 0;
	zmq_msg_t blob;
	assert_int_equal(zmq_msg_init_data(&blob, buf, 5000, count_free, NULL), 0);
	uint8_t ids[8];
	put_u64(ids, 12345);
	struct hubproto_out o = {
	    .cmd = HUB_DELIVER, .hash = copy, .list = ids, .list_count = 1, .data_msg = &blob};
	for (int i = 0; i < 3; i++)
		send_ok(p->router, (const uint8_t *)GW_ID, strlen(GW_ID), &o);
	/* to nobody: fails, and the shared frame is untouched */
	assert_int_equal(hubproto_send(p->router, (const uint8_t *)"x", 1, &o), -1);
	assert_int_equal(frees, 0);

	for (int i = 0; i < 3; i++) {
		struct hubmsg m;
		assert_int_equal(recv_wait(p->dealer, &m, 0), 1);
		assert_int_equal(m.cmd, HUB_DELIVER);
		assert_int_equal(m.list_count, 1);
		assert_true(get_u64(m.list) == 12345);
		assert_int_equal(m.data_len, 5000);
		assert_memory_equal(m.data, copy, 5000);
		assert_ptr_equal(m.data, buf);
		hubmsg_close(&m);
	}
	assert_int_equal(frees, 0);
	assert_memory_equal(zmq_msg_data(&blob), copy, 5000);
	zmq_msg_close(&blob);
	assert_int_equal(frees, 1);
}

static void header(uint8_t h[HUBPROTO_HEADER_LEN], uint8_t cmd)
{
	memset(h, 0, HUBPROTO_HEADER_LEN);
	h[0] = 'E';
	h[1] = 'P';
	h[2] = HUBPROTO_VERSION;
	h[3] = cmd;
}

static void expect_parse_error(const uint8_t *h, size_t hlen, size_t list_len, int has_list,
			       size_t data_len, int has_data, const char *why)
{
	static uint8_t list[4096], data[4096];
	struct hubmsg m;
	memset(&m, 0, sizeof(m));
	/* the parser looks at lengths only, so a short buffer may stand in for a long frame */
	int rc = hubproto_parse(&m, h, hlen, has_list ? list : NULL, list_len, has_list,
				has_data ? data : NULL, data_len, has_data);
	assert_int_equal(rc, -1);
	assert_non_null(m.error);
	assert_string_equal(m.error, why);
}

/* ROUTE's peer address: an endpoint alone (plain), or with the gateway's key (CurveZMQ). */
static void test_peer_address(void **state)
{
	struct pair *p = *state;
	char pub[ZSEC_Z85_LEN + 1], sec[ZSEC_Z85_LEN + 1], long_ep[HUBPROTO_MAX_ENDPOINT + 2];
	uint8_t buf[HUBPROTO_MAX_PEER_ADDRESS];
	struct hubproto_peer_address a;
	const char *why = NULL;
	assert_int_equal(zmq_curve_keypair(pub, sec), 0);

	/* Without a key the data is the endpoint, byte for byte: what gateways read before. */
	size_t n = hubproto_peer_address(buf, "tcp://10.0.0.7:5560", "");
	assert_int_equal(n, strlen("tcp://10.0.0.7:5560"));
	assert_memory_equal(buf, "tcp://10.0.0.7:5560", n);
	assert_int_equal(hubproto_peer_address_parse(buf, n, &a, &why), 0);
	assert_string_equal(a.endpoint, "tcp://10.0.0.7:5560");
	assert_string_equal(a.public_z85, "");
	assert_int_equal(hubproto_peer_address(buf, "", NULL), 0); /* the holder's own: empty */
	assert_int_equal(hubproto_peer_address_parse(NULL, 0, &a, &why), 0);
	assert_string_equal(a.endpoint, "");

	/* With one: endpoint, NUL, key; through a real ROUTE, and at the largest size. */
	memset(long_ep, 'e', HUBPROTO_MAX_ENDPOINT);
	long_ep[HUBPROTO_MAX_ENDPOINT] = '\0';
	n = hubproto_peer_address(buf, long_ep, pub);
	assert_int_equal(n, HUBPROTO_MAX_PEER_ADDRESS);
	struct hubproto_routes r = {0};
	uint8_t hash[HASH_LEN] = {1}, conns[8];
	assert_int_equal(hubproto_routes_peer(&r, buf, n), 1);
	assert_int_equal(hubproto_routes_put(&r, 1, hash, 7, 1), 0);
	struct hubproto_out o = hubproto_routes_message(&r, HUB_ROUTE);
	assert_int_equal(hubproto_send(p->router, (const uint8_t *)GW_ID, strlen(GW_ID), &o), 0);
	hubproto_routes_free(&r);
	struct hubmsg m;
	struct hubproto_route route;
	size_t it = 0;
	assert_int_equal(recv_wait(p->dealer, &m, 0), 1);
	assert_null(hubmsg_user_id(&m)); /* no CurveZMQ here */
	assert_int_equal(hubproto_route_next(&m, &it, &route, conns, &why), 1);
	assert_int_equal(route.nconns, 1);
	assert_true(get_u64(conns) == 7);
	assert_int_equal(hubproto_peer_address_parse(route.addr, route.addr_len, &a, &why), 0);
	assert_string_equal(a.endpoint, long_ep);
	assert_string_equal(a.public_z85, pub);
	hubmsg_close(&m);

	/* What a gateway refuses to connect to. */
	long_ep[HUBPROTO_MAX_ENDPOINT] = 'e';
	long_ep[HUBPROTO_MAX_ENDPOINT + 1] = '\0';
	assert_int_equal(hubproto_peer_address(buf, long_ep, ""), 0);
	assert_int_equal(hubproto_peer_address(buf, "tcp://a:1", "short"), 0);
	assert_int_equal(
	    hubproto_peer_address_parse((const uint8_t *)long_ep, strlen(long_ep), &a, &why), -1);
	assert_string_equal(why, "peer endpoint too long");
	static const char *const bad_keys[] = {
	    "tcp://a:1\0short",
	    "tcp://"
	    "a:1\0\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
	};
	size_t ep = strlen("tcp://a:1") + 1;
	assert_int_equal(
	    hubproto_peer_address_parse((const uint8_t *)bad_keys[0], ep + 5, &a, &why), -1);
	assert_int_equal(
	    hubproto_peer_address_parse((const uint8_t *)bad_keys[1], ep + ZSEC_Z85_LEN, &a, &why),
	    -1);
	assert_string_equal(why, "peer key is not Z85");
	memcpy(buf, "tcp://a:1", ep);
	memcpy(buf + ep, pub, ZSEC_Z85_LEN);
	buf[ep + 10] = '\0'; /* a NUL inside the key */
	assert_int_equal(hubproto_peer_address_parse(buf, ep + ZSEC_Z85_LEN, &a, &why), -1);
}

static void test_parse_valid(void **state)
{
	(void)state;
	uint8_t h[HUBPROTO_HEADER_LEN], list[2 * 8], data[5] = "hello";
	header(h, HUB_DELIVER);
	put_u64(h + 4, 0x1122334455667788ull);
	fill(h + 12, HASH_LEN, 9);
	put_u32(h + 44, 0xcafef00d);
	fill(list, sizeof(list), 1);

	struct hubmsg m;
	memset(&m, 0, sizeof(m));
	assert_int_equal(hubproto_parse(&m, h, sizeof(h), list, sizeof(list), 1, data, 5, 1), 0);
	assert_null(m.error);
	assert_int_equal(m.cmd, HUB_DELIVER);
	assert_true(m.id == 0x1122334455667788ull);
	assert_memory_equal(m.hash, h + 12, HASH_LEN);
	assert_int_equal(m.value, 0xcafef00d);
	assert_ptr_equal(m.list, list);
	assert_int_equal(m.list_count, 2);
	assert_ptr_equal(m.data, data);
	assert_int_equal(m.data_len, 5);

	/* the largest allowed data for HELLO (name, NUL, endpoint) passes */
	header(h, HUB_HELLO);
	uint8_t name[HUBPROTO_MAX_NAME + 1 + HUBPROTO_MAX_ENDPOINT];
	assert_int_equal(hubproto_parse(&m, h, sizeof(h), NULL, 0, 0, name, sizeof(name), 1), 0);
	assert_int_equal(m.data_len, sizeof(name));
	assert_null(m.list);
}

static void test_parse_malformed(void **state)
{
	(void)state;
	uint8_t h[HUBPROTO_HEADER_LEN + 1];

	header(h, HUB_PING);
	expect_parse_error(h, HUBPROTO_HEADER_LEN - 1, 0, 0, 0, 0, "bad header");
	expect_parse_error(h, HUBPROTO_HEADER_LEN + 1, 0, 0, 0, 0, "bad header");
	expect_parse_error(h, 0, 0, 0, 0, 0, "bad header");
	h[0] = 'X';
	expect_parse_error(h, HUBPROTO_HEADER_LEN, 0, 0, 0, 0, "bad header");
	header(h, HUB_PING);
	h[1] = 'Q';
	expect_parse_error(h, HUBPROTO_HEADER_LEN, 0, 0, 0, 0, "bad header");
	header(h, HUB_PING);
	h[2] = HUBPROTO_VERSION + 1;
	expect_parse_error(h, HUBPROTO_HEADER_LEN, 0, 0, 0, 0, "unsupported protocol version");
	h[2] = 0;
	expect_parse_error(h, HUBPROTO_HEADER_LEN, 0, 0, 0, 0, "unsupported protocol version");

	static const uint8_t unknown[] = {0, 13, 31, 36, 41, 63, 67, 95, 99, 127, 129, 255};
	for (size_t i = 0; i < sizeof(unknown); i++) {
		header(h, unknown[i]);
		expect_parse_error(h, HUBPROTO_HEADER_LEN, 0, 0, 0, 0, "unknown command");
		assert_string_equal(hubproto_cmd_name(unknown[i]), "UNKNOWN");
	}

	/* wrong frame count: every command, with a frame added or taken away */
	for (size_t i = 0; i < NSHAPES; i++) {
		int has_list = shapes[i].list_elem != 0;
		size_t ll = shapes[i].list_elem;
		header(h, shapes[i].cmd);
		assert_string_not_equal(hubproto_cmd_name(shapes[i].cmd), "UNKNOWN");
		expect_parse_error(h, HUBPROTO_HEADER_LEN, ll, !has_list, 0, shapes[i].has_data,
				   "wrong number of frames for command");
		expect_parse_error(h, HUBPROTO_HEADER_LEN, ll, has_list, 0, !shapes[i].has_data,
				   "wrong number of frames for command");
	}

	/* lists that are not a whole number of elements */
	header(h, HUB_HAVE);
	expect_parse_error(h, HUBPROTO_HEADER_LEN, HASH_LEN + 1, 1, 0, 0,
			   "list frame is not a whole number of elements");
	expect_parse_error(h, HUBPROTO_HEADER_LEN, HASH_LEN - 1, 1, 0, 0,
			   "list frame is not a whole number of elements");
	header(h, HUB_COUNT);
	expect_parse_error(h, HUBPROTO_HEADER_LEN, HUBPROTO_COUNT_ENTRY * 2 - 4, 1, 0, 0,
			   "list frame is not a whole number of elements");
	header(h, HUB_DELIVER);
	expect_parse_error(h, HUBPROTO_HEADER_LEN, 7, 1, 0, 1,
			   "list frame is not a whole number of elements");
	header(h, HUB_BLOB);
	expect_parse_error(h, HUBPROTO_HEADER_LEN, HUBPROTO_BLOB_ENTRY + 8, 1, 0, 0,
			   "list frame is not a whole number of elements");
	header(h, HUB_ROUTE);
	expect_parse_error(h, HUBPROTO_HEADER_LEN, HUBPROTO_ROUTE_ENTRY - 2, 1, 0, 1,
			   "list frame is not a whole number of elements");

	/* data beyond each command's limit */
	header(h, HUB_HELLO);
	expect_parse_error(h, HUBPROTO_HEADER_LEN, 0, 0,
			   HUBPROTO_MAX_NAME + 1 + HUBPROTO_MAX_ENDPOINT + 1, 1,
			   "data frame too large");
	header(h, HUB_ROUTE); /* its table of peer addresses */
	expect_parse_error(h, HUBPROTO_HEADER_LEN, HUBPROTO_ROUTE_ENTRY, 1,
			   HUBPROTO_MAX_ROUTE_DATA + 1, 1, "data frame too large");
	header(h, HUB_UNDELIVERED);
	expect_parse_error(h, HUBPROTO_HEADER_LEN, 8, 1, HUBPROTO_MAX_ENDPOINT + 1, 1,
			   "data frame too large");
	header(h, HUB_DELIVER);
	expect_parse_error(h, HUBPROTO_HEADER_LEN, 8, 1, HASH_LEN + BLOB_MAX + 1, 1,
			   "data frame too large");
	header(h, HUB_STATS_REPLY);
	expect_parse_error(h, HUBPROTO_HEADER_LEN, 0, 0, 1024 * 1024 + 1, 1,
			   "data frame too large");
}

/*
 * One ROUTE carries the routes of a turn: each blob's entries in a row (its waiters on each
 * gateway, the receiver's own last), a table of the peer addresses they name, and an entry with
 * no connection for a blob nobody waits for any more. One REQUEST is built and read the same way,
 * the holder asked in the token's place, naming the waiters it knows (or nobody).
 */
static void routes_round_trip(struct pair *p, uint8_t cmd)
{
	struct hubproto_routes r = {0};
	uint8_t x[HASH_LEN], y[HASH_LEN];
	memset(x, 0x11, HASH_LEN);
	memset(y, 0x22, HASH_LEN);
	const char *a = "tcp://10.0.0.1:5560", *b = "tcp://10.0.0.2:5560";
	int pa = hubproto_routes_peer(&r, (const uint8_t *)a, strlen(a));
	int pb = hubproto_routes_peer(&r, (const uint8_t *)b, strlen(b));
	assert_int_equal(pa, 1);
	assert_int_equal(pb, 2);
	assert_int_equal(hubproto_routes_peer(&r, (const uint8_t *)a, strlen(a)), 1); /* once */
	assert_int_equal(hubproto_routes_peer(&r, NULL, 0), 0);			      /* yours */
	assert_int_equal(hubproto_routes_put(&r, 5, x, 10, pa), 0);
	assert_int_equal(hubproto_routes_put(&r, 5, x, 11, pa), 0);
	assert_int_equal(hubproto_routes_put(&r, 5, x, 12, pb), 0);
	assert_int_equal(hubproto_routes_put(&r, 5, x, 13, 0), 0);
	assert_int_equal(hubproto_routes_put(&r, 6, y, 0, 0), 0); /* nobody waits */
	assert_int_equal(hubproto_routes_put(&r, 7, y, 14, pb), 0);
	struct hubproto_out o = hubproto_routes_message(&r, cmd);
	assert_int_equal(hubproto_send(p->router, (const uint8_t *)GW_ID, strlen(GW_ID), &o), 0);
	struct hubmsg m;
	assert_int_equal(recv_wait(p->dealer, &m, 0), 1);
	assert_int_equal(m.cmd, cmd);
	assert_int_equal(m.list_count, 6);
	struct {
		uint64_t token;
		const uint8_t *hash;
		const char *addr;
		size_t nconns;
		uint64_t first;
		int last;
	} want[] = {{5, x, a, 2, 10, 0},
		    {5, x, b, 1, 12, 0},
		    {5, x, "", 1, 13, 1},
		    {6, y, "", 0, 0, 1},
		    {7, y, b, 1, 14, 1}};
	struct hubproto_route route;
	uint8_t conns[6 * 8];
	const char *why = NULL;
	size_t it = 0;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(hubproto_route_next(&m, &it, &route, conns, &why), 1);
		assert_true(route.token == want[i].token);
		assert_memory_equal(route.hash, want[i].hash, HASH_LEN);
		assert_int_equal(route.addr_len, strlen(want[i].addr));
		assert_memory_equal(route.addr, want[i].addr, route.addr_len);
		assert_int_equal(route.nconns, want[i].nconns);
		if (route.nconns)
			assert_true(get_u64(conns) == want[i].first);
		assert_int_equal(route.last, want[i].last);
	}
	assert_int_equal(hubproto_route_next(&m, &it, &route, conns, &why), 0);
	hubmsg_close(&m);

	/* A peer the table does not have, and a table whose entry runs past its end. */
	hubproto_routes_clear(&r);
	assert_int_equal(hubproto_routes_peer(&r, (const uint8_t *)a, strlen(a)), 1);
	assert_int_equal(hubproto_routes_put(&r, 8, x, 20, 2), 0);
	struct hubmsg bad = {
	    .cmd = cmd, .list = r.list, .list_count = 1, .data = r.peers, .data_len = r.peers_len};
	it = 0;
	assert_int_equal(hubproto_route_next(&bad, &it, &route, conns, &why), -1);
	assert_string_equal(why, "a route names a peer its table does not have");
	hubproto_routes_clear(&r);
	assert_int_equal(hubproto_routes_peer(&r, (const uint8_t *)a, strlen(a)), 1);
	assert_int_equal(hubproto_routes_put(&r, 8, x, 20, 1), 0);
	bad.data_len = r.peers_len - 1;
	it = 0;
	assert_int_equal(hubproto_route_next(&bad, &it, &route, conns, &why), -1);
	hubproto_routes_free(&r);
}

static void test_routes(void **state)
{
	routes_round_trip(*state, HUB_ROUTE);
}

static void test_requests(void **state)
{
	routes_round_trip(*state, HUB_REQUEST);
}

/* A BLOB entry names the holder connection it answers, after the token, hash and size, then what
 * the named waiters got (rewritten in place before it is sent). */
static void test_blob_entry(void **state)
{
	struct pair *p = *state;
	uint8_t *list = NULL, x[HASH_LEN];
	size_t len = 0, cap = 0;
	memset(x, 0x44, HASH_LEN);
	assert_int_equal(
	    hubproto_blob_put(&list, &len, &cap, 9, x, 4096, 0x123456789aull, HUBPROTO_BLOB_MORE),
	    0);
	assert_int_equal(hubproto_blob_put(&list, &len, &cap, 10, x, 1, 0, HUBPROTO_BLOB_MORE), 0);
	assert_int_equal(len, 2 * HUBPROTO_BLOB_ENTRY);
	hubproto_blob_set_delivered(list, 0, 3);
	struct hubproto_out o = {.cmd = HUB_BLOB, .list = list, .list_count = 2};
	send_ok(p->dealer, NULL, 0, &o);
	free(list);
	struct hubmsg m;
	assert_int_equal(recv_wait(p->router, &m, 1), 1);
	assert_int_equal(m.cmd, HUB_BLOB);
	assert_int_equal(m.list_count, 2);
	assert_true(get_u64(m.list) == 9);
	assert_memory_equal(m.list + 8, x, HASH_LEN);
	assert_int_equal(get_u32(m.list + 8 + HASH_LEN), 4096);
	assert_true(get_u64(m.list + 12 + HASH_LEN) == 0x123456789aull);
	assert_int_equal(get_u32(m.list + 20 + HASH_LEN), 3);
	assert_true(get_u64(m.list + HUBPROTO_BLOB_ENTRY) == 10);
	assert_true(get_u64(m.list + HUBPROTO_BLOB_ENTRY + 12 + HASH_LEN) == 0);
	struct hubproto_blob b = hubproto_blob_get(m.list, 1);
	assert_true(b.token == 10 && b.size == 1 && b.holder == 0);
	assert_int_equal(b.delivered, HUBPROTO_BLOB_MORE);
	assert_int_equal(hubproto_blob_get(m.list, 0).delivered, 3);
	hubmsg_close(&m);
}

/* Sends raw frames (the last without SNDMORE). */
static void send_frames(void *sock, const void *const *frames, const size_t *lens, int n)
{
	for (int i = 0; i < n; i++)
		assert_true(zmq_send(sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

/* After a rejected message nothing of it is left, and the next good message is read whole. */
static void expect_garbage(void *from, void *to, int to_is_router, const void *const *frames,
			   const size_t *lens, int n, const char *why)
{
	struct hubmsg m;
	if (!to_is_router)
		assert_true(zmq_send(from, GW_ID, strlen(GW_ID), ZMQ_SNDMORE) >= 0);
	send_frames(from, frames, lens, n);
	assert_int_equal(recv_wait(to, &m, to_is_router), -1);
	assert_non_null(m.error);
	assert_string_equal(m.error, why);
	assert_int_equal(m.nframes, 0);

	int more = 0;
	size_t sz = sizeof(more);
	assert_int_equal(zmq_getsockopt(to, ZMQ_RCVMORE, &more, &sz), 0);
	assert_int_equal(more, 0);

	uint8_t hash[HASH_LEN];
	fill(hash, HASH_LEN, 0x77);
	struct hubproto_out o = {.cmd = HUB_HAVE, .id = 5, .list = hash, .list_count = 1};
	send_ok(from, to_is_router ? NULL : (const uint8_t *)GW_ID, to_is_router ? 0 : 4, &o);
	assert_int_equal(recv_wait(to, &m, to_is_router), 1);
	assert_int_equal(m.cmd, HUB_HAVE);
	assert_true(m.id == 5);
	assert_int_equal(m.list_count, 1);
	assert_memory_equal(m.list, hash, HASH_LEN);
	hubmsg_close(&m);
	/* and then the socket is empty */
	assert_int_equal(hubproto_recv(to, &m, to_is_router), 0);
}

static void test_recv_garbage(void **state)
{
	struct pair *p = *state;
	uint8_t noise[100], ping[HUBPROTO_HEADER_LEN], have[HUBPROTO_HEADER_LEN];
	uint8_t blob[HUBPROTO_HEADER_LEN], bad[HUBPROTO_HEADER_LEN];
	fill(noise, sizeof(noise), 0x80); /* starts with 0x80: never 'E' */
	header(ping, HUB_PING);
	header(have, HUB_HAVE);
	header(blob, HUB_STATS_REPLY);
	header(bad, 77);

	for (int dir = 0; dir < 2; dir++) {
		void *from = dir ? p->router : p->dealer;
		void *to = dir ? p->dealer : p->router;
		int to_router = !dir;
		const void *f1[] = {noise};
		size_t l100[] = {100}, l48[] = {48}, l0[] = {0};
		expect_garbage(from, to, to_router, f1, l100, 1, "bad header");
		expect_garbage(from, to, to_router, f1, l48, 1, "bad header");
		expect_garbage(from, to, to_router, f1, l0, 1, "bad header");

		const void *f4[] = {ping, noise, noise, noise};
		size_t l4[] = {48, 10, 20, 30};
		expect_garbage(from, to, to_router, f4, l4, 4, "too many frames");
		const void *f6[] = {noise, noise, noise, noise, noise, noise};
		size_t l6[] = {100, 1, 2, 3, 4, 5};
		expect_garbage(from, to, to_router, f6, l6, 6, "too many frames");

		const void *f3[] = {ping, noise, noise};
		size_t l3[] = {48, 1, 1};
		expect_garbage(from, to, to_router, f3, l3, 3,
			       "wrong number of frames for command");
		const void *fh[] = {have};
		expect_garbage(from, to, to_router, fh, l48, 1,
			       "wrong number of frames for command");
		const void *fb3[] = {blob, noise, noise};
		expect_garbage(from, to, to_router, fb3, l3, 3,
			       "wrong number of frames for command");
		const void *fu[] = {bad, noise};
		size_t lu[] = {48, 3};
		expect_garbage(from, to, to_router, fu, lu, 2, "unknown command");
		expect_garbage(from, to, to_router, fu, l48, 1, "unknown command");
		const void *fl[] = {have, noise};
		size_t ll[] = {48, 33};
		expect_garbage(from, to, to_router, fl, ll, 2,
			       "list frame is not a whole number of elements");
	}
}

/* A DEALER reading as if it were a ROUTER: a lone frame has no routing frame before it. */
static void test_recv_missing_routing_frame(void **state)
{
	struct pair *p = *state;
	struct hubproto_out o = {.cmd = HUB_PING, .id = 1};
	struct hubmsg m;
	send_ok(p->router, (const uint8_t *)GW_ID, strlen(GW_ID), &o);
	assert_int_equal(recv_wait(p->dealer, &m, 1), -1);
	assert_string_equal(m.error, "bad routing frame");
	assert_int_equal(hubproto_recv(p->dealer, &m, 0), 0);
	assert_int_equal(hubproto_recv(p->router, &m, 1), 0);
}

/* Out of memory making the data frame, in each of its three ways: the send fails whole (no
 * half message reaches the peer), the data is freed once, and the next message arrives intact. */
static void test_send_out_of_memory(void **state)
{
	struct pair *p = *state;
	uint8_t blob[300], hash[HASH_LEN], ids[8];
	fill(blob, sizeof(blob), 0x42);
	memset(hash, 0x17, sizeof(hash));
	put_u64(ids, 7);
	zmq_msg_t shared;
	assert_int_equal(zmq_msg_init_size(&shared, sizeof(blob)), 0);
	memcpy(zmq_msg_data(&shared), blob, sizeof(blob));

	for (int way = 0; way < 3; way++) {
		struct hubproto_out o = {
		    .cmd = HUB_DELIVER, .hash = hash, .list = ids, .list_count = 1};
		frees = 0;
		if (way == 0) {
			o.data = blob;
			o.data_len = sizeof(blob);
		} else if (way == 1) {
			o.data_msg = &shared;
		} else {
			o.data = malloc(sizeof(blob));
			assert_non_null(o.data);
			memcpy((void *)o.data, blob, sizeof(blob));
			o.data_len = sizeof(blob);
			o.data_free = count_free;
		}
		oom_fail_after(1);
		assert_int_equal(
		    hubproto_send(p->router, (const uint8_t *)GW_ID, strlen(GW_ID), &o), -1);
		oom_fail_after(0);
		assert_int_equal(frees, way == 2 ? 1 : 0);

		struct hubproto_out ping = {.cmd = HUB_PING, .id = 99};
		send_ok(p->router, (const uint8_t *)GW_ID, strlen(GW_ID), &ping);
		struct hubmsg m;
		assert_int_equal(recv_wait(p->dealer, &m, 0), 1);
		assert_int_equal(m.cmd, HUB_PING);
		assert_true(m.id == 99);
		hubmsg_close(&m);
	}
	zmq_msg_close(&shared);
}

/*
 * The fuzz corpus speaks this version: every valid seed (tests/fuzz/corpus/fuzz_hubproto/v-*,
 * written by build/test-tools/hubproto-seeds) parses. When the protocol changes, regenerate them:
 * `build/test-tools/hubproto-seeds tests/fuzz/corpus/fuzz_hubproto` (seeds of an old version
 * are all refused at the version byte, and the fuzzer replays nothing past it).
 */
static void test_fuzz_corpus_current(void **state)
{
	(void)state;
	static const char *const names[] = {
	    "hello",	   "heartbeat",	  "conn-open", "conn-close", "have",	    "drop",
	    "want",	   "blob",	  "fail",      "delivered",  "undelivered", "file",
	    "welcome",	   "ping",	  "reset",     "request",    "not-found",   "count",
	    "route",	   "peer-keys",	  "lookup",    "stats",	     "files",	    "lookup-reply",
	    "stats-reply", "files-reply", "deliver",   "routed-want"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[256];
		snprintf(path, sizeof(path), "tests/fuzz/corpus/fuzz_hubproto/v-%s", names[i]);
		FILE *f = fopen(path, "rb"); /* scripts/test.sh runs from the top */
		if (f == NULL)
			fail_msg("%s is missing: run build/test-tools/hubproto-seeds", path);
		uint8_t buf[4096];
		size_t size = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		/* the fuzz target's input: flags, then frames (2-byte LE length, bytes) */
		const uint8_t *frame[4];
		size_t len[4], off = 1;
		int n = 0;
		while (n < 4 && off + 2 <= size) {
			len[n] = (size_t)buf[off] | (size_t)buf[off + 1] << 8;
			frame[n++] = buf + off + 2;
			off += 2 + len[n - 1];
		}
		int first = (buf[0] & 4) ? 1 : 0; /* a routing frame first */
		int has_list = buf[0] & 1, has_data = (buf[0] & 2) != 0;
		assert_true(n > first);
		struct hubmsg m;
		memset(&m, 0, sizeof(m));
		int rc =
		    hubproto_parse(&m, frame[first], len[first], has_list ? frame[first + 1] : NULL,
				   has_list ? len[first + 1] : 0, has_list,
				   has_data ? frame[first + 1 + has_list] : NULL,
				   has_data ? len[first + 1 + has_list] : 0, has_data);
		if (rc != 0)
			fail_msg("%s: %s (regenerate the seeds: build/test-tools/hubproto-seeds "
				 "tests/fuzz/corpus/fuzz_hubproto)",
				 path, m.error);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello_data),
	    cmocka_unit_test_setup_teardown(test_delivered_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip_dealer_to_router, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip_router_to_dealer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_and_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zero_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zero_copy_send_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shared_data_frame, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_blob_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_address, setup, teardown),
	    cmocka_unit_test(test_parse_valid),
	    cmocka_unit_test(test_parse_malformed),
	    cmocka_unit_test_setup_teardown(test_recv_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_recv_missing_routing_frame, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_send_out_of_memory, setup, teardown),
	    cmocka_unit_test(test_fuzz_corpus_current),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
