/*
 * test_router.c — the frontend's URL space, as a table of (method, uri) -> (route, head, hash).
 *
 * The router is pure, so every case is one call; the table is the specification of which request
 * gets which answer (PROTOCOL.md, "HTTP"). Odd inputs (NULL, very long URIs, control and
 * non-ASCII bytes) must route to a 404 or 405, never crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../frontend-fcgi/router.h"

#define H  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HU "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
#define HM "0123456789aBcDeF0123456789abcdef0123456789abcdef0123456789abcdeF"

struct route_case {
	const char *method;
	const char *uri;
	enum route route;
	int head;
	const char *hash; /* expected hash, or NULL: empty */
};

static const struct route_case cases[] = {
    /* home */
    {"GET", "/", ROUTE_HOME, 0, NULL},
    {"HEAD", "/", ROUTE_HOME, 1, NULL},
    {"GET", "/?x=1", ROUTE_HOME, 0, NULL},
    {"GET", "/?", ROUTE_HOME, 0, NULL},
    {"GET", "//", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "*", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "http://example.org/", ROUTE_NOT_FOUND, 0, NULL},

    /* pages */
    {"GET", "/" H, ROUTE_PAGE, 0, H},
    {"HEAD", "/" H, ROUTE_PAGE, 1, H},
    {"GET", "/" H "?ref=abc", ROUTE_PAGE, 0, H},
    {"GET", "/" H "?", ROUTE_PAGE, 0, H},
    {"GET", "/" H "/", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/" H "#frag", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/" H "0", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", ROUTE_NOT_FOUND, 0,
     NULL},
    {"GET", "/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", ROUTE_NOT_FOUND, 0,
     NULL},
    {"GET", "/%30123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ROUTE_NOT_FOUND,
     0, NULL},
    {"GET", "//" H, ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/static/" H, ROUTE_NOT_FOUND, 0, NULL},

    /* mixed and upper case: redirect to the lowercase address */
    {"GET", "/" HU, ROUTE_PAGE_REDIRECT, 0, H},
    {"GET", "/" HM, ROUTE_PAGE_REDIRECT, 0, H},
    {"HEAD", "/" HU, ROUTE_PAGE_REDIRECT, 1, H},
    {"GET", "/" HU "?q", ROUTE_PAGE_REDIRECT, 0, H},
    {"GET", "/" HU "/", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEG", ROUTE_NOT_FOUND, 0,
     NULL},

    /* API: one page */
    {"GET", "/api/v1/pages/" H, ROUTE_API_PAGE, 0, H},
    {"HEAD", "/api/v1/pages/" H, ROUTE_API_PAGE, 1, H},
    {"GET", "/api/v1/pages/" H "?pretty=1", ROUTE_API_PAGE, 0, H},
    {"GET", "/api/v1/pages/" HU, ROUTE_API_BAD_HASH, 0, NULL},
    {"GET", "/api/v1/pages/" HM, ROUTE_API_BAD_HASH, 0, NULL},
    {"GET", "/api/v1/pages/" H "/", ROUTE_API_BAD_HASH, 0, NULL},
    {"GET", "/api/v1/pages/" H "0", ROUTE_API_BAD_HASH, 0, NULL},
    {"GET", "/api/v1/pages/", ROUTE_API_BAD_HASH, 0, NULL},
    {"GET", "/api/v1/pages/?" H, ROUTE_API_BAD_HASH, 0, NULL},
    {"GET", "/api/v1/pages/xyz", ROUTE_API_BAD_HASH, 0, NULL},
    {"GET", "/api/v1/pages/" H "/extra", ROUTE_API_BAD_HASH, 0, NULL},
    {"GET", "/api/v1/pages", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/api/v1/page/" H, ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/API/v1/pages/" H, ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/api/v2/pages/" H, ROUTE_NOT_FOUND, 0, NULL},

    /* API: stats, metrics, sandbox */
    {"GET", "/api/v1/stats", ROUTE_API_STATS, 0, NULL},
    {"HEAD", "/api/v1/stats", ROUTE_API_STATS, 1, NULL},
    {"GET", "/api/v1/stats?x", ROUTE_API_STATS, 0, NULL},
    {"GET", "/api/v1/stats/", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/api/v1/statsx", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/api/v1/ws", ROUTE_API_WS, 0, NULL},
    {"GET", "/api/v1/ws?t=1", ROUTE_API_WS, 0, NULL},
    {"GET", "/api/v1/ws/", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/ws", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/api/v1", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/api/v1/", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/metrics", ROUTE_METRICS, 0, NULL},
    {"HEAD", "/metrics", ROUTE_METRICS, 1, NULL},
    {"GET", "/metrics/", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/Metrics", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/sandbox", ROUTE_SANDBOX, 0, NULL},
    {"HEAD", "/sandbox", ROUTE_SANDBOX, 1, NULL},
    {"GET", "/sandbox?v=2", ROUTE_SANDBOX, 0, NULL},
    {"GET", "/sandbox/", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/sandbox.html", ROUTE_NOT_FOUND, 0, NULL},

    /* everything else */
    {"GET", "/favicon.ico", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/static/style.css", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/ws", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/index.html", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/../etc/passwd", ROUTE_NOT_FOUND, 0, NULL},
    {"GET", "/\x01\x7f\xff", ROUTE_NOT_FOUND, 0, NULL},
    {"HEAD", "/nope", ROUTE_NOT_FOUND, 1, NULL},

    /* methods: anything but GET and HEAD is 405, whatever the path */
    {"POST", "/", ROUTE_BAD_METHOD, 0, NULL},
    {"PUT", "/" H, ROUTE_BAD_METHOD, 0, NULL},
    {"DELETE", "/api/v1/pages/" H, ROUTE_BAD_METHOD, 0, NULL},
    {"OPTIONS", "/api/v1/stats", ROUTE_BAD_METHOD, 0, NULL},
    {"PATCH", "/metrics", ROUTE_BAD_METHOD, 0, NULL},
    {"POST", "/nope", ROUTE_BAD_METHOD, 0, NULL},
    {"get", "/", ROUTE_BAD_METHOD, 0, NULL},
    {"GETX", "/", ROUTE_BAD_METHOD, 0, NULL},
    {"", "/", ROUTE_BAD_METHOD, 0, NULL},
    {NULL, "/", ROUTE_BAD_METHOD, 0, NULL},
    {"GET", NULL, ROUTE_NOT_FOUND, 0, NULL},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct route_case *c = &cases[i];
		struct route_match m;
		router_match(c->method, c->uri, &m);
		if (m.route != c->route || m.head != c->head ||
		    strcmp(m.hash, c->hash ? c->hash : "") != 0)
			fail_msg("case %zu: %s %s: got %s head=%d hash=\"%s\", want %s head=%d "
				 "hash=\"%s\"",
				 i, c->method ? c->method : "(null)", c->uri ? c->uri : "(null)",
				 router_route_name(m.route), m.head, m.hash,
				 router_route_name(c->route), c->head, c->hash ? c->hash : "");
	}
}

/* A URI far longer than any web server would pass: still a plain 404 or a route. */
static void test_very_long_uris(void **state)
{
	(void)state;
	size_t len = 1024 * 1024;
	char *uri = malloc(len + 1);
	assert_non_null(uri);
	uri[0] = '/';
	memset(uri + 1, 'a', len - 1);
	uri[len] = '\0';

	struct route_match m;
	router_match("GET", uri, &m);
	assert_int_equal(m.route, ROUTE_NOT_FOUND);

	/* a valid page followed by a huge query string */
	memcpy(uri, "/" H "?", 66);
	router_match("GET", uri, &m);
	assert_int_equal(m.route, ROUTE_PAGE);
	assert_string_equal(m.hash, H);

	/* the API prefix followed by a huge "hash" */
	memset(uri, 'f', len);
	memcpy(uri, "/api/v1/pages/", 14);
	uri[len] = '\0';
	router_match("GET", uri, &m);
	assert_int_equal(m.route, ROUTE_API_BAD_HASH);
	assert_string_equal(m.hash, "");
	free(uri);
}

/* Every single-byte change to a valid page address is either the same route or a 404. */
static void test_every_byte(void **state)
{
	(void)state;
	char uri[] = "/" H;
	for (size_t pos = 0; pos < sizeof(uri) - 1; pos++) {
		char saved = uri[pos];
		for (int b = 1; b < 256; b++) {
			uri[pos] = (char)b;
			struct route_match m;
			router_match("GET", uri, &m);
			int hex_lower = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f');
			int hex_upper = b >= 'A' && b <= 'F';
			/* anything else is a 404: a '?' cuts the path short of a hash ("/?..." is
			 * the home page) */
			enum route want = ROUTE_NOT_FOUND;
			if (pos == 0 ? b == '/' : hex_lower)
				want = ROUTE_PAGE;
			else if (pos > 0 && hex_upper)
				want = ROUTE_PAGE_REDIRECT;
			else if (pos == 1 && b == '?')
				want = ROUTE_HOME;
			if (m.route != want)
				fail_msg("byte 0x%02x at %zu: got %s", b, pos,
					 router_route_name(m.route));
		}
		uri[pos] = saved;
	}
}

static void test_route_names(void **state)
{
	(void)state;
	for (int r = 0; r < ROUTE_COUNT; r++)
		assert_string_not_equal(router_route_name((enum route)r), "unknown");
	assert_string_equal(router_route_name(ROUTE_COUNT), "unknown");
	assert_string_equal(router_route_name((enum route) - 1), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_every_byte),
	    cmocka_unit_test(test_very_long_uris),
	    cmocka_unit_test(test_route_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
