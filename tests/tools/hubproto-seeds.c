/*
 * hubproto-seeds — writes the valid seeds of tests/fuzz/fuzz_hubproto's corpus: one well-formed
 * message of every command, built by common/hubproto.c itself (hubproto_send over an inproc
 * PAIR, the frames read back raw), in the fuzz target's input format (a flags byte, then each
 * frame as a 2-byte little-endian length and its bytes). Being built by the one builder, the
 * seeds follow every change of the protocol's layout; test_hubproto fails while the corpus
 * holds seeds of another version ("the fuzz corpus speaks this version").
 *
 *   hubproto-seeds DIR     writes DIR/v-<command> for every command (and v-routed-want)
 *
 * Test code only: it is never installed.
 */
#include "hubproto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define SEEDS_MAX_FRAMES 4

static void *seeds_tx, *seeds_rx;

/* Sends o, reads its frames back and writes them as the seed DIR/v-NAME. */
static int seeds_write(const char *dir, const char *name, const struct hubproto_out *o, int routed)
{
	if (hubproto_send(seeds_tx, NULL, 0, o) != 0) {
		fprintf(stderr, "hubproto-seeds: %s: hubproto_send: %s\n", name, strerror(errno));
		return -1;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/v-%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, "hubproto-seeds: %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* flags: bit 0 the frame after the header is a list, bit 1 a data frame follows, bit 2 a
	 * routing frame comes first (tests/fuzz/fuzz_hubproto.c) */
	uint8_t flags = (uint8_t)((o->list ? 1 : 0) | (o->data ? 2 : 0) | (routed ? 4 : 0));
	fputc(flags, f);
	if (routed) {
		static const uint8_t peer[] = {0, 0x6b, 0x8b, 0x45, 0x67};
		fputc((int)sizeof(peer), f);
		fputc(0, f);
		fwrite(peer, 1, sizeof(peer), f);
	}
	int more = 1, n = 0;
	while (more) {
		zmq_msg_t frame;
		zmq_msg_init(&frame);
		if (zmq_msg_recv(&frame, seeds_rx, 0) < 0 || ++n > SEEDS_MAX_FRAMES) {
			fclose(f);
			return -1;
		}
		size_t len = zmq_msg_size(&frame);
		fputc((int)(len & 0xff), f);
		fputc((int)(len >> 8), f);
		fwrite(zmq_msg_data(&frame), 1, len, f);
		more = zmq_msg_more(&frame);
		zmq_msg_close(&frame);
	}
	int expected = 1 + (o->list != NULL) + (o->data != NULL);
	if (fclose(f) != 0 || n != expected) {
		fprintf(stderr, "hubproto-seeds: %s: %d frames, flags say %d\n", name, n, expected);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: hubproto-seeds DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	void *ctx = zmq_ctx_new();
	seeds_tx = hubproto_socket(ctx, ZMQ_PAIR);
	seeds_rx = hubproto_socket(ctx, ZMQ_PAIR);
	if (!seeds_tx || !seeds_rx || zmq_bind(seeds_rx, "inproc://seeds") != 0 ||
	    zmq_connect(seeds_tx, "inproc://seeds") != 0)
		return 1;

	uint8_t hash[HASH_LEN], hashes[2 * HASH_LEN], keys[2 * HUBPROTO_CONN_KEY_LEN];
	uint8_t conns[2 * 8], counts[2 * HUBPROTO_COUNT_ENTRY], files[HUBPROTO_FILE_ENTRY];
	uint8_t delivered[2 * HUBPROTO_DELIVERED_ENTRY], key[ZSEC_KEY_LEN];
	for (size_t i = 0; i < sizeof(hashes); i++)
		hashes[i] = (uint8_t)(i * 7 + 1);
	memcpy(hash, hashes, HASH_LEN);
	for (size_t i = 0; i < 2; i++) {
		put_u64(keys + i * HUBPROTO_CONN_KEY_LEN, 41 + i);
		memcpy(HUBPROTO_CONN_KEY_HASH(keys + i * HUBPROTO_CONN_KEY_LEN),
		       hashes + i * HASH_LEN, HASH_LEN);
		put_u64(conns + i * 8, 7 + i);
		memcpy(counts + i * HUBPROTO_COUNT_ENTRY, hashes + i * HASH_LEN, HASH_LEN);
		put_u32(counts + i * HUBPROTO_COUNT_ENTRY + HASH_LEN, (uint32_t)(3 - i));
		put_u64(delivered + i * HUBPROTO_DELIVERED_ENTRY, 900 + i);
		put_u32(delivered + i * HUBPROTO_DELIVERED_ENTRY + 8, 1);
	}
	memcpy(files, hashes, sizeof(files));
	memset(key, 0x5a, sizeof(key));
	uint8_t counters[HUB_GWC_COUNT * 8];
	for (size_t i = 0; i < HUB_GWC_COUNT; i++)
		put_u64(counters + 8 * i, i * 3);
	char hello[HUBPROTO_HELLO_DATA_MAX];
	size_t hello_len = hubproto_hello_data(hello, "gw1", "tcp://127.0.0.1:5555");
	uint8_t route[HUBPROTO_MAX_PEER_ADDRESS];
	size_t route_len = hubproto_peer_address(route, "tcp://127.0.0.1:5556",
						 "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
	static const char stats[] = "{\"connections\": 2, \"gateways\": 1}";
	uint8_t frame[HASH_LEN + 5];
	memcpy(frame, hash, HASH_LEN);
	memcpy(frame + HASH_LEN, "hello", 5);
	static const char endpoint[] = "tcp://127.0.0.1:5557";
	uint8_t blobs[2 * HUBPROTO_BLOB_ENTRY];
	size_t blobs_len = 0, blobs_cap = sizeof(blobs);
	uint8_t *blobs_list = blobs;
	hubproto_blob_put(&blobs_list, &blobs_len, &blobs_cap, 900, hash, 5, 7, 2);
	hubproto_blob_put(&blobs_list, &blobs_len, &blobs_cap, 901, hashes, 1 << 20, 0,
			  HUBPROTO_BLOB_MORE);
	struct hubproto_routes routes = {0}; /* a blob for a peer and here, one nobody waits for */
	struct hubproto_routes requests = {0}; /* a holder asked with waiters named, one without */
	int peer = hubproto_routes_peer(&routes, route, route_len);
	if (peer < 0 || hubproto_routes_put(&routes, 900, hash, 7, peer) < 0 ||
	    hubproto_routes_put(&routes, 900, hash, 8, peer) < 0 ||
	    hubproto_routes_put(&routes, 900, hash, 9, 0) < 0 ||
	    hubproto_routes_put(&routes, 901, hashes, 0, 0) < 0 ||
	    hubproto_routes_peer(&requests, route, route_len) != peer ||
	    hubproto_routes_put(&requests, 7, hash, 8, peer) < 0 ||
	    hubproto_routes_put(&requests, 7, hash, 9, 0) < 0 ||
	    hubproto_routes_put(&requests, 8, hashes, 0, 0) < 0) {
		fprintf(stderr, "hubproto-seeds: out of memory\n");
		return 1;
	}

	const struct {
		const char *name;
		struct hubproto_out o;
	} seeds[] = {
	    {"hello",
	     {.cmd = HUB_HELLO, .id = 1, .value = 2, .data = hello, .data_len = hello_len}},
	    {"heartbeat",
	     {.cmd = HUB_HEARTBEAT,
	      .id = 1,
	      .value = 2,
	      .list = counters,
	      .list_count = HUB_GWC_COUNT}},
	    {"conn-open", {.cmd = HUB_CONN_OPEN, .id = 7}},
	    {"conn-close", {.cmd = HUB_CONN_CLOSE, .id = 7}},
	    {"have", {.cmd = HUB_HAVE, .id = 7, .list = hashes, .list_count = 2}},
	    {"drop", {.cmd = HUB_DROP, .id = 7, .list = hashes, .list_count = 1}},
	    {"want", {.cmd = HUB_WANT, .list = keys, .list_count = 2}},
	    {"blob", {.cmd = HUB_BLOB, .list = blobs, .list_count = 2}},
	    {"fail", {.cmd = HUB_FAIL, .id = 7, .hash = hash, .value = HUB_FAIL_MISMATCH}},
	    {"delivered", {.cmd = HUB_DELIVERED, .list = delivered, .list_count = 2}},
	    {"undelivered",
	     {.cmd = HUB_UNDELIVERED,
	      .hash = hash,
	      .list = conns,
	      .list_count = 2,
	      .data = endpoint,
	      .data_len = strlen(endpoint)}},
	    {"file", {.cmd = HUB_FILE, .id = 7, .list = files, .list_count = 1}},
	    {"welcome", {.cmd = HUB_WELCOME, .id = 3}},
	    {"ping", {.cmd = HUB_PING, .id = 3}},
	    {"reset", {.cmd = HUB_RESET, .id = 3}},
	    {"request", hubproto_routes_message(&requests, HUB_REQUEST)},
	    {"not-found", {.cmd = HUB_NOT_FOUND, .id = 8, .hash = hash}},
	    {"count", {.cmd = HUB_COUNT, .list = counts, .list_count = 2}},
	    {"route", hubproto_routes_message(&routes, HUB_ROUTE)},
	    {"peer-keys",
	     {.cmd = HUB_PEER_KEYS, .value = HUB_PEER_KEYS_ALL, .list = key, .list_count = 1}},
	    {"lookup", {.cmd = HUB_LOOKUP, .id = 11, .hash = hash}},
	    {"stats", {.cmd = HUB_STATS, .id = 12}},
	    {"files", {.cmd = HUB_FILES, .id = 13, .hash = hash}},
	    {"lookup-reply", {.cmd = HUB_LOOKUP_REPLY, .id = 11, .hash = hash, .value = 2}},
	    {"stats-reply",
	     {.cmd = HUB_STATS_REPLY, .id = 12, .data = stats, .data_len = strlen(stats)}},
	    {"files-reply",
	     {.cmd = HUB_FILES_REPLY,
	      .id = 13,
	      .hash = hash,
	      .value = 1,
	      .list = counts,
	      .list_count = 2}},
	    {"deliver",
	     {.cmd = HUB_DELIVER,
	      .hash = hash,
	      .list = conns,
	      .list_count = 1,
	      .data = frame,
	      .data_len = sizeof(frame)}},
	};
	int failed = 0;
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		failed |= seeds_write(dir, seeds[i].name, &seeds[i].o, 0) < 0;
	failed |= seeds_write(dir, "routed-want", &seeds[6].o, 1) < 0;
	zmq_close(seeds_tx);
	zmq_close(seeds_rx);
	zmq_ctx_term(ctx);
	return failed ? 1 : 0;
}
