/*
 * router.h — which answer a request gets, decided from its method and REQUEST_URI alone.
 *
 * A pure function: no I/O, no allocation, no global state, so the unit tests can feed it any
 * bytes. It never looks at SCRIPT_NAME or PATH_INFO, which lighttpd and Apache fill differently.
 * The query string is ignored; paths are matched exactly (no trailing slash, no percent-decoding).
 */
#ifndef EPH_FCGI_ROUTER_H
#define EPH_FCGI_ROUTER_H

#include "util.h"

enum route {
	ROUTE_NOT_FOUND = 0,   /* anything else: 404 page */
	ROUTE_HOME,	       /* GET / */
	ROUTE_PAGE,	       /* GET /{hash}: viewer page or gone page, by the hub's count */
	ROUTE_PAGE_REDIRECT,   /* GET /{HASH} in upper or mixed case: 301 to the lowercase hash */
	ROUTE_SANDBOX,	       /* GET /sandbox: the document that runs shared HTML */
	ROUTE_API_PAGE,	       /* GET /api/v1/pages/{hash} */
	ROUTE_API_BAD_HASH,    /* GET /api/v1/pages/ or /api/v1/files/<anything else>: 400 */
	ROUTE_API_STATS,       /* GET /api/v1/stats */
	ROUTE_API_WS,	       /* GET /api/v1/ws: the WebSocket URL the pages use */
	ROUTE_METRICS,	       /* GET /metrics */
	ROUTE_SHA256,	       /* GET /sha256/{hash}: 302 to the content with that plain SHA-256 */
	ROUTE_SHA256_REDIRECT, /* GET /sha256/{HASH} in upper or mixed case: 301 to lowercase */
	ROUTE_API_FILES,       /* GET /api/v1/files/{hash}: the manifests of that file */
	ROUTE_BAD_METHOD,      /* neither GET nor HEAD: 405 */
	ROUTE_COUNT
};

#define ROUTER_SANDBOX_PATH "/sandbox"
#define ROUTER_API_PAGES    "/api/v1/pages/"
#define ROUTER_API_FILES    "/api/v1/files/"
#define ROUTER_SHA256	    "/sha256/"

struct route_match {
	enum route route;
	int head;		     /* HEAD: the GET answer without its body */
	char hash[HASH_HEX_LEN + 1]; /* lowercase; set for the routes that name a hash */
};

/* Fills m for a request. method and uri may be NULL (treated as empty). */
void router_match(const char *method, const char *uri, struct route_match *m);
/* A short name for logs ("page", "api_stats", ...). */
const char *router_route_name(enum route r);

#endif
