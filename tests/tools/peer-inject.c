/*
 * peer-inject — a stranger at a gateway's peer endpoint, for tests/e2e/curve.test.mjs.
 *
 *   peer-inject ENDPOINT HASH TEXT [--key SECRET_FILE --server-key Z85] [--conns N] [--ms MS]
 *
 * Connects one DEALER to ENDPOINT, plainly or (with --key) as a CurveZMQ client with that key
 * pair that insists on the server key, and sends one DELIVER (common/hubproto.c) whose frame is
 * HASH followed by TEXT (which does not hash to it: that is the point), for connection ids 1 to N
 * (default 64) of that gateway. For MS milliseconds (default 1500) it watches its handshakes
 * (zmq_socket_monitor; ZeroMQ keeps reconnecting after a refusal) and prints how they went.
 * Exit status: 0 a handshake succeeded (the DELIVER went), 1 none did, 2 bad usage.
 * Test code only: it is never installed.
 */
#include "hubproto.h"
#include "zsec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define INJECT_MONITOR "inproc://peer-inject-monitor"

static int usage(void)
{
	fprintf(stderr,
		"usage: peer-inject ENDPOINT HASH TEXT [--key SECRET_FILE --server-key Z85] "
		"[--conns N] [--ms MS]\n");
	return 2;
}

/* Reads one monitor event: its number, or -1 when none is waiting. */
static int inject_event(void *mon)
{
	zmq_msg_t head, addr;
	zmq_msg_init(&head);
	zmq_msg_init(&addr);
	int event = -1;
	if (zmq_msg_recv(&head, mon, ZMQ_DONTWAIT) >= 0) {
		uint16_t e;
		memcpy(&e, zmq_msg_data(&head), sizeof(e));
		event = e;
		zmq_msg_recv(&addr, mon, 0);
	}
	zmq_msg_close(&head);
	zmq_msg_close(&addr);
	return event;
}

int main(int argc, char **argv)
{
	const char *key_file = NULL, *server_key = NULL;
	long conns = 64, ms = 1500;
	uint8_t hash[HASH_LEN];
	if (argc < 4)
		return usage();
	for (int i = 4; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--key") == 0)
			key_file = argv[++i];
		else if (strcmp(argv[i], "--server-key") == 0)
			server_key = argv[++i];
		else if (strcmp(argv[i], "--conns") == 0)
			conns = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--ms") == 0)
			ms = strtol(argv[++i], NULL, 10);
		else
			return usage();
	}
	if (hash_from_hex(argv[2], strlen(argv[2]), hash) < 0 || conns < 1 || conns > 100000 ||
	    (key_file == NULL) != (server_key == NULL))
		return usage();

	void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
	int linger = 500;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (key_file) {
		struct zsec_keys own;
		char err[512];
		if (zsec_keys_load(key_file, 1, &own, err, sizeof(err)) < 0 ||
		    zsec_client_socket(sock, &own, server_key, err, sizeof(err)) < 0) {
			fprintf(stderr, "peer-inject: %s\n", err);
			return 2;
		}
	}
	void *mon = zmq_socket(ctx, ZMQ_PAIR);
	if (zmq_socket_monitor(sock, INJECT_MONITOR, ZMQ_EVENT_ALL) < 0 ||
	    zmq_connect(mon, INJECT_MONITOR) < 0 || zmq_connect(sock, argv[1]) < 0) {
		fprintf(stderr, "peer-inject: %s\n", zmq_strerror(zmq_errno()));
		return 2;
	}

	/* Queued now, sent once (if ever) a handshake succeeds. */
	size_t text_len = strlen(argv[3]);
	uint8_t *frame = malloc(HASH_LEN + text_len), *list = malloc((size_t)conns * 8);
	if (frame == NULL || list == NULL)
		return 2;
	memcpy(frame, hash, HASH_LEN);
	memcpy(frame + HASH_LEN, argv[3], text_len);
	for (long i = 0; i < conns; i++)
		put_u64(list + 8 * i, (uint64_t)i + 1);
	struct hubproto_out o = {.cmd = HUB_DELIVER,
				 .hash = hash,
				 .list = list,
				 .list_count = (size_t)conns,
				 .data = frame,
				 .data_len = HASH_LEN + text_len};
	if (hubproto_send(sock, NULL, 0, &o) < 0) {
		fprintf(stderr, "peer-inject: cannot queue the DELIVER: %s\n", zmq_strerror(errno));
		return 2;
	}

	int succeeded = 0, failed = 0;
	int64_t deadline = now_ms() + ms;
	while (!succeeded && now_ms() < deadline) {
		zmq_pollitem_t item = {mon, 0, ZMQ_POLLIN, 0};
		zmq_poll(&item, 1, 20);
		for (int e; (e = inject_event(mon)) >= 0;) {
			if (e == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
				succeeded = 1;
			else if (e == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
				 e == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
				 e == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
				failed++;
		}
	}
	if (succeeded)
		printf("handshake succeeded: DELIVER sent\n");
	else
		printf("refused: %d failed handshakes in %ld ms, nothing sent\n", failed, ms);
	fflush(stdout);
	zmq_socket_monitor(sock, NULL, 0);
	zmq_close(mon);
	zmq_close(sock); /* ZMQ_LINGER: the DELIVER goes out first, if it was let in */
	zmq_ctx_term(ctx);
	free(frame);
	free(list);
	return succeeded ? 0 : 1;
}
