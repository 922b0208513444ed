/*
 * metrics.c — the hub's stats JSON as Prometheus text exposition (format 0.0.4).
 *
 * Owns the naming of the figures on /metrics: ephemeral_<name>; counters end in _total (added
 * unless the figure's name already ends so), gauges keep their name, uptime_s is
 * ephemeral_uptime_seconds. Figures the hub adds later are exported too: as counters if their
 * name ends in _total, otherwise as gauges. Non-numeric members are skipped. Pure: no I/O.
 */
#include "frontend.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum metric_kind { METRIC_GAUGE, METRIC_COUNTER };

static const struct metric_def {
	const char *key;  /* member of the stats object */
	const char *name; /* after "ephemeral_" (counters: _total is added if missing) */
	enum metric_kind kind;
	const char *help;
} metric_defs[] = {
    {"uptime_s", "uptime_seconds", METRIC_GAUGE, "Seconds since the hub started."},
    {"gateways", "gateways", METRIC_GAUGE, "WebSocket gateways connected to the hub."},
    {"connections", "connections", METRIC_GAUGE, "Client connections open across every gateway."},
    {"hashes", "hashes", METRIC_GAUGE, "Distinct hashes held by at least one connection."},
    {"holdings", "holdings", METRIC_GAUGE, "Pairs of (connection, hash held)."},
    {"requests_total", "requests", METRIC_COUNTER, "Wants received."},
    {"requests_served", "requests_served", METRIC_COUNTER, "Wants answered with a blob."},
    {"requests_failed", "requests_failed", METRIC_COUNTER, "Wants answered not_found."},
    {"hash_mismatches", "hash_mismatches", METRIC_COUNTER,
     "Holder answers whose bytes did not hash to the address asked for."},
    {"bytes_relayed", "bytes_relayed", METRIC_COUNTER,
     "Blob bytes delivered to requesters, each delivery counted."},
    {"holder_timeouts", "holder_timeouts", METRIC_COUNTER,
     "Holders skipped because they did not answer a request in time."},
    {"declines", "declines", METRIC_COUNTER,
     "Requests a holder declined because it no longer held the blob."},
    {"files", "files", METRIC_GAUGE,
     "Distinct plain file SHA-256s findable at /sha256/ (a confirmed manifest is held)."},
    {"refused_full", "refused_full", METRIC_COUNTER,
     "WebSocket handshakes refused with 503: the gateway held gateway.max_conns."},
    {"refused_per_address", "refused_per_address", METRIC_COUNTER,
     "WebSocket handshakes refused with 429: gateway.max_conns_per_addr from one address."},
    {"refused_origin", "refused_origin", METRIC_COUNTER,
     "WebSocket handshakes refused with 403: an Origin not allowed."},
    {"refused_subprotocol", "refused_subprotocol", METRIC_COUNTER,
     "WebSocket handshakes refused with 400: only subprotocols other than ephemeral.v1."},
    {"closed_silent", "closed_silent", METRIC_COUNTER,
     "Connections closed because nothing came from them for gateway.idle_close_s."},
    {"hub_refused", "hub_refused", METRIC_COUNTER,
     "Messages a gateway's full queue to the hub refused: the hub fell behind, or was away."},
    {"gateway_restates", "gateway_restates", METRIC_COUNTER,
     "Whole-state announcements a gateway made because the hub's queue refused state messages."},
};

#define METRIC_NAME_MAX 160

static const struct metric_def *metrics_known(const char *key)
{
	for (size_t i = 0; i < sizeof(metric_defs) / sizeof(metric_defs[0]); i++)
		if (strcmp(metric_defs[i].key, key) == 0)
			return &metric_defs[i];
	return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ephemeral_<base>[_total], with every character Prometheus does not allow made '_'. -1 if the
 * key is empty or too long to be a sensible metric name. */
static int metrics_name(const char *base, enum metric_kind kind, char out[METRIC_NAME_MAX])
{
	size_t blen = strlen(base);
	if (blen == 0 || blen > 100)
		return -1;
	int n = snprintf(out, METRIC_NAME_MAX, "ephemeral_%s", base);
	if (n < 0 || n >= METRIC_NAME_MAX)
		return -1;
	for (char *c = out; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == ':'))
			*c = '_';
	if (kind == METRIC_COUNTER && !ends_with(out, "_total"))
		strcat(out, "_total");
	return 0;
}

int metrics_render(const char *stats_json, struct response *r)
{
	json_error_t jerr;
	json_t *stats = json_loads(stats_json, 0, &jerr);
	if (stats == NULL || !json_is_object(stats)) {
		json_decref(stats);
		return -1;
	}
	size_t cap = json_object_size(stats), count = 0;
	char(*emitted)[METRIC_NAME_MAX] = calloc(cap ? cap : 1, sizeof(*emitted));
	if (emitted == NULL) {
		json_decref(stats);
		r->failed = 1;
		return 0;
	}

	const char *key;
	json_t *value;
	json_object_foreach(stats, key, value)
	{
		if (!json_is_number(value))
			continue;
		const struct metric_def *def = metrics_known(key);
		enum metric_kind kind = def			   ? def->kind
					: ends_with(key, "_total") ? METRIC_COUNTER
								   : METRIC_GAUGE;
		char name[METRIC_NAME_MAX];
		if (metrics_name(def ? def->name : key, kind, name) < 0)
			continue;
		int duplicate = 0;
		for (size_t i = 0; i < count && !duplicate; i++)
			duplicate = strcmp(emitted[i], name) == 0;
		if (duplicate)
			continue;
		memcpy(emitted[count++], name, METRIC_NAME_MAX);

		if (def)
			response_appendf(r, "# HELP %s %s\n", name, def->help);
		else
			response_appendf(r, "# HELP %s The hub's figure %s.\n", name, name + 10);
		response_appendf(r, "# TYPE %s %s\n", name,
				 kind == METRIC_COUNTER ? "counter" : "gauge");
		if (json_is_integer(value))
			response_appendf(r, "%s %" JSON_INTEGER_FORMAT "\n", name,
					 json_integer_value(value));
		else
			response_appendf(r, "%s %.17g\n", name, json_real_value(value));
	}
	free(emitted);
	json_decref(stats);
	return 0;
}
