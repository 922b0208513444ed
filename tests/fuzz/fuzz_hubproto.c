/*
 * fuzz_hubproto.c — libFuzzer target for the hub protocol's parser and receiver.
 *
 * Input: one flags byte, then frames, each a 2-byte little-endian length and that many bytes
 * (a length past the end takes what is left). Flags: bit 0 the second frame is a list, bit 1
 * the next frame is data (for hubproto_parse), bit 2 the receiver reads a routing frame first.
 *
 * The first three frames go to hubproto_parse directly; then up to five are sent as one
 * multipart message over an inproc PAIR and read with hubproto_recv, which must consume the
 * whole message whatever it is. Whatever it accepts must survive hubproto_send + hubproto_recv
 * unchanged, and a ROUTE's routes must read within it, each peer address that parses building
 * back into the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hubproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES 5

static void *fuzz_ctx, *fuzz_tx, *fuzz_rx;

static void fuzz_init(void)
{
	if (fuzz_ctx)
		return;
	fuzz_ctx = zmq_ctx_new();
	fuzz_tx = hubproto_socket(fuzz_ctx, ZMQ_PAIR);
	fuzz_rx = hubproto_socket(fuzz_ctx, ZMQ_PAIR);
	if (!fuzz_ctx || !fuzz_tx || !fuzz_rx || zmq_bind(fuzz_rx, "inproc://fuzz-hubproto") != 0 ||
	    zmq_connect(fuzz_tx, "inproc://fuzz-hubproto") != 0)
		abort();
}

/* Whatever the parser accepted is internally consistent. */
static void check_parsed(const struct hubmsg *m)
{
	if (m->error != NULL || strcmp(hubproto_cmd_name(m->cmd), "UNKNOWN") == 0)
		abort();
	if (m->list_count && m->list == NULL)
		abort();
	if (m->data == NULL && m->data_len != 0)
		abort();
}

/* A ROUTE's routes read within the message, each with its connections and a peer address
 * from its table; an address that parses builds back into the same bytes. */
static void check_routes(const struct hubmsg *m)
{
	if (m->cmd != HUB_ROUTE)
		return;
	uint8_t *conns = malloc(8 * (m->list_count + 1));
	struct hubproto_route r;
	const char *why;
	size_t it = 0, seen = 0;
	int rc;
	if (conns == NULL)
		abort();
	while ((rc = hubproto_route_next(m, &it, &r, conns, &why)) > 0) {
		struct hubproto_peer_address a;
		uint8_t back[HUBPROTO_MAX_PEER_ADDRESS];
		seen += r.nconns;
		if (seen > m->list_count || it > m->list_count ||
		    (r.addr_len &&
		     (r.addr < m->data || r.addr + r.addr_len > m->data + m->data_len)))
			abort();
		if (hubproto_peer_address_parse(r.addr, r.addr_len, &a, &why) < 0)
			continue;
		size_t n = hubproto_peer_address(back, a.endpoint, a.public_z85);
		if (n != r.addr_len || (n && memcmp(back, r.addr, n) != 0))
			abort();
	}
	free(conns);
}

static void check_round_trip(const struct hubmsg *m)
{
	struct hubproto_out o = {.cmd = m->cmd,
				 .id = m->id,
				 .hash = m->hash,
				 .value = m->value,
				 .list = m->list,
				 .list_count = m->list_count,
				 .data = m->data,
				 .data_len = m->data_len};
	struct hubmsg back;
	if (hubproto_send(fuzz_tx, NULL, 0, &o) != 0)
		abort();
	if (hubproto_recv(fuzz_rx, &back, 0) != 1)
		abort();
	if (back.cmd != m->cmd || back.id != m->id || back.value != m->value ||
	    memcmp(back.hash, m->hash, HASH_LEN) != 0 || back.list_count != m->list_count ||
	    back.data_len != m->data_len)
		abort();
	if (m->data_len && memcmp(back.data, m->data, m->data_len) != 0)
		abort();
	/* a list, when there is one, is the second frame on both sides */
	if (m->list_count && memcmp(back.list, m->list, zmq_msg_size(&back.frames[1])) != 0)
		abort();
	hubmsg_close(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *frame[MAX_FRAMES];
	size_t len[MAX_FRAMES];
	int n = 0;

	fuzz_init();
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	data++;
	size--;
	while (n < MAX_FRAMES && size >= 2) {
		size_t l = (size_t)data[0] | (size_t)data[1] << 8;
		data += 2;
		size -= 2;
		if (l > size)
			l = size;
		frame[n] = data;
		len[n++] = l;
		data += l;
		size -= l;
	}
	if (n == 0)
		return 0;

	/* 1. the parser on its own */
	struct hubmsg m;
	memset(&m, 0, sizeof(m));
	int has_list = (flags & 1) && n > 1;
	int data_idx = 1 + has_list;
	int has_data = (flags & 2) && n > data_idx;
	int rc = hubproto_parse(&m, frame[0], len[0], has_list ? frame[1] : NULL,
				has_list ? len[1] : 0, has_list, has_data ? frame[data_idx] : NULL,
				has_data ? len[data_idx] : 0, has_data);
	if (rc == 0) {
		check_parsed(&m);
		check_routes(&m);
	} else if (rc != -1 || m.error == NULL)
		abort();

	/* 2. the same frames as one ZeroMQ message */
	for (int i = 0; i < n; i++)
		if (zmq_send(fuzz_tx, frame[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
			abort();
	memset(&m, 0, sizeof(m));
	rc = hubproto_recv(fuzz_rx, &m, (flags & 4) != 0);
	if (rc == 1) {
		check_parsed(&m);
		check_routes(&m);
		check_round_trip(&m);
		hubmsg_close(&m);
	} else if (rc != -1 || m.error == NULL || m.nframes != 0) {
		abort();
	}
	/* nothing of the message is left behind */
	int more = 0;
	size_t sz = sizeof(more);
	if (zmq_getsockopt(fuzz_rx, ZMQ_RCVMORE, &more, &sz) != 0 || more)
		abort();
	if (hubproto_recv(fuzz_rx, &m, 0) != 0)
		abort();
	return 0;
}
