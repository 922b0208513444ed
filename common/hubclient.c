/*
 * hubclient.c — request/reply over a DEALER socket, matched by request id, bounded by a timeout;
 * COUNT messages the hub sends unasked are handed to the caller's callback as they are read.
 */
#include "hubclient.h"
#include "hubproto.h"
#include "log.h"
#include "zsec.h"

#include <stdlib.h>
#include <string.h>

struct hubclient {
	void *ctx;
	void *sock;
	uint64_t next_id;
	hubclient_count_fn on_count;
	void *on_count_arg;
};

struct hubclient *hubclient_open(const char *endpoint)
{
	struct hubclient *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ctx = zmq_ctx_new();
	c->sock = c->ctx ? hubproto_socket(c->ctx, ZMQ_DEALER) : NULL;
	/* Queue nothing while the hub is away: a request then fails at once (503 without the
	 * wait) instead of waiting out the timeout behind a dead connection. */
	int immediate = 1;
	if (c->sock)
		zmq_setsockopt(c->sock, ZMQ_IMMEDIATE, &immediate, sizeof(immediate));
	if (c->sock == NULL || zsec_client_from_config(c->sock, "frontend.secret_key") < 0 ||
	    zmq_connect(c->sock, endpoint) < 0) {
		log_errorx("%s: cannot connect to %s: %s", __func__, endpoint,
			   zmq_strerror(zmq_errno()));
		hubclient_destroy(&c);
		return NULL;
	}
	c->next_id = random_u64() >> 16;
	return c;
}

void hubclient_destroy(struct hubclient **cp)
{
	struct hubclient *c = *cp;
	if (c == NULL)
		return;
	if (c->sock)
		zmq_close(c->sock);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	free(c);
	*cp = NULL;
}

void hubclient_on_count(struct hubclient *c, hubclient_count_fn fn, void *arg)
{
	c->on_count = fn;
	c->on_count_arg = arg;
}

/* A message that is not the awaited reply: a COUNT for the callback, or a late reply. */
static void hubclient_unasked(struct hubclient *c, struct hubmsg *m)
{
	if (m->cmd == HUB_COUNT && c->on_count) {
		for (size_t i = 0; i < m->list_count; i++) {
			const uint8_t *e = m->list + i * HUBPROTO_COUNT_ENTRY;
			c->on_count(c->on_count_arg, e, get_u32(e + HASH_LEN));
		}
	}
	hubmsg_close(m);
}

int hubclient_poll(struct hubclient *c)
{
	int n = 0;
	for (;;) {
		struct hubmsg m;
		int rc = hubproto_recv(c->sock, &m, 0);
		if (rc == 0)
			return n;
		n++;
		if (rc < 0)
			log_warnx("%s: bad message from hub: %s", __func__, m.error);
		else
			hubclient_unasked(c, &m);
	}
}

/* Sends a request and waits for the reply with the same id and the expected command. */
static int hubclient_call(struct hubclient *c, const struct hubproto_out *req, uint8_t reply_cmd,
			  struct hubmsg *reply, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	if (hubproto_send(c->sock, NULL, 0, req) < 0) {
		/* Not connected (yet): a fresh process may be a moment ahead of its connection,
		 * so wait briefly for one; a hub that is away fails fast. */
		zmq_pollitem_t out = {c->sock, 0, ZMQ_POLLOUT, 0};
		if (zmq_poll(&out, 1, timeout_ms < 200 ? timeout_ms : 200) <= 0 ||
		    hubproto_send(c->sock, NULL, 0, req) < 0)
			return -1;
	}
	for (;;) {
		int rc = hubproto_recv(c->sock, reply, 0);
		if (rc == 1) {
			if (reply->cmd == reply_cmd && reply->id == req->id)
				return 0;
			hubclient_unasked(c, reply);
			continue;
		}
		if (rc < 0) {
			log_warnx("%s: bad reply from hub: %s", __func__, reply->error);
			continue;
		}
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -1;
		zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
		if (zmq_poll(&item, 1, (long)left) < 0)
			return -1;
	}
}

int hubclient_lookup(struct hubclient *c, const uint8_t hash[HASH_LEN], uint32_t *viewers,
		     uint32_t watch_ms, int timeout_ms)
{
	struct hubproto_out req = {
	    .cmd = HUB_LOOKUP, .id = ++c->next_id, .hash = hash, .value = watch_ms};
	struct hubmsg reply;
	if (hubclient_call(c, &req, HUB_LOOKUP_REPLY, &reply, timeout_ms) < 0)
		return -1;
	*viewers = reply.value;
	hubmsg_close(&reply);
	return 0;
}

int hubclient_stats(struct hubclient *c, char **json, int timeout_ms)
{
	struct hubproto_out req = {.cmd = HUB_STATS, .id = ++c->next_id};
	struct hubmsg reply;
	if (hubclient_call(c, &req, HUB_STATS_REPLY, &reply, timeout_ms) < 0)
		return -1;
	*json = strndup((const char *)reply.data, reply.data_len);
	hubmsg_close(&reply);
	return *json ? 0 : -1;
}

int hubclient_files(struct hubclient *c, const uint8_t sha256[HASH_LEN], uint32_t *viewers,
		    uint8_t (*out)[HASH_LEN + 4], size_t *n, int timeout_ms)
{
	struct hubproto_out req = {.cmd = HUB_FILES, .id = ++c->next_id, .hash = sha256};
	struct hubmsg reply;
	if (hubclient_call(c, &req, HUB_FILES_REPLY, &reply, timeout_ms) < 0)
		return -1;
	*viewers = reply.value;
	*n = reply.list_count < HUBPROTO_MAX_MANIFESTS ? reply.list_count : HUBPROTO_MAX_MANIFESTS;
	if (*n)
		memcpy(out, reply.list, *n * HUBPROTO_COUNT_ENTRY);
	hubmsg_close(&reply);
	return 0;
}
