/*
 * frontend.h — the map of the FastCGI frontend (build/ephemeral-fcgi).
 *
 * One process answers one request at a time: main.c accepts it, router.c (router.h) decides
 * what it asks for, frontend.c asks the hub when the answer depends on it (lookups.c keeps the
 * hub's recent answers), pages.c fills in the page, metrics.c turns the hub's stats into
 * Prometheus text, and response.c writes status, headers and body. Everything but main.c is free
 * of FastCGI, so tests can link it.
 */
#ifndef EPH_FCGI_FRONTEND_H
#define EPH_FCGI_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include "router.h"

/* The site's policy, on every response but the sandbox document. WebAssembly: hash-wasm, the
 * pages' streaming SHA-256 of whole files (web/static/sha256.js). */
#define FRONTEND_CSP_SITE                                                                          \
	"default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "             \
	"img-src 'self' data: blob:; "                                                             \
	"media-src 'self' blob:; connect-src 'self'; frame-src 'self'; object-src 'none'; "        \
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
/* The sandbox document: an opaque origin, where the shared HTML may run its inline scripts and
 * load anything; it can reach nothing of ours (no same-origin, no top navigation). */
#define FRONTEND_CSP_SANDBOX                                                                       \
	"sandbox allow-scripts; default-src * data: blob: 'unsafe-inline' 'unsafe-eval'"

/* response.c — one HTTP answer, built in memory, then written through a sink */
struct response {
	int status;
	const char *content_type;
	const char *csp;	   /* Content-Security-Policy, or NULL */
	const char *cache_control; /* or NULL */
	const char *allow;	   /* Allow (405), or NULL */
	char location[128];	   /* Location (3xx), or "" */
	char *body;
	size_t body_len, body_cap;
	int head;   /* HEAD: write the headers only (Content-Length still that of the body) */
	int failed; /* out of memory while building: send a bare 500 instead */
};
typedef int (*response_sink)(void *ctx, const void *data, size_t len);

void response_init(struct response *r);
/* Sets status and type, and the headers every answer of that kind carries. */
void response_html(struct response *r, int status);
void response_json(struct response *r, int status);
void response_text(struct response *r, int status);
void response_append(struct response *r, const void *data, size_t len);
void response_appendf(struct response *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes the whole answer (no body for HEAD). 0, or -1 if the sink failed. */
int response_write(const struct response *r, response_sink sink, void *ctx);
void response_free(struct response *r);

/* pages.c — the page templates, read once at start-up from <web_dir>/templates/ */
enum page {
	PAGE_HOME,
	PAGE_VIEW, /* {{HASH}} filled in */
	PAGE_GONE, /* {{HASH}} filled in */
	PAGE_NOT_FOUND,
	PAGE_SANDBOX,
	PAGE_UNAVAILABLE, /* optional template: a built-in page when absent */
	PAGE_NO_FILE,	  /* /sha256/{hash} that nobody holds; {{HASH}} filled in */
	PAGE_COUNT
};
struct pages {
	char *text[PAGE_COUNT];
	size_t len[PAGE_COUNT];
};
/* 0, or -1 with a message naming the missing or unreadable file. */
int pages_load(struct pages *p, const char *web_dir, char *err, size_t errlen);
void pages_free(struct pages *p);
/* Appends the page to r's body, with every {{HASH}} replaced by hash (64 lowercase hex digits,
 * already validated) when hash is not NULL. */
void pages_render(const struct pages *p, enum page which, const char *hash, struct response *r);

/* metrics.c — the hub's stats JSON as Prometheus text (exposition format 0.0.4) */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Appends every numeric figure of the stats object to r's body. 0, or -1 if stats_json is not a
 * JSON object. */
int metrics_render(const char *stats_json, struct response *r);

/* lookups.c — the hub's answers about hashes, reused for frontend.lookup_cache_ms */
#define LOOKUPS_SLOTS 4096 /* a power of two */
struct lookup_entry;
struct lookups {
	struct lookup_entry *slots; /* NULL: no cache (ttl_ms 0) */
	int ttl_ms;
};
/* 0, or -1 out of memory. ttl_ms 0: every lookups_get() misses. */
int lookups_init(struct lookups *l, int ttl_ms);
void lookups_free(struct lookups *l);
/* 1 with *viewers set when an unexpired answer is kept for hash, else 0. */
int lookups_get(const struct lookups *l, const uint8_t hash[HASH_LEN], int64_t now,
		uint32_t *viewers);
/* Keeps the hub's answer, asked at about now, for ttl_ms. */
void lookups_put(struct lookups *l, const uint8_t hash[HASH_LEN], uint32_t viewers, int64_t now);
/* The hub says the hash's viewers changed: updates a kept answer (its expiry unchanged). */
void lookups_update(struct lookups *l, const uint8_t hash[HASH_LEN], uint32_t viewers);

/* frontend.c — one request in, one response out */
struct hubclient;
struct frontend {
	struct hubclient *hub;
	const char *ws_url; /* frontend.ws_url: "" means the web server's /ws */
	char *csp_site;	    /* FRONTEND_CSP_SITE, with ws_url's origin allowed to connect */
	const char *host;   /* this request's Host (HTTP_HOST), or NULL */
	int https;	    /* this request came over TLS */
	const char *hub_endpoint;
	int hub_timeout_ms;
	int hub_silent; /* the last call timed out: log the next success, not every failure */
	struct pages pages;
	struct lookups lookups;
};
/* Connects to the hub and sets up the lookup cache (the settings are in fe already). 0 or -1. */
int frontend_open(struct frontend *fe, int lookup_cache_ms);
void frontend_close(struct frontend *fe);
void frontend_handle(struct frontend *fe, const char *method, const char *uri, struct response *r);
/* Reads frontend.ws_url into fe (and the policy that lets pages connect there). 0, or -1 with
 * a message when it is not a ws:// or wss:// URL. */
int frontend_ws_init(struct frontend *fe, const char *ws_url, char *err, size_t errlen);
void frontend_ws_free(struct frontend *fe);

#endif
