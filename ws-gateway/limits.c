/*
 * limits.c — who may open a WebSocket here, and how fast one connection may go.
 *
 * Owns the per-address connection counts, the Origin policy and the per-connection budgets.
 * The client address is the TCP peer, unless the peer is a trusted proxy (gateway.trusted_proxies)
 * that names the client in X-Forwarded-For (its last entry: the one the proxy added). Origins:
 * a request without Origin (a CLI) is allowed, and so is the site's own origin (Origin's host
 * equal to the Host the browser sent) and any listed in gateway.allowed_origins (in direct mode
 * the pages come from the web server's origin, not the gateways'); that keeps out other sites and
 * shared HTML running in the sandbox (Origin "null"). Budgets are token buckets: a text message
 * costs one token plus one per 8 hashes it lists, so a long have/drop list weighs what it costs
 * to handle; messages past gateway.msg_rate are answered rate_limited, and pings and pongs
 * (framewatch.c sees them; lws answers them) cost a token too, past the budget a violation.
 * Those answers and every bad_request count as violations, forgiven at one a second; a
 * connection that reaches gateway.max_violations is closed with 1008. Malformed messages are
 * charged like others, so a garbage flood is refused and closed like any flood. Bytes past
 * gateway.byte_rate are not refused but slowed, by pausing reads from that connection. Never harms
 * another connection. A refused handshake is answered with an HTTP status (403 Origin, 503
 * gateway.max_conns, 429 gateway.max_conns_per_addr) and counted; session.c writes the answer.
 */
#include "gateway.h"
#include "log.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct addr_count {
	char addr[GW_ADDR_LEN];
	uint32_t n;
};

/* Splits a comma-separated setting into trimmed, lower-cased entries. */
static char **limits_split(const char *text, size_t *count)
{
	char **out = NULL;
	size_t n = 0;
	const char *p = text;
	while (*p) {
		const char *e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		const char *s = p, *t = e;
		while (s < t && isspace((unsigned char)*s))
			s++;
		while (t > s && isspace((unsigned char)t[-1]))
			t--;
		if (t > s) {
			char **grown = realloc(out, (n + 1) * sizeof(*out));
			if (grown == NULL)
				break;
			out = grown;
			out[n] = strndup(s, (size_t)(t - s));
			for (char *c = out[n]; c && *c; c++)
				*c = (char)tolower((unsigned char)*c);
			if (out[n])
				n++;
		}
		p = *e ? e + 1 : e;
	}
	*count = n;
	return out;
}

static int limits_in_list(char **list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(list[i], s) == 0)
			return 1;
	return 0;
}

void limits_init(struct gateway *gw, const char *trusted, const char *origins)
{
	map_init(&gw->addrs, offsetof(struct addr_count, addr), GW_ADDR_LEN);
	gw->trusted = limits_split(trusted, &gw->ntrusted);
	gw->origins = limits_split(origins, &gw->norigins);
}

void limits_free(struct gateway *gw)
{
	size_t it = 0;
	struct addr_count *a;
	while ((a = map_next(&gw->addrs, &it)))
		free(a);
	map_free(&gw->addrs);
	for (size_t i = 0; i < gw->ntrusted; i++)
		free(gw->trusted[i]);
	for (size_t i = 0; i < gw->norigins; i++)
		free(gw->origins[i]);
	free(gw->trusted);
	free(gw->origins);
}

void limits_client_addr(struct gateway *gw, struct lws *wsi, char out[GW_ADDR_LEN])
{
	char xff[512];
	memset(out, 0, GW_ADDR_LEN);
	lws_get_peer_simple(wsi, out, GW_ADDR_LEN - 1);
	if (strncmp(out, "::ffff:", 7) == 0)
		memmove(out, out + 7, strlen(out + 7) + 1);
	if (!limits_in_list(gw->trusted, gw->ntrusted, out))
		return;
	int n = lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR);
	if (n <= 0)
		return;
	const char *last = strrchr(xff, ',');
	last = last ? last + 1 : xff;
	while (*last == ' ' || *last == '\t')
		last++;
	size_t len = strcspn(last, " \t");
	if (len == 0 || len >= GW_ADDR_LEN)
		return;
	memset(out, 0, GW_ADDR_LEN);
	memcpy(out, last, len);
}

/* The host[:port] of an Origin, without a default port. */
static int limits_origin_ok(struct gateway *gw, struct lws *wsi)
{
	char origin[256], host[256];
	int n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
	if (n <= 0)
		return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <=
		       0; /* no Origin: not a browser */
	if (gw->norigins && limits_in_list(gw->origins, gw->norigins, origin))
		return 1;
	const char *auth = strstr(origin, "://");
	if (auth == NULL)
		return 0; /* "null" and anything else that names no site */
	int https = strncasecmp(origin, "https://", 8) == 0;
	auth += 3;
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
		return 0;
	if (strcasecmp(auth, host) == 0)
		return 1;
	/* Host may carry the default port that Origin leaves out. */
	size_t alen = strlen(auth);
	const char *port = https ? ":443" : ":80";
	return strncasecmp(auth, host, alen) == 0 && strcasecmp(host + alen, port) == 0;
}

int limits_admit(struct gateway *gw, struct lws *wsi, const char **why)
{
	char addr[GW_ADDR_LEN];
	limits_client_addr(gw, wsi, addr);
	if (!limits_origin_ok(gw, wsi)) {
		*why = "this site's pages only: Origin not allowed";
		log_info("refused a WebSocket from %s: Origin not allowed (%llu so far)", addr,
			 (unsigned long long)++gw->counters[HUB_GWC_REFUSED_ORIGIN]);
		return HTTP_STATUS_FORBIDDEN;
	}
	if (gw->nsessions >= (uint32_t)gw->max_conns) {
		*why = LIMITS_FULL;
		log_info("refused a WebSocket from %s: %u connections, the most this gateway holds "
			 "(%llu so far)",
			 addr, gw->nsessions,
			 (unsigned long long)++gw->counters[HUB_GWC_REFUSED_FULL]);
		return HTTP_STATUS_SERVICE_UNAVAILABLE;
	}
	struct addr_count *a = map_get(&gw->addrs, addr);
	if (a && a->n >= (uint32_t)gw->max_conns_per_addr) {
		*why = "too many connections from your address";
		log_info("refused a WebSocket from %s: %u connections already (%llu so far)", addr,
			 a->n, (unsigned long long)++gw->counters[HUB_GWC_REFUSED_PER_ADDRESS]);
		return LIMITS_HTTP_TOO_MANY;
	}
	return 0;
}

void limits_session_open(struct gateway *gw, struct session *s)
{
	limits_client_addr(gw, s->wsi, s->addr);
	struct addr_count *a = map_get(&gw->addrs, s->addr);
	if (a == NULL) {
		a = calloc(1, sizeof(*a));
		if (a) {
			memcpy(a->addr, s->addr, GW_ADDR_LEN);
			if (map_put(&gw->addrs, a) < 0) {
				free(a);
				a = NULL;
			}
		}
	}
	if (a)
		a->n++;
	s->msg_tokens = (double)gw->msg_burst;
	s->byte_tokens = (double)gw->byte_burst;
	s->bucket_ms = now_ms();
}

void limits_session_close(struct gateway *gw, struct session *s)
{
	struct addr_count *a = map_get(&gw->addrs, s->addr);
	if (a && --a->n == 0) {
		map_del(&gw->addrs, a->addr);
		free(a);
	}
	timer_stop(gw, &s->resume_timer);
}

static void limits_refill(struct gateway *gw, struct session *s)
{
	int64_t now = now_ms();
	double dt = (double)(now - s->bucket_ms) / 1000.0;
	s->bucket_ms = now;
	s->msg_tokens += dt * (double)gw->msg_rate;
	if (s->msg_tokens > (double)gw->msg_burst)
		s->msg_tokens = (double)gw->msg_burst;
	s->byte_tokens += dt * (double)gw->byte_rate;
	if (s->byte_tokens > (double)gw->byte_burst)
		s->byte_tokens = (double)gw->byte_burst;
	s->violations -= dt;
	if (s->violations < 0)
		s->violations = 0;
}

/* One more violation, the bucket just refilled: 0, or -1 once it closes the connection. */
static int limits_add_violation(struct gateway *gw, struct session *s, const char *reason)
{
	if (++s->violations >= (double)gw->max_violations) {
		session_close_soon(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, reason);
		return -1;
	}
	return 0;
}

static int limits_count_violation(struct gateway *gw, struct session *s, const char *reason)
{
	limits_refill(gw, s);
	return limits_add_violation(gw, s, reason);
}

/* Takes cost message tokens: 1, or past the budget a violation (0, or -1 once it closes). */
static int limits_take_tokens(struct gateway *gw, struct session *s, double cost,
			      const char *reason)
{
	limits_refill(gw, s);
	if (s->msg_tokens >= cost) {
		s->msg_tokens -= cost;
		return 1;
	}
	return limits_add_violation(gw, s, reason);
}

int limits_take_message(struct gateway *gw, struct session *s, size_t nhashes)
{
	double cost = 1.0 + (double)(nhashes / LIMITS_HASHES_PER_TOKEN);
	return limits_take_tokens(gw, s, cost, "rate limit exceeded");
}

int limits_violation(struct gateway *gw, struct session *s)
{
	return limits_count_violation(gw, s, "rate limit exceeded");
}

void limits_bad_message(struct gateway *gw, struct session *s)
{
	limits_count_violation(gw, s, "too many bad messages");
}

void limits_take_control(struct gateway *gw, struct session *s)
{
	limits_take_tokens(gw, s, 1.0, "too many pings");
}

static void limits_resume(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct session *s = lws_container_of(t, struct session, resume_timer);
	s->paused_bytes = 0;
	session_update_flow(s);
}

void limits_take_bytes(struct gateway *gw, struct session *s, size_t n)
{
	limits_refill(gw, s);
	s->byte_tokens -= (double)n;
	if (s->byte_tokens >= 0 || s->paused_bytes)
		return;
	/* Over budget: stop reading this connection until the debt is paid off. */
	double wait_s = -s->byte_tokens / (double)gw->byte_rate;
	s->paused_bytes = 1;
	session_update_flow(s);
	timer_arm(gw, &s->resume_timer, limits_resume, (int64_t)(wait_s * 1e3) + 1);
}
