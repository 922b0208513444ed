/*
 * test_cli_url.c — server addresses and links for the terminal client (cli/url.c): which
 * WebSocket a --url means, and which address and server a link names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../cli/cli.h"

#define H  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HU "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"

struct server_case {
	const char *url;
	int ok;
	int tls;
	const char *host;
	int port;
	const char *ws; /* url_ws() */
	const char *base;
};

static const struct server_case server_cases[] = {
    {"http://127.0.0.1:8080", 1, 0, "127.0.0.1", 8080, "ws://127.0.0.1:8080/ws",
     "http://127.0.0.1:8080/"},
    {"http://example.org", 1, 0, "example.org", 80, "ws://example.org/ws", "http://example.org/"},
    {"https://example.org/", 1, 1, "example.org", 443, "wss://example.org/ws",
     "https://example.org/"},
    {"HTTPS://example.org:8443/eph/", 1, 1, "example.org", 8443, "wss://example.org:8443/eph/ws",
     "https://example.org:8443/eph/"},
    {"http://h/eph/index.html?x#y", 1, 0, "h", 80, "ws://h/eph/ws", "http://h/eph/"},
    {"localhost:9000", 1, 0, "localhost", 9000, "ws://localhost:9000/ws", "http://localhost:9000/"},
    {"http://[::1]:8080/", 1, 0, "::1", 8080, "ws://[::1]:8080/ws", "http://[::1]:8080/"},
    {"wss://h", 1, 1, "h", 443, "wss://h/ws", "https://h/"},
    {"ftp://h/", 0, 0, NULL, 0, NULL, NULL},
    {"http://", 0, 0, NULL, 0, NULL, NULL},
    {"http://h:0/", 0, 0, NULL, 0, NULL, NULL},
    {"http://h:70000/", 0, 0, NULL, 0, NULL, NULL},
    {"http://h:12x/", 0, 0, NULL, 0, NULL, NULL},
    {"http://h:+80/", 0, 0, NULL, 0, NULL, NULL}, /* digits only: not strtol's sign or spaces */
    {"http://h: 80/", 0, 0, NULL, 0, NULL, NULL},
    {"http://h:-1/", 0, 0, NULL, 0, NULL, NULL},
    {"http://user@h/", 0, 0, NULL, 0, NULL, NULL},
    {"http://[::1/", 0, 0, NULL, 0, NULL, NULL},
    /* as pasted, with a newline after it; but no spaces or control characters in the host name
     * (they would go into the Host header and into links; found by fuzz_url) */
    {" http://h:81\n", 1, 0, "h", 81, "ws://h:81/ws", "http://h:81/"},
    {"http://h\r\nX-Evil: 1/", 0, 0, NULL, 0, NULL, NULL},
    {"http://a b/", 0, 0, NULL, 0, NULL, NULL},
    {"http://h\x7f/", 0, 0, NULL, 0, NULL, NULL},
    {"http://h\xc3\xa9/", 0, 0, NULL, 0, NULL, NULL},
};

static void test_server(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(server_cases) / sizeof(server_cases[0]); i++) {
		const struct server_case *c = &server_cases[i];
		struct url_server s;
		char err[256] = "", ws[1100];
		int rc = url_parse_server(c->url, &s, err, sizeof(err));
		if ((rc == 0) != c->ok)
			fail_msg("%s: rc %d (%s)", c->url, rc, err);
		if (!c->ok) {
			assert_true(strlen(err) > 0);
			continue;
		}
		assert_int_equal(s.tls, c->tls);
		assert_string_equal(s.host, c->host);
		assert_int_equal(s.port, c->port);
		url_ws(&s, ws, sizeof(ws));
		assert_string_equal(ws, c->ws);
		assert_string_equal(s.base, c->base);
	}
}

struct link_case {
	const char *link;
	int ok;
	int has_server;
	const char *base;
};

static const struct link_case link_cases[] = {
    {H, 1, 0, NULL},
    {HU, 1, 0, NULL},
    {"  " H "\n", 1, 0, NULL},
    {"http://127.0.0.1:8080/" H, 1, 1, "http://127.0.0.1:8080/"},
    {"https://example.org/eph/" HU "/", 1, 1, "https://example.org/eph/"},
    {"http://h/" H "?utm=1#frag", 1, 1, "http://h/"},
    {"", 0, 0, NULL},
    {"not-a-link", 0, 0, NULL},
    {H "0", 0, 0, NULL},
    {"http://h/abc", 0, 0, NULL},
    {"/" H, 0, 0, NULL},
    {"gopher://h/" H, 0, 0, NULL},
};

static void test_link(void **state)
{
	(void)state;
	uint8_t want[HASH_LEN];
	assert_int_equal(hash_from_hex(H, HASH_HEX_LEN, want), 0);
	for (size_t i = 0; i < sizeof(link_cases) / sizeof(link_cases[0]); i++) {
		const struct link_case *c = &link_cases[i];
		struct url_server s;
		uint8_t hash[HASH_LEN];
		int has_server = -1;
		char err[256] = "", link[1200];
		int rc = url_parse_link(c->link, hash, &s, &has_server, err, sizeof(err));
		if ((rc == 0) != c->ok)
			fail_msg("%s: rc %d (%s)", c->link, rc, err);
		if (!c->ok)
			continue;
		assert_memory_equal(hash, want, HASH_LEN);
		assert_int_equal(has_server, c->has_server);
		if (c->has_server) {
			assert_string_equal(s.base, c->base);
			url_link(&s, hash, link, sizeof(link));
			assert_int_equal(strncmp(link, c->base, strlen(c->base)), 0);
			assert_string_equal(link + strlen(c->base), H);
		}
	}
}

/* A file by its plain SHA-256: sha256:HASH, or URL/sha256/HASH (any case). */
static void test_sha256(void **state)
{
	(void)state;
	static const struct {
		const char *arg;
		int rc; /* 1: by sha256, 0: not that form, -1: malformed */
		const char *base;
	} cases[] = {
	    {"sha256:" H, 1, NULL},
	    {" SHA256:" H " ", 1, NULL},
	    {"http://example.org/sha256/" H, 1, "http://example.org/"},
	    {"https://example.org:8443/eph/sha256/" H "/", 1, "https://example.org:8443/eph/"},
	    {"http://example.org/SHA256/"
	     "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	     1, "http://example.org/"},
	    {"http://example.org/" H, 0, NULL},
	    {H, 0, NULL},
	    {"sha256:abc", -1, NULL},
	    {"sha256:" H "00", -1, NULL},
	    {"http://example.org/sha256/" H "x", 0, NULL},
	};
	uint8_t want[HASH_LEN];
	assert_int_equal(hash_from_hex(H, HASH_HEX_LEN, want), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct url_server s;
		uint8_t hash[HASH_LEN];
		int has_server = -1;
		char err[256] = "";
		int rc = url_parse_sha256(cases[i].arg, hash, &s, &has_server, err, sizeof(err));
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, expected %d (%s)", cases[i].arg, rc, cases[i].rc, err);
		if (rc != 1)
			continue;
		assert_memory_equal(hash, want, HASH_LEN);
		assert_int_equal(has_server, cases[i].base != NULL);
		if (cases[i].base)
			assert_string_equal(s.base, cases[i].base);
	}
}

/* A server whose base URL (and so its links) would not fit is refused, never cut short: a link
 * printed for it would name another address (found by fuzz_url). The longest that fits works. */
static void test_long_server(void **state)
{
	(void)state;
	char url[1100], link[1200], err[2048] = "";
	struct url_server s, back;
	uint8_t hash[HASH_LEN], again[HASH_LEN];
	int has = 0;
	memset(hash, 0xab, HASH_LEN);
	/* "http://h" and a path of 1018 bytes: a ws_path of 1020 fits, a base of 1026 would not */
	size_t n = (size_t)snprintf(url, sizeof(url), "http://h");
	while (n < 8 + 1018)
		n += (size_t)snprintf(url + n, sizeof(url) - n, "/p");
	assert_int_equal(url_parse_server(url, &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
	/* one segment less: the base is 1023 bytes, and a link to it leads back to it */
	url[n - 2] = '\0';
	assert_int_equal(url_parse_server(url, &s, err, sizeof(err)), 0);
	assert_int_equal(strlen(s.base), 1023);
	url_link(&s, hash, link, sizeof(link));
	assert_int_equal(url_parse_link(link, again, &back, &has, err, sizeof(err)), 0);
	assert_true(has);
	assert_memory_equal(again, hash, HASH_LEN);
	assert_string_equal(back.base, s.base);
}

/* However long what a person gave, the reason fits in the 512 bytes main.c gives it: a quoted
 * start of the argument, "...", and the whole reason (found by fuzz_url). */
static void test_long_argument_reason(void **state)
{
	(void)state;
	static const struct {
		const char *start; /* of the argument, followed by 1100 times fill */
		char fill;
		const char *reason;
	} cases[] = {
	    {"http://h/", '/', "the path is too long"},
	    {"http://", 'x', "the host name is too long"},
	    {"ftp://", 'x', "only http:// and https:// servers are known"},
	    {"nolink", 'x', "is neither a link (http://host/<hash>) nor a 64-digit address"},
	    {"sha256:", 'x', "a SHA-256 is 64 hex digits"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char arg[1200], err[512] = "";
		struct url_server s;
		uint8_t hash[HASH_LEN];
		int has, rc;
		size_t n = (size_t)snprintf(arg, sizeof(arg), "%s", cases[i].start);
		memset(arg + n, cases[i].fill, 1100);
		arg[n + 1100] = '\0';
		if (strncmp(arg, "sha256:", 7) == 0)
			rc = url_parse_sha256(arg, hash, &s, &has, err, sizeof(err));
		else if (strncmp(arg, "nolink", 6) == 0)
			rc = url_parse_link(arg, hash, &s, &has, err, sizeof(err));
		else
			rc = url_parse_server(arg, &s, err, sizeof(err));
		assert_int_equal(rc, -1);
		if (strstr(err, cases[i].reason) == NULL || strstr(err, "...") == NULL)
			fail_msg("%s...: %s", cases[i].start, err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_server),
	    cmocka_unit_test(test_link),
	    cmocka_unit_test(test_sha256),
	    cmocka_unit_test(test_long_server),
	    cmocka_unit_test(test_long_argument_reason),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
