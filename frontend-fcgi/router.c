/*
 * router.c — maps (method, REQUEST_URI) to a route and, where there is one, the page's hash.
 *
 * Owns the URL space of the frontend and nothing else: it never reads the environment, never
 * allocates and never fails, whatever bytes it is given. Static files (/static/) and the
 * WebSocket endpoint (/ws) are the web server's business and never reach it; if they do, they
 * are not found. Called by frontend.c for every request and by tests/unit/test_router.c.
 */
#include "router.h"

#include <string.h>

/* Exact paths, as a table: adding a fixed page is adding a row. */
static const struct {
	const char *path;
	enum route route;
} router_fixed[] = {
    {"/", ROUTE_HOME},
    {ROUTER_SANDBOX_PATH, ROUTE_SANDBOX},
    {"/api/v1/stats", ROUTE_API_STATS},
    {"/api/v1/ws", ROUTE_API_WS},
    {"/metrics", ROUTE_METRICS},
};

static const char *const router_names[ROUTE_COUNT] = {
    [ROUTE_NOT_FOUND] = "not_found",
    [ROUTE_HOME] = "home",
    [ROUTE_PAGE] = "page",
    [ROUTE_PAGE_REDIRECT] = "page_redirect",
    [ROUTE_SANDBOX] = "sandbox",
    [ROUTE_API_PAGE] = "api_page",
    [ROUTE_API_BAD_HASH] = "api_bad_hash",
    [ROUTE_API_STATS] = "api_stats",
    [ROUTE_API_WS] = "api_ws",
    [ROUTE_METRICS] = "metrics",
    [ROUTE_SHA256] = "sha256",
    [ROUTE_SHA256_REDIRECT] = "sha256_redirect",
    [ROUTE_API_FILES] = "api_files",
    [ROUTE_BAD_METHOD] = "bad_method",
};

void router_match(const char *method, const char *uri, struct route_match *m)
{
	memset(m, 0, sizeof(*m));
	m->route = ROUTE_NOT_FOUND;
	if (method == NULL)
		method = "";
	if (uri == NULL)
		uri = "";

	if (strcmp(method, "HEAD") == 0) {
		m->head = 1;
	} else if (strcmp(method, "GET") != 0) {
		m->route = ROUTE_BAD_METHOD;
		return;
	}

	size_t len = strcspn(uri, "?");
	for (size_t i = 0; i < sizeof(router_fixed) / sizeof(router_fixed[0]); i++) {
		if (strlen(router_fixed[i].path) == len &&
		    memcmp(router_fixed[i].path, uri, len) == 0) {
			m->route = router_fixed[i].route;
			return;
		}
	}

	static const struct {
		const char *prefix;
		enum route route;
	} router_api[] = {{ROUTER_API_PAGES, ROUTE_API_PAGE}, {ROUTER_API_FILES, ROUTE_API_FILES}};
	for (size_t i = 0; i < sizeof(router_api) / sizeof(router_api[0]); i++) {
		const size_t api_len = strlen(router_api[i].prefix);
		if (len < api_len || memcmp(uri, router_api[i].prefix, api_len) != 0)
			continue;
		if (hash_hex_valid(uri + api_len, len - api_len)) {
			m->route = router_api[i].route;
			hash_hex_lower(uri + api_len, m->hash);
		} else {
			m->route = ROUTE_API_BAD_HASH;
		}
		return;
	}

	const size_t sha_len = strlen(ROUTER_SHA256);
	if (len == sha_len + HASH_HEX_LEN && memcmp(uri, ROUTER_SHA256, sha_len) == 0) {
		if (hash_hex_valid(uri + sha_len, HASH_HEX_LEN)) {
			m->route = ROUTE_SHA256;
			hash_hex_lower(uri + sha_len, m->hash);
		} else if (hash_hex_valid_anycase(uri + sha_len, HASH_HEX_LEN)) {
			m->route = ROUTE_SHA256_REDIRECT;
			hash_hex_lower(uri + sha_len, m->hash);
		}
		return;
	}

	if (len == 1 + HASH_HEX_LEN && uri[0] == '/') {
		if (hash_hex_valid(uri + 1, HASH_HEX_LEN)) {
			m->route = ROUTE_PAGE;
			hash_hex_lower(uri + 1, m->hash);
		} else if (hash_hex_valid_anycase(uri + 1, HASH_HEX_LEN)) {
			m->route = ROUTE_PAGE_REDIRECT;
			hash_hex_lower(uri + 1, m->hash);
		}
	}
}

const char *router_route_name(enum route r)
{
	if ((int)r < 0 || r >= ROUTE_COUNT || router_names[r] == NULL)
		return "unknown";
	return router_names[r];
}
