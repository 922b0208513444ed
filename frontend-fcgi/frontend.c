/*
 * frontend.c — answers one request: routes it, asks the hub when the answer depends on who holds
 * what, and fills in the response.
 *
 * Owns the mapping from route to answer (a dispatch table, one handler per route) and the hub
 * conversation, which goes through common/hubclient only and never waits longer than
 * frontend.hub_timeout_ms: a hub that does not answer in time is a 503, never a hang. Called by
 * main.c once per request; writes nothing itself.
 */
#include "frontend.h"
#include "hubclient.h"
#include "hubproto.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tracks whether the hub answers, so a dead hub is logged once, not on every request. */
static void frontend_hub_answered(struct frontend *fe, int ok)
{
	if (!ok && !fe->hub_silent)
		log_warnx("hub at %s did not answer within %d ms: answering 503 until it does",
			  fe->hub_endpoint, fe->hub_timeout_ms);
	else if (ok && fe->hub_silent)
		log_info("hub at %s answers again", fe->hub_endpoint);
	fe->hub_silent = !ok;
}

static void frontend_on_count(void *arg, const uint8_t hash[HASH_LEN], uint32_t viewers)
{
	struct frontend *fe = arg;
	lookups_update(&fe->lookups, hash, viewers);
}

int frontend_open(struct frontend *fe, int lookup_cache_ms)
{
	if (lookups_init(&fe->lookups, lookup_cache_ms) < 0)
		return -1;
	fe->hub = hubclient_open(fe->hub_endpoint);
	if (fe->hub == NULL) {
		lookups_free(&fe->lookups);
		return -1;
	}
	hubclient_on_count(fe->hub, frontend_on_count, fe);
	return 0;
}

void frontend_close(struct frontend *fe)
{
	hubclient_destroy(&fe->hub);
	lookups_free(&fe->lookups);
}

/*
 * The hub's count for a hash: from a recent answer when one is kept (after reading what the hub
 * pushed meanwhile, so a count that changed is never answered from before), else asked, with a
 * request to hear of every change for as long as the answer is kept. The watch outlasts the
 * answer by the hub timeout: the reply may be that late.
 */
static int frontend_lookup(struct frontend *fe, const char *hex, uint32_t *viewers)
{
	uint8_t hash[HASH_LEN];
	if (hash_from_hex(hex, strlen(hex), hash) < 0)
		return -1; /* cannot happen: the router validated it */
	int64_t now = now_ms();
	if (fe->lookups.ttl_ms > 0) {
		hubclient_poll(fe->hub);
		if (lookups_get(&fe->lookups, hash, now, viewers))
			return 0;
	}
	uint32_t watch_ms =
	    fe->lookups.ttl_ms > 0 ? (uint32_t)(fe->lookups.ttl_ms + fe->hub_timeout_ms) : 0;
	int rc = hubclient_lookup(fe->hub, hash, viewers, watch_ms, fe->hub_timeout_ms);
	frontend_hub_answered(fe, rc == 0);
	if (rc == 0)
		lookups_put(&fe->lookups, hash, *viewers, now);
	return rc;
}

/* What the hub knows of a plain SHA-256: a blob's viewers and the manifests of such a file. Not
 * kept in lookups.c: an answer is a list, and the links people follow are the manifests'. */
static int frontend_files(struct frontend *fe, const char *hex, uint32_t *viewers,
			  uint8_t (*list)[HUBPROTO_COUNT_ENTRY], size_t *n)
{
	uint8_t hash[HASH_LEN];
	if (hash_from_hex(hex, strlen(hex), hash) < 0)
		return -1; /* cannot happen: the router validated it */
	int rc = hubclient_files(fe->hub, hash, viewers, list, n, fe->hub_timeout_ms);
	frontend_hub_answered(fe, rc == 0);
	return rc;
}

/* Serialises a JSON body with jansson (and takes the reference). */
static void frontend_json_body(struct response *r, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	response_json(r, status);
	if (text) {
		response_append(r, text, strlen(text));
		response_append(r, "\n", 1);
	}
	free(text);
}

static void frontend_json_error(struct response *r, int status, const char *message)
{
	frontend_json_body(r, status, json_pack("{s:s}", "error", message));
}

static void frontend_unavailable_page(struct frontend *fe, struct response *r)
{
	response_html(r, 503);
	pages_render(&fe->pages, PAGE_UNAVAILABLE, NULL, r);
}

static void on_home(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)m;
	response_html(r, 200);
	pages_render(&fe->pages, PAGE_HOME, NULL, r);
}

static void on_page(struct frontend *fe, const struct route_match *m, struct response *r)
{
	uint32_t viewers;
	if (frontend_lookup(fe, m->hash, &viewers) < 0) {
		frontend_unavailable_page(fe, r);
		return;
	}
	response_html(r, viewers > 0 ? 200 : 404);
	pages_render(&fe->pages, viewers > 0 ? PAGE_VIEW : PAGE_GONE, m->hash, r);
}

/*
 * A redirect to path (prefix and hash), with a short page naming it for clients that do not
 * follow. A 301 is the lowercase form of an address, which never changes: it may be cached.
 */
static void frontend_redirect(struct response *r, int status, const char *title, const char *what,
			      const char *prefix, const char *hash)
{
	response_html(r, status);
	if (status == 301)
		r->cache_control = NULL;
	snprintf(r->location, sizeof(r->location), "%s%s", prefix, hash);
	response_appendf(r,
			 "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			 "<title>%s</title></head>\n<body><p>%s "
			 "<a href=\"%s%s\">%s%s</a>.</p></body></html>\n",
			 title, what, prefix, hash, prefix, hash);
}

static void on_page_redirect(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)fe;
	frontend_redirect(r, 301, "Moved", "This page lives at", "/", m->hash);
}

static void on_sha256(struct frontend *fe, const struct route_match *m, struct response *r)
{
	uint8_t list[HUBPROTO_MAX_MANIFESTS][HUBPROTO_COUNT_ENTRY];
	uint32_t viewers;
	size_t n;
	char target[HASH_HEX_LEN + 1];
	if (frontend_files(fe, m->hash, &viewers, list, &n) < 0) {
		frontend_unavailable_page(fe, r);
		return;
	}
	if (viewers == 0 && n == 0) {
		response_html(r, 404);
		pages_render(&fe->pages, PAGE_NO_FILE, m->hash, r);
		return;
	}
	/* A blob held under that address is the file itself; else the most viewed manifest. */
	if (viewers > 0)
		memcpy(target, m->hash, sizeof(target));
	else
		hash_to_hex(list[0], target);
	frontend_redirect(r, 302, "Found", "This file is at", "/", target);
}

static void on_sha256_redirect(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)fe;
	frontend_redirect(r, 301, "Moved", "This lookup lives at", ROUTER_SHA256, m->hash);
}

static void on_api_files(struct frontend *fe, const struct route_match *m, struct response *r)
{
	uint8_t list[HUBPROTO_MAX_MANIFESTS][HUBPROTO_COUNT_ENTRY];
	uint32_t viewers;
	size_t n;
	if (frontend_files(fe, m->hash, &viewers, list, &n) < 0) {
		frontend_json_error(r, 503, "the hub did not answer in time");
		return;
	}
	frontend_json_body(r, 200,
			   json_pack("{s:s, s:o}", "sha256", m->hash, "manifests",
				     hubproto_manifests_json(list[0], n)));
}

static void on_sandbox(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)m;
	response_html(r, 200);
	r->csp = FRONTEND_CSP_SANDBOX;
	pages_render(&fe->pages, PAGE_SANDBOX, NULL, r);
}

static void on_api_page(struct frontend *fe, const struct route_match *m, struct response *r)
{
	uint32_t viewers;
	if (frontend_lookup(fe, m->hash, &viewers) < 0) {
		frontend_json_error(r, 503, "the hub did not answer in time");
		return;
	}
	frontend_json_body(
	    r, 200, json_pack("{s:s, s:I}", "hash", m->hash, "viewers", (json_int_t)viewers));
}

static void on_api_bad_hash(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)fe;
	(void)m;
	frontend_json_error(r, 400, "a hash is 64 lowercase hex digits");
}

/* The stats object from the hub, or NULL after filling r with the error to send. */
static char *frontend_stats(struct frontend *fe, struct response *r, int json_errors)
{
	char *stats = NULL;
	int rc = hubclient_stats(fe->hub, &stats, fe->hub_timeout_ms);
	frontend_hub_answered(fe, rc == 0);
	if (rc == 0)
		return stats;
	if (json_errors) {
		frontend_json_error(r, 503, "the hub did not answer in time");
	} else {
		response_text(r, 503);
		response_appendf(r, "the hub did not answer in time\n");
	}
	return NULL;
}

static void on_api_stats(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)m;
	char *stats = frontend_stats(fe, r, 1);
	if (stats == NULL)
		return;
	response_json(r, 200);
	response_append(r, stats, strlen(stats));
	free(stats);
}

static void on_metrics(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)m;
	char *stats = frontend_stats(fe, r, 0);
	if (stats == NULL)
		return;
	response_text(r, 200);
	r->content_type = METRICS_CONTENT_TYPE;
	if (metrics_render(stats, r) < 0) {
		log_warnx("%s: the hub's stats are not a JSON object", __func__);
		response_text(r, 502);
		response_appendf(r, "the hub's stats could not be read\n");
	}
	free(stats);
}

/* A Host header we may put in a URL: a name or address and a port, nothing else. */
static int frontend_host_ok(const char *host)
{
	if (host == NULL || *host == '\0' || strlen(host) > 255)
		return 0;
	return strspn(host,
		      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
	       strlen(host);
}

/* The endpoint the pages connect to: the published gateways, else this site's own /ws. */
static void on_api_ws(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)m;
	char url[300];
	if (fe->ws_url && *fe->ws_url) {
		snprintf(url, sizeof(url), "%s", fe->ws_url);
	} else if (frontend_host_ok(fe->host)) {
		snprintf(url, sizeof(url), "%s://%s/ws", fe->https ? "wss" : "ws", fe->host);
	} else {
		frontend_json_error(r, 400, "the request names no usable Host");
		return;
	}
	frontend_json_body(r, 200, json_pack("{s:s}", "url", url));
	r->cache_control = "no-store";
}

int frontend_ws_init(struct frontend *fe, const char *ws_url, char *err, size_t errlen)
{
	fe->ws_url = ws_url;
	fe->csp_site = NULL;
	if (ws_url == NULL || *ws_url == '\0')
		return 0;
	size_t scheme = strncmp(ws_url, "ws://", 5) == 0    ? 5
			: strncmp(ws_url, "wss://", 6) == 0 ? 6
							    : 0;
	size_t origin = scheme ? scheme + strcspn(ws_url + scheme, "/?#") : 0;
	if (scheme == 0 || origin == scheme ||
	    strspn(ws_url,
		   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]/_~%") !=
		strlen(ws_url)) {
		snprintf(err, errlen, "frontend.ws_url \"%s\" is not a ws:// or wss:// URL",
			 ws_url);
		return -1;
	}
	/* 'self' covers the web server's own /ws only: the pages may also connect to ws_url. */
	static const char marker[] = "connect-src 'self'";
	static const char site[] = FRONTEND_CSP_SITE;
	size_t head = (size_t)(strstr(site, marker) - site) + strlen(marker);
	size_t len = strlen(site) + 1 + origin + 1;
	fe->csp_site = malloc(len);
	if (fe->csp_site == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(fe->csp_site, len, "%.*s %.*s%s", (int)head, site, (int)origin, ws_url,
		 &site[head]);
	return 0;
}

void frontend_ws_free(struct frontend *fe)
{
	free(fe->csp_site);
	fe->csp_site = NULL;
}

static void on_not_found(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)m;
	response_html(r, 404);
	pages_render(&fe->pages, PAGE_NOT_FOUND, NULL, r);
}

static void on_bad_method(struct frontend *fe, const struct route_match *m, struct response *r)
{
	(void)fe;
	(void)m;
	response_text(r, 405);
	r->allow = "GET, HEAD";
	response_appendf(r, "method not allowed: use GET or HEAD\n");
}

static void (*const frontend_handlers[ROUTE_COUNT])(struct frontend *, const struct route_match *,
						    struct response *) = {
    [ROUTE_NOT_FOUND] = on_not_found,
    [ROUTE_HOME] = on_home,
    [ROUTE_PAGE] = on_page,
    [ROUTE_PAGE_REDIRECT] = on_page_redirect,
    [ROUTE_SANDBOX] = on_sandbox,
    [ROUTE_API_PAGE] = on_api_page,
    [ROUTE_API_BAD_HASH] = on_api_bad_hash,
    [ROUTE_API_STATS] = on_api_stats,
    [ROUTE_API_WS] = on_api_ws,
    [ROUTE_METRICS] = on_metrics,
    [ROUTE_SHA256] = on_sha256,
    [ROUTE_SHA256_REDIRECT] = on_sha256_redirect,
    [ROUTE_API_FILES] = on_api_files,
    [ROUTE_BAD_METHOD] = on_bad_method,
};

void frontend_handle(struct frontend *fe, const char *method, const char *uri, struct response *r)
{
	struct route_match m;
	router_match(method, uri, &m);
	frontend_handlers[m.route](fe, &m, r);
	r->head = m.head;
	if (fe->csp_site && r->csp && strcmp(r->csp, FRONTEND_CSP_SITE) == 0)
		r->csp = fe->csp_site;
}
