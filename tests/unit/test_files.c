/*
 * test_files.c — the hub's index of files by their plain SHA-256 (hub/files.c), driven directly.
 *
 * A real `struct hub` whose ROUTER is bound to inproc and one gateway joined by a DEALER, so that
 * the COUNTs a flush sends have somewhere to go. Checks what FILE lists (only manifests the
 * connection holds), the order of an answer (most viewers first), that a manifest is forgotten
 * with its last holder (not with its announcer), and the FILES_REPLY a frontend gets.
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

#define ENDPOINT "inproc://test-files"

struct fx {
	struct hub hub;
	void *sock;
	void *fe; /* a frontend, when a test makes one: closed by teardown, even after a failure */
	struct gateway *gw;
};

static uint8_t F[HASH_LEN], M1[HASH_LEN], M2[HASH_LEN], M3[HASH_LEN];

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	struct hub *hub = &fx->hub;
	memset(F, 0xf0, HASH_LEN);
	memset(M1, 0x01, HASH_LEN);
	memset(M2, 0x02, HASH_LEN);
	memset(M3, 0x03, HASH_LEN);
	hubfx_init(hub);
	assert_int_equal(hubfx_bind(hub, ENDPOINT), 0);
	fx->sock = hubproto_socket(hub->ctx, ZMQ_DEALER);
	assert_int_equal(zmq_setsockopt(fx->sock, ZMQ_ROUTING_ID, "gw-A", 4), 0);
	assert_int_equal(zmq_connect(fx->sock, ENDPOINT), 0);
	struct hubproto_out beat = {.cmd = HUB_HEARTBEAT};
	assert_int_equal(hubproto_send(fx->sock, NULL, 0, &beat), 0);
	zmq_pollitem_t item = {hub->router, 0, ZMQ_POLLIN, 0};
	assert_int_equal(zmq_poll(&item, 1, 2000), 1);
	struct hubmsg m;
	assert_int_equal(hubproto_recv(hub->router, &m, 1), 1);
	hubmsg_close(&m);
	fx->gw = registry_gateway_join(hub, (const uint8_t *)"gw-A", 4, 100, "A", 1);
	assert_non_null(fx->gw);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	router_gateway_remove(&fx->hub, fx->gw); /* its connections, and what they held */
	counts_flush(&fx->hub);
	assert_int_equal(map_len(&fx->hub.files), 0); /* every manifest went with its holders */
	assert_int_equal(map_len(&fx->hub.file_manifests), 0);
	zmq_close(fx->sock);
	if (fx->fe)
		zmq_close(fx->fe);
	hubfx_free(&fx->hub);
	free(fx);
	return 0;
}

static struct conn *conn(struct fx *fx, uint64_t id)
{
	struct conn *c = registry_conn(&fx->hub, fx->gw, id, 1);
	assert_non_null(c);
	return c;
}

static size_t lookup(struct hub *hub, uint8_t out[HUBPROTO_MAX_MANIFESTS][HUBPROTO_COUNT_ENTRY])
{
	return files_lookup(hub, F, out);
}

static void test_confirm_only_what_is_held(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	uint8_t out[HUBPROTO_MAX_MANIFESTS][HUBPROTO_COUNT_ENTRY];
	struct conn *a = conn(fx, 1);
	assert_int_equal(files_confirm(hub, a, M1, F), 0); /* not held: nothing listed */
	assert_int_equal(lookup(hub, out), 0);
	registry_add_holder(hub, a, M1);
	assert_int_equal(files_confirm(hub, a, M1, F), 1);
	assert_int_equal(files_confirm(hub, a, M1, F), 0); /* once */
	assert_int_equal(lookup(hub, out), 1);
	assert_memory_equal(out[0], M1, HASH_LEN);
	assert_int_equal(get_u32(out[0] + HASH_LEN), 1);
	assert_int_equal(map_len(&hub->files), 1);
	/* A manifest declares one file: a second file hash for it is not listed. */
	uint8_t G[HASH_LEN];
	memset(G, 0x99, HASH_LEN);
	assert_int_equal(files_confirm(hub, a, M1, G), 0);
	assert_int_equal(files_lookup(hub, G, out), 0);
}

static void test_order_and_forget(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	uint8_t out[HUBPROTO_MAX_MANIFESTS][HUBPROTO_COUNT_ENTRY];
	struct conn *a = conn(fx, 1), *b = conn(fx, 2), *c = conn(fx, 3);
	registry_add_holder(hub, a, M1);
	registry_add_holder(hub, a, M2);
	registry_add_holder(hub, b, M2);
	registry_add_holder(hub, a, M3);
	registry_add_holder(hub, b, M3);
	registry_add_holder(hub, c, M3);
	assert_int_equal(files_confirm(hub, a, M1, F), 1);
	assert_int_equal(files_confirm(hub, a, M2, F), 1);
	assert_int_equal(files_confirm(hub, a, M3, F), 1);
	assert_int_equal(lookup(hub, out), 3);
	assert_memory_equal(out[0], M3, HASH_LEN);
	assert_memory_equal(out[1], M2, HASH_LEN);
	assert_memory_equal(out[2], M1, HASH_LEN);
	/* The announcer leaves: M2 and M3 are still held, so still listed; M1 goes. */
	registry_conn_remove(hub, a);
	counts_flush(hub);
	assert_int_equal(lookup(hub, out), 2);
	assert_memory_equal(out[0], M3, HASH_LEN);
	assert_int_equal(get_u32(out[0] + HASH_LEN), 2);
	assert_memory_equal(out[1], M2, HASH_LEN);
	assert_null(map_get(&hub->file_manifests, M1));
	/* A holder dropping out between two flushes: not answered even before the flush. */
	registry_remove_holder(hub, b, M2);
	assert_int_equal(lookup(hub, out), 1);
	counts_flush(hub);
	assert_null(map_get(&hub->file_manifests, M2));
	/* Held again without a new FILE: not listed (the gateway announces it again). */
	registry_add_holder(hub, b, M2);
	assert_int_equal(lookup(hub, out), 1);
	assert_int_equal(map_len(&hub->files), 1);
	registry_remove_holder(hub, b, M3);
	registry_remove_holder(hub, c, M3);
	counts_flush(hub);
	assert_int_equal(lookup(hub, out), 0);
	assert_int_equal(map_len(&hub->files), 0);
}

/* FILES from a frontend: FILES_REPLY with the blob's own viewers and the manifests. */
static void test_files_reply(void **state)
{
	struct fx *fx = *state;
	struct hub *hub = &fx->hub;
	struct conn *a = conn(fx, 1);
	registry_add_holder(hub, a, M1);
	registry_add_holder(hub, a, F); /* the file itself, as one blob */
	files_confirm(hub, a, M1, F);
	void *fe = fx->fe = hubproto_socket(hub->ctx, ZMQ_DEALER);
	assert_non_null(fe);
	assert_int_equal(zmq_connect(fe, ENDPOINT), 0);
	struct hubproto_out req = {.cmd = HUB_FILES, .id = 77, .hash = F};
	assert_int_equal(hubproto_send(fe, NULL, 0, &req), 0);
	zmq_pollitem_t item = {hub->router, 0, ZMQ_POLLIN, 0};
	assert_int_equal(zmq_poll(&item, 1, 2000), 1);
	struct hubmsg m;
	assert_int_equal(hubproto_recv(hub->router, &m, 1), 1);
	link_handle(hub, &m);
	hubmsg_close(&m);
	item.socket = fe;
	assert_int_equal(zmq_poll(&item, 1, 2000), 1);
	assert_int_equal(hubproto_recv(fe, &m, 0), 1);
	assert_int_equal(m.cmd, HUB_FILES_REPLY);
	assert_int_equal(m.id, 77);
	assert_memory_equal(m.hash, F, HASH_LEN);
	assert_int_equal(m.value, 1);
	assert_int_equal(m.list_count, 1);
	assert_memory_equal(m.list, M1, HASH_LEN);
	hubmsg_close(&m);
}

int main(void)
{
	log_init("test_files", LOG_LEVEL_WARN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_confirm_only_what_is_held, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_order_and_forget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_files_reply, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
