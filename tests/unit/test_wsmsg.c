/*
 * test_wsmsg.c — the ephemeral.v1 text messages (PROTOCOL.md "WebSocket"), both directions.
 *
 * Client messages are cases of (text, expected code or success); every builder's output is read
 * back by the parser of the other side, so the two can never drift apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wsmsg.h"

#define H  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define HU "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"

struct client_case {
	const char *text;
	const char *code; /* NULL: must parse */
	enum wsmsg_type type;
	size_t nhashes;
};

static const struct client_case client_cases[] = {
    /* valid */
    {"{\"type\":\"have\",\"hashes\":[\"" H "\"]}", NULL, WSMSG_HAVE, 1},
    {"{\"type\":\"have\",\"hashes\":[\"" H "\",\"" H2 "\"]}", NULL, WSMSG_HAVE, 2},
    {"{\"hashes\":[\"" H "\"],\"type\":\"drop\"}", NULL, WSMSG_DROP, 1},
    {"{\"type\":\"drop\",\"hashes\":[]}", NULL, WSMSG_DROP, 0},
    {"{\"type\":\"want\",\"hash\":\"" H "\"}", NULL, WSMSG_WANT, 0},
    {"{\"type\":\"decline\",\"hash\":\"" H "\"}", NULL, WSMSG_DECLINE, 0},
    {" \n\t{ \"type\" : \"want\" , \"hash\" : \"" H "\" } \n", NULL, WSMSG_WANT, 0},
    {"{\"type\":\"file\",\"sha256\":\"" H2 "\",\"manifest\":\"" H "\"}", NULL, WSMSG_FILE, 0},
    {"{\"type\":\"file\",\"sha256\":\"" H2 "\"}", "bad_request", WSMSG_FILE, 0},
    {"{\"type\":\"file\",\"sha256\":\"" H2 "\",\"manifest\":\"" HU "\"}", "bad_request", WSMSG_FILE,
     0},
    /* fields a client may add in a later version are ignored */
    {"{\"type\":\"want\",\"hash\":\"" H "\",\"extra\":[1,2]}", NULL, WSMSG_WANT, 0},

    /* bad hashes: upper case, 63 and 65 digits, not hex, not a string, missing */
    {"{\"type\":\"want\",\"hash\":\"" HU "\"}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":"
     "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\"}",
     "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":\"" H "0\"}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":"
     "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\"}",
     "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":\" "
     "123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",
     "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":123}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":null}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":[\"" H "\"]}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"decline\"}", "bad_request", WSMSG_DECLINE, 0},
    {"{\"type\":\"want\",\"hashes\":[\"" H "\"]}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"have\",\"hashes\":[\"" HU "\"]}", "bad_request", WSMSG_HAVE, 0},
    {"{\"type\":\"have\",\"hashes\":[\"" H "\",5]}", "bad_request", WSMSG_HAVE, 0},
    {"{\"type\":\"have\",\"hashes\":\"" H "\"}", "bad_request", WSMSG_HAVE, 0},
    {"{\"type\":\"have\",\"hash\":\"" H "\"}", "bad_request", WSMSG_HAVE, 0},
    {"{\"type\":\"drop\",\"hashes\":{}}", "bad_request", WSMSG_DROP, 0},

    /* type: missing, not a string, unknown, a server's, wrong case */
    {"{\"hash\":\"" H "\"}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":7,\"hash\":\"" H "\"}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":null}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"steal\",\"hash\":\"" H "\"}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"request\",\"hash\":\"" H "\"}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"welcome\",\"version\":1,\"max_blob\":5}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"WANT\",\"hash\":\"" H "\"}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\\u0000\",\"hash\":\"" H "\"}", "bad_request", WSMSG_WANT, 0},

    /* not an object, not JSON, duplicate keys */
    {"[\"want\"]", "bad_request", WSMSG_WANT, 0},
    {"\"want\"", "bad_request", WSMSG_WANT, 0},
    {"42", "bad_request", WSMSG_WANT, 0},
    {"null", "bad_request", WSMSG_WANT, 0},
    {"", "bad_request", WSMSG_WANT, 0},
    {"{", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":\"" H "\"} {}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":\"" H "\",}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"type\":\"have\",\"hash\":\"" H "\"}", "bad_request", WSMSG_WANT, 0},
    {"{\"type\":\"want\",\"hash\":\"" H2 "\",\"hash\":\"" H "\"}", "bad_request", WSMSG_WANT, 0},
};

static void test_client_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(client_cases) / sizeof(client_cases[0]); i++) {
		const struct client_case *c = &client_cases[i];
		struct wsmsg m;
		struct wsmsg_error err;
		memset(&m, 0xaa, sizeof(m));
		memset(&err, 0xaa, sizeof(err));
		int rc = wsmsg_parse_client(c->text, strlen(c->text), &m, &err);
		if (c->code == NULL) {
			if (rc != 0)
				fail_msg("case %zu: %s: rejected: %s", i, c->text, err.message);
			assert_int_equal(m.type, c->type);
			assert_int_equal(m.nhashes, c->nhashes);
			if (c->type == WSMSG_FILE) {
				char hex[HASH_HEX_LEN + 1];
				hash_to_hex(m.sha256, hex);
				assert_string_equal(hex, H2);
			}
			if (c->type == WSMSG_WANT || c->type == WSMSG_DECLINE ||
			    c->type == WSMSG_FILE) {
				char hex[HASH_HEX_LEN + 1];
				assert_int_equal(m.has_hash, 1);
				hash_to_hex(m.hash, hex);
				assert_string_equal(hex, H);
			}
		} else {
			if (rc != -1)
				fail_msg("case %zu: %s: accepted", i, c->text);
			assert_non_null(err.code);
			if (strcmp(err.code, c->code) != 0)
				fail_msg("case %zu: %s: code %s, expected %s", i, c->text, err.code,
					 c->code);
			assert_true(strlen(err.message) > 0);
			assert_true(strlen(err.message) < sizeof(err.message));
			/* no case above has a valid hash in the field that failed */
			assert_int_equal(err.has_hash, 0);
		}
	}
}

/* A have with n hashes (all distinct), as JSON text in a malloc'd buffer. */
static char *have_text(size_t n, size_t bad_at, const char *bad)
{
	size_t cap = 64 + n * (HASH_HEX_LEN + 3);
	char *text = malloc(cap);
	assert_non_null(text);
	size_t o = (size_t)snprintf(text, cap, "{\"type\":\"have\",\"hashes\":[");
	for (size_t i = 0; i < n; i++) {
		if (i == bad_at)
			o += (size_t)snprintf(text + o, cap - o, "%s\"%s\"", i ? "," : "", bad);
		else
			o += (size_t)snprintf(text + o, cap - o, "%s\"%056x%08zx\"", i ? "," : "",
					      0, i);
	}
	snprintf(text + o, cap - o, "]}");
	return text;
}

static void test_hash_list_limits(void **state)
{
	(void)state;
	struct wsmsg *m = malloc(sizeof(*m));
	struct wsmsg_error err;
	assert_non_null(m);

	char *text = have_text(WSMSG_MAX_HASHES, SIZE_MAX, NULL);
	assert_int_equal(wsmsg_parse_client(text, strlen(text), m, &err), 0);
	assert_int_equal(m->type, WSMSG_HAVE);
	assert_int_equal(m->nhashes, 512);
	for (size_t i = 0; i < 512; i++) {
		assert_int_equal(m->hashes[i][HASH_LEN - 1], i & 0xff);
		assert_int_equal(m->hashes[i][HASH_LEN - 2], i >> 8);
		assert_int_equal(m->hashes[i][0], 0);
	}
	free(text);

	text = have_text(WSMSG_MAX_HASHES + 1, SIZE_MAX, NULL);
	assert_int_equal(wsmsg_parse_client(text, strlen(text), m, &err), -1);
	assert_string_equal(err.code, "too_large");
	free(text);

	/* one bad hash anywhere rejects the whole list, and the message says which */
	static const size_t where[] = {0, 200, 511};
	for (size_t i = 0; i < 3; i++) {
		text = have_text(WSMSG_MAX_HASHES, where[i], HU);
		assert_int_equal(wsmsg_parse_client(text, strlen(text), m, &err), -1);
		assert_string_equal(err.code, "bad_request");
		char expect[32];
		snprintf(expect, sizeof(expect), "hashes[%zu]", where[i]);
		assert_non_null(strstr(err.message, expect));
		assert_int_equal(m->nhashes, 0);
		free(text);
	}
	free(m);
}

/* 64 KiB of text is the limit: exactly that much parses, one byte more is too_large. */
static void test_text_size_limit(void **state)
{
	(void)state;
	struct wsmsg m;
	struct wsmsg_error err;
	const char *want = "{\"type\":\"want\",\"hash\":\"" H "\"}";
	char *text = malloc(WSMSG_MAX_TEXT + 2);
	assert_non_null(text);
	memset(text, ' ', WSMSG_MAX_TEXT + 1);
	memcpy(text, want, strlen(want));
	text[WSMSG_MAX_TEXT + 1] = '\0';

	assert_int_equal(wsmsg_parse_client(text, WSMSG_MAX_TEXT, &m, &err), 0);
	assert_int_equal(m.type, WSMSG_WANT);
	assert_int_equal(wsmsg_parse_client(text, WSMSG_MAX_TEXT + 1, &m, &err), -1);
	assert_string_equal(err.code, "too_large");
	assert_int_equal(wsmsg_parse_server(text, WSMSG_MAX_TEXT + 1, &m, &err), -1);
	assert_string_equal(err.code, "too_large");

	/* the length given is what counts, not a NUL: a NUL inside is malformed */
	assert_int_equal(wsmsg_parse_client(want, strlen(want) + 1, &m, &err), -1);
	assert_string_equal(err.code, "bad_request");
	assert_int_equal(wsmsg_parse_client(want, strlen(want) - 1, &m, &err), -1);
	assert_string_equal(err.code, "bad_request");
	free(text);
}

static void hash_of(const char *hex, uint8_t out[HASH_LEN])
{
	assert_int_equal(hash_from_hex(hex, strlen(hex), out), 0);
}

static void parse_server_ok(char *text, struct wsmsg *m)
{
	struct wsmsg_error err;
	assert_non_null(text);
	if (wsmsg_parse_server(text, strlen(text), m, &err) != 0)
		fail_msg("%s: %s", text, err.message);
	/* a server message is never a valid client message */
	struct wsmsg other;
	assert_int_equal(wsmsg_parse_client(text, strlen(text), &other, &err), -1);
	assert_string_equal(err.code, "bad_request");
	free(text);
}

static void test_server_builders(void **state)
{
	(void)state;
	struct wsmsg m;
	uint8_t h[HASH_LEN], h2[HASH_LEN];
	hash_of(H, h);
	hash_of(H2, h2);

	struct wsmsg_welcome w = {.max_blob = 1048576};
	parse_server_ok(wsmsg_welcome(&w), &m);
	assert_int_equal(m.type, WSMSG_WELCOME);
	assert_int_equal(m.number, 1048576);
	assert_int_equal(m.welcome.max_blob, 1048576);
	assert_int_equal(m.welcome.msg_rate, 0); /* not named: 0, the client guesses */
	w = (struct wsmsg_welcome){.max_blob = 64ull * 1024 * 1024,
				   .msg_rate = 2000,
				   .msg_burst = 4000,
				   .max_wants = 64,
				   .max_holds = 100000};
	parse_server_ok(wsmsg_welcome(&w), &m);
	assert_int_equal(m.number, 64ull * 1024 * 1024);
	assert_memory_equal(&m.welcome, &w, sizeof(w));
	char *text = wsmsg_welcome(&w);
	assert_non_null(text);
	assert_string_equal(text, "{\"type\":\"welcome\",\"version\":1,\"max_blob\":67108864,"
				  "\"msg_rate\":2000,\"msg_burst\":4000,\"max_wants\":64,"
				  "\"max_holds\":100000}");
	free(text);

	parse_server_ok(wsmsg_request(h), &m);
	assert_int_equal(m.type, WSMSG_REQUEST);
	assert_int_equal(m.has_hash, 1);
	assert_memory_equal(m.hash, h, HASH_LEN);

	parse_server_ok(wsmsg_count(h2, 0), &m);
	assert_int_equal(m.type, WSMSG_COUNT);
	assert_memory_equal(m.hash, h2, HASH_LEN);
	assert_int_equal(m.number, 0);
	parse_server_ok(wsmsg_count(h, UINT32_MAX), &m);
	assert_int_equal(m.number, UINT32_MAX);
	/* From the kept trees, reused: compact, keys in this order, the hash and number replaced.
	 */
	char hex[HASH_HEX_LEN + 1], want[200];
	hash_to_hex(h, hex);
	text = wsmsg_request(h);
	assert_non_null(text);
	snprintf(want, sizeof(want), "{\"type\":\"request\",\"hash\":\"%s\"}", hex);
	assert_string_equal(text, want);
	free(text);
	text = wsmsg_count(h, UINT32_MAX);
	assert_non_null(text);
	snprintf(want, sizeof(want), "{\"type\":\"count\",\"hash\":\"%s\",\"viewers\":4294967295}",
		 hex);
	assert_string_equal(text, want);
	free(text);

	parse_server_ok(wsmsg_error("not_found", h, "nobody holds this"), &m);
	assert_int_equal(m.type, WSMSG_ERROR);
	assert_string_equal(m.code, "not_found");
	assert_string_equal(m.message, "nobody holds this");
	assert_int_equal(m.has_hash, 1);
	assert_memory_equal(m.hash, h, HASH_LEN);

	parse_server_ok(wsmsg_error("bad_request", NULL, NULL), &m);
	assert_string_equal(m.code, "bad_request");
	assert_string_equal(m.message, "bad_request");
	assert_int_equal(m.has_hash, 0);

	/* quotes, backslashes and non-ASCII survive; a long message is cut, not overrun */
	parse_server_ok(wsmsg_error("rate_limited", NULL, "say \"slow\\down\" — 速"), &m);
	assert_string_equal(m.message, "say \"slow\\down\" — 速");
	char longmsg[1000];
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	parse_server_ok(wsmsg_error("bad_request", NULL, longmsg), &m);
	assert_int_equal(strlen(m.message), sizeof(m.message) - 1);
}

struct server_case {
	const char *text;
	int ok;
};

static const struct server_case server_cases[] = {
    {"{\"type\":\"welcome\",\"version\":1,\"max_blob\":1}", 1},
    {"{\"type\":\"welcome\",\"version\":1,\"max_blob\":0}", 0},
    {"{\"type\":\"welcome\",\"version\":1,\"max_blob\":-5}", 0},
    {"{\"type\":\"welcome\",\"version\":1,\"max_blob\":1.5}", 0},
    {"{\"type\":\"welcome\",\"version\":1}", 0},
    {"{\"type\":\"welcome\",\"version\":1,\"max_blob\":1,\"msg_rate\":5,\"max_holds\":9}", 1},
    {"{\"type\":\"welcome\",\"version\":1,\"max_blob\":1,\"msg_rate\":0}", 0},
    {"{\"type\":\"welcome\",\"version\":1,\"max_blob\":1,\"msg_burst\":\"4000\"}", 0},
    {"{\"type\":\"welcome\",\"version\":1,\"max_blob\":1,\"max_wants\":-1}", 0},
    {"{\"type\":\"count\",\"hash\":\"" H "\",\"viewers\":3}", 1},
    {"{\"type\":\"count\",\"hash\":\"" H "\",\"viewers\":-1}", 0},
    {"{\"type\":\"count\",\"hash\":\"" H "\",\"viewers\":\"3\"}", 0},
    {"{\"type\":\"count\",\"hash\":\"" HU "\",\"viewers\":3}", 0},
    {"{\"type\":\"request\",\"hash\":\"" H "\"}", 1},
    {"{\"type\":\"request\"}", 0},
    {"{\"type\":\"error\"}", 1}, /* a client shows what it can of an odd error */
    {"{\"type\":\"error\",\"code\":\"x\",\"hash\":\"nothex\"}", 1},
    {"{\"type\":\"want\",\"hash\":\"" H "\"}", 0},
    {"{\"type\":\"have\",\"hashes\":[]}", 0},
    {"[]", 0},
};

static void test_server_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(server_cases) / sizeof(server_cases[0]); i++) {
		struct wsmsg m;
		struct wsmsg_error err;
		int rc = wsmsg_parse_server(server_cases[i].text, strlen(server_cases[i].text), &m,
					    &err);
		if (rc != (server_cases[i].ok ? 0 : -1))
			fail_msg("case %zu: %s: rc %d", i, server_cases[i].text, rc);
		if (rc < 0)
			assert_string_equal(err.code, "bad_request");
	}
	struct wsmsg m;
	struct wsmsg_error err;
	const char *odd = "{\"type\":\"error\",\"code\":\"x\",\"hash\":\"nothex\"}";
	assert_int_equal(wsmsg_parse_server(odd, strlen(odd), &m, &err), 0);
	assert_int_equal(m.has_hash, 0);
	assert_string_equal(m.message, "");
}

static void test_client_builders(void **state)
{
	(void)state;
	struct wsmsg *m = malloc(sizeof(*m));
	struct wsmsg_error err;
	uint8_t(*hashes)[HASH_LEN] = malloc(WSMSG_MAX_HASHES * HASH_LEN);
	assert_non_null(m);
	assert_non_null(hashes);
	for (size_t i = 0; i < WSMSG_MAX_HASHES; i++)
		for (size_t j = 0; j < HASH_LEN; j++)
			hashes[i][j] = (uint8_t)(i * 31 + j * 7);

	static const enum wsmsg_type list_types[] = {WSMSG_HAVE, WSMSG_DROP};
	static const size_t sizes[] = {0, 1, 2, WSMSG_MAX_HASHES};
	for (size_t t = 0; t < 2; t++) {
		for (size_t s = 0; s < 4; s++) {
			char *text = wsmsg_client_hashes(
			    list_types[t], (const uint8_t(*)[HASH_LEN])hashes, sizes[s]);
			assert_non_null(text);
			assert_true(strlen(text) <= WSMSG_MAX_TEXT);
			assert_int_equal(wsmsg_parse_client(text, strlen(text), m, &err), 0);
			assert_int_equal(m->type, list_types[t]);
			assert_int_equal(m->nhashes, sizes[s]);
			if (sizes[s])
				assert_memory_equal(m->hashes, hashes, sizes[s] * HASH_LEN);
			free(text);
		}
	}

	static const enum wsmsg_type hash_types[] = {WSMSG_WANT, WSMSG_DECLINE};
	for (size_t t = 0; t < 2; t++) {
		char *text = wsmsg_client_hash(hash_types[t], hashes[7]);
		assert_non_null(text);
		assert_int_equal(wsmsg_parse_client(text, strlen(text), m, &err), 0);
		assert_int_equal(m->type, hash_types[t]);
		assert_int_equal(m->has_hash, 1);
		assert_memory_equal(m->hash, hashes[7], HASH_LEN);
		free(text);
	}

	/* server types have no client builder */
	assert_null(wsmsg_client_hash(WSMSG_WELCOME, hashes[0]));
	assert_null(wsmsg_client_hashes(WSMSG_COUNT, (const uint8_t(*)[HASH_LEN])hashes, 3));
	free(hashes);
	free(m);
}

/* The hex decoder: every byte value at every position, and round trips through hash_to_hex. */
static void test_hash_hex(void **state)
{
	(void)state;
	uint8_t out[HASH_LEN], back[HASH_LEN];
	char text[HASH_HEX_LEN + 1], hex[HASH_HEX_LEN + 1];
	for (size_t pos = 0; pos < HASH_HEX_LEN; pos++) {
		for (int b = 0; b < 256; b++) {
			memcpy(text, H, sizeof(text));
			text[pos] = (char)b;
			int ok = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f');
			assert_int_equal(hash_from_hex(text, HASH_HEX_LEN, out), ok ? 0 : -1);
			assert_int_equal(hash_hex_valid(text, HASH_HEX_LEN), ok);
			assert_int_equal(hash_hex_valid_anycase(text, HASH_HEX_LEN),
					 ok || (b >= 'A' && b <= 'F'));
			if (!ok)
				continue;
			int v = b <= '9' ? b - '0' : b - 'a' + 10;
			assert_int_equal(pos % 2 ? out[pos / 2] & 0xf : out[pos / 2] >> 4, v);
			hash_to_hex(out, hex);
			assert_string_equal(hex, text);
		}
	}
	for (int i = 0; i < 1000; i++) {
		for (size_t k = 0; k < HASH_LEN; k++)
			out[k] = (uint8_t)rand();
		hash_to_hex(out, hex);
		assert_int_equal(hash_from_hex(hex, HASH_HEX_LEN, back), 0);
		assert_memory_equal(out, back, HASH_LEN);
	}
	assert_int_equal(hash_from_hex(H, HASH_HEX_LEN - 1, out), -1);
	assert_int_equal(hash_from_hex(NULL, HASH_HEX_LEN, out), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_cases),    cmocka_unit_test(test_hash_list_limits),
	    cmocka_unit_test(test_text_size_limit), cmocka_unit_test(test_server_builders),
	    cmocka_unit_test(test_server_cases),    cmocka_unit_test(test_client_builders),
	    cmocka_unit_test(test_hash_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
