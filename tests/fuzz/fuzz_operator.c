/*
 * fuzz_operator.c — libFuzzer target for the hub's operator requests (hub/operator.c,
 * PROTOCOL.md "Operators").
 *
 * The hub (tests/unit/hubfx.c, as the unit tests set it up) holds a small state made once: two
 * gateways, three connections, two hashes held, a manifest confirmed for a file. The input's
 * bytes up to its first NUL are one request for operator_answer(); what follows a NUL, if
 * anything, is the name of a third gateway that joins for this input only (names come from
 * gateways' HELLO). Every request gets one reply of valid JSON: `stats` an object with every
 * figure, `gateways` an array with one entry per gateway, `lookup <hash>` the same hash and the
 * viewers the registry counts, anything else {"error": "<a sentence>"}. No request changes the
 * hub's state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hubfx.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct hub fuzz_hub;
static uint8_t X[HASH_LEN], M[HASH_LEN], F[HASH_LEN];

static struct conn *fuzz_hold(struct gateway *gw, uint64_t id, const uint8_t hash[HASH_LEN])
{
	struct conn *c = registry_conn(&fuzz_hub, gw, id, 1);
	if (c == NULL || registry_add_holder(&fuzz_hub, c, hash) < 0)
		abort();
	return c;
}

static void fuzz_init(void)
{
	struct hub *hub = &fuzz_hub;
	if (hub->started_ms)
		return;
	log_init("fuzz_operator", LOG_LEVEL_WARN); /* not a line per gateway joined */
	hubfx_init(hub);
	memset(X, 0x11, HASH_LEN);
	memset(M, 0x22, HASH_LEN);
	memset(F, 0xf0, HASH_LEN);
	struct gateway *a = registry_gateway_join(hub, (const uint8_t *)"gw-A", 4, 1, "alpha", 5);
	struct gateway *b = registry_gateway_join(hub, (const uint8_t *)"gw-B", 4, 2, "", 0);
	if (a == NULL || b == NULL)
		abort();
	struct conn *c1 = fuzz_hold(a, 1, X);
	fuzz_hold(a, 1, M);
	fuzz_hold(a, 2, X);
	fuzz_hold(b, 3, X);
	if (files_confirm(hub, c1, M, F) != 1)
		abort();
	hub->stats.requests_total = 7;
	hub->stats.bytes_relayed = 1u << 20;
}

static void check_stats(json_t *r)
{
	static const char *const keys[] = {"uptime_s",	    "gateways",	       "connections",
					   "hashes",	    "holdings",	       "requests_total",
					   "bytes_relayed", "hash_mismatches", "files"};
	if (!json_is_object(r))
		abort();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!json_is_integer(json_object_get(r, keys[i])))
			abort();
	if (json_integer_value(json_object_get(r, "gateways")) != (json_int_t)fuzz_hub.ngateways ||
	    json_integer_value(json_object_get(r, "connections")) != (json_int_t)fuzz_hub.nconns)
		abort();
}

static void check_gateways(json_t *r)
{
	if (!json_is_array(r) || json_array_size(r) != fuzz_hub.ngateways)
		abort();
	for (size_t i = 0; i < json_array_size(r); i++) {
		json_t *id = json_object_get(json_array_get(r, i), "id");
		if (!json_is_string(id) || strcmp(json_string_value(id), fuzz_hub.active[i]->name))
			abort();
	}
}

static void check_lookup(json_t *r, const char *req, size_t len)
{
	uint8_t hash[HASH_LEN];
	if (hash_from_hex(req + 7, len - 7, hash) < 0) {
		if (!json_is_string(json_object_get(r, "error")))
			abort();
		return;
	}
	json_t *h = json_object_get(r, "hash");
	json_t *viewers = json_object_get(r, "viewers");
	if (!json_is_string(h) || json_string_length(h) != HASH_HEX_LEN ||
	    memcmp(json_string_value(h), req + 7, HASH_HEX_LEN) != 0 || !json_is_integer(viewers) ||
	    json_integer_value(viewers) != (json_int_t)registry_viewers(&fuzz_hub, hash) ||
	    !json_is_array(json_object_get(r, "manifests")))
		abort();
	/* The file F is declared by the manifest M, which two connections hold. */
	if (memcmp(hash, F, HASH_LEN) == 0 && json_array_size(json_object_get(r, "manifests")) != 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hub *hub = &fuzz_hub;
	fuzz_init();
	const uint8_t *nul = memchr(data, '\0', size);
	size_t len = nul ? (size_t)(nul - data) : size;
	struct gateway *extra = NULL;
	if (nul) {
		extra = registry_gateway_join(hub, (const uint8_t *)"gw-X", 4, 3,
					      (const char *)nul + 1, size - len - 1);
		if (extra == NULL)
			abort();
	}
	uint32_t ngw = hub->ngateways, nconns = hub->nconns;
	uint64_t nholdings = hub->nholdings;

	const char *req = (const char *)data;
	char *text = operator_answer(hub, req, len);
	if (text == NULL)
		abort();
	json_error_t jerr;
	json_t *r = json_loads(text, 0, &jerr);
	if (r == NULL)
		abort();
	if (len == 5 && memcmp(req, "stats", 5) == 0) {
		check_stats(r);
	} else if (len == 8 && memcmp(req, "gateways", 8) == 0) {
		check_gateways(r);
	} else if (len >= 7 && memcmp(req, "lookup ", 7) == 0) {
		check_lookup(r, req, len);
	} else {
		json_t *e = json_object_get(r, "error");
		if (!json_is_string(e) || json_string_length(e) == 0 || json_object_size(r) != 1)
			abort();
	}
	json_decref(r);
	free(text);

	if (hub->ngateways != ngw || hub->nconns != nconns || hub->nholdings != nholdings)
		abort();
	if (extra)
		registry_gateway_remove(hub, extra);
	return 0;
}
