/*
 * operator.c — the operator endpoint (ZeroMQ REP): `stats`, `lookup <hash>` (its viewers, and the
 * confirmed manifests of a file with that plain SHA-256), `gateways`.
 *
 * Owns the stats JSON, which the frontend's /api/v1/stats and /metrics show too (it asks over
 * the ROUTER with HUB_STATS), so every surface reports the same figures. Any other request gets
 * {"error": "..."}; a REP socket must answer every request, so every path here replies once.
 */
#include "hub.h"
#include "log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

char *operator_stats_json(struct hub *hub)
{
	const struct hub_stats *s = &hub->stats;
	json_t *o = json_pack(
	    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "uptime_s",
	    (json_int_t)((now_ms() - hub->started_ms) / 1000), "gateways",
	    (json_int_t)hub->ngateways, "connections", (json_int_t)hub->nconns, "hashes",
	    (json_int_t)hub->nhashes_held, "holdings", (json_int_t)hub->nholdings, "requests_total",
	    (json_int_t)s->requests_total, "requests_served", (json_int_t)s->requests_served,
	    "requests_failed", (json_int_t)s->requests_failed, "hash_mismatches",
	    (json_int_t)s->hash_mismatches, "bytes_relayed", (json_int_t)s->bytes_relayed,
	    "holder_timeouts", (json_int_t)s->holder_timeouts, "declines", (json_int_t)s->declines,
	    "files", (json_int_t)map_len(&hub->files));
	/* The gateways' own counters (HEARTBEAT): why handshakes were refused, and keepalive. */
	static const char *const gateway_names[HUB_GWC_COUNT] = {
	    [HUB_GWC_REFUSED_FULL] = "refused_full",
	    [HUB_GWC_REFUSED_PER_ADDRESS] = "refused_per_address",
	    [HUB_GWC_REFUSED_ORIGIN] = "refused_origin",
	    [HUB_GWC_REFUSED_SUBPROTOCOL] = "refused_subprotocol",
	    [HUB_GWC_CLOSED_SILENT] = "closed_silent",
	    [HUB_GWC_HUB_REFUSED] = "hub_refused",
	    [HUB_GWC_RESTATES] = "gateway_restates"};
	for (int i = 0; o && i < HUB_GWC_COUNT; i++)
		json_object_set_new(o, gateway_names[i], json_integer((json_int_t)s->gateway[i]));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

static json_t *operator_gateways(struct hub *hub)
{
	json_t *arr = json_array();
	int64_t now = now_ms();
	for (uint32_t i = 0; i < hub->ngateways; i++) {
		struct gateway *gw = hub->active[i];
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I}", "id", gw->name,
						     "connections", (json_int_t)gw->connections,
						     "holdings", (json_int_t)gw->holdings,
						     "last_seen_ms",
						     (json_int_t)(now - gw->last_seen_ms)));
	}
	return arr;
}

/* The confirmed manifests of a file, most viewers first (lookup's "manifests"). */
static json_t *operator_manifests(struct hub *hub, const uint8_t sha256[HASH_LEN])
{
	uint8_t list[HUBPROTO_MAX_MANIFESTS][HUBPROTO_COUNT_ENTRY];
	return hubproto_manifests_json(list[0], files_lookup(hub, sha256, list));
}

char *operator_answer(struct hub *hub, const char *req, size_t len)
{
	json_t *reply = NULL;
	if (len == 5 && memcmp(req, "stats", 5) == 0)
		return operator_stats_json(hub);
	if (len == 8 && memcmp(req, "gateways", 8) == 0) {
		reply = operator_gateways(hub);
	} else if (len >= 7 && memcmp(req, "lookup ", 7) == 0) {
		uint8_t hash[HASH_LEN];
		if (hash_from_hex(req + 7, len - 7, hash) < 0) {
			reply = json_pack("{s:s}", "error",
					  "lookup takes a hash: 64 lowercase hex digits");
		} else {
			char hex[HASH_HEX_LEN + 1];
			hash_to_hex(hash, hex);
			reply = json_pack("{s:s, s:I, s:o}", "hash", hex, "viewers",
					  (json_int_t)registry_viewers(hub, hash), "manifests",
					  operator_manifests(hub, hash));
		}
	} else {
		reply = json_pack("{s:s}", "error",
				  "unknown request: try stats, lookup <hash> or gateways");
	}
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	return text;
}

void operator_handle(struct hub *hub)
{
	for (;;) {
		zmq_msg_t req;
		zmq_msg_init(&req);
		if (zmq_msg_recv(&req, hub->operator, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&req);
			return;
		}
		/* A multipart request is answered as a whole: read the rest and ignore it. */
		int more = zmq_msg_more(&req);
		while (more) {
			zmq_msg_t part;
			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, hub->operator, 0) < 0) {
				zmq_msg_close(&part);
				break;
			}
			more = zmq_msg_more(&part);
			zmq_msg_close(&part);
		}
		char *text = operator_answer(hub, zmq_msg_data(&req), zmq_msg_size(&req));
		zmq_msg_close(&req);
		const char *out = text ? text : "{\"error\":\"internal error\"}";
		if (zmq_send(hub->operator, out, strlen(out), 0) < 0)
			log_warnx("%s: reply not sent: %s", __func__, zmq_strerror(zmq_errno()));
		free(text);
	}
}
