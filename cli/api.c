/*
 * api.c — one HTTP GET of the site's JSON API, for `ephemeral get …/sha256/HASH`.
 *
 * Owns a short-lived libwebsockets context with one HTTP client connection: GET the path under
 * the server's base URL (same TLS options as the WebSocket: --insecure, --cacert), collect at
 * most API_MAX_BODY bytes of body, give up after API_TIMEOUT_MS. Used before the WebSocket
 * opens, to learn which manifests hold a file with a given plain SHA-256 (PROTOCOL.md
 * GET /api/v1/pages/{hash}, GET /api/v1/files/{hash}). No retries: the caller says what failed.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_MAX_BODY   (256 * 1024)
#define API_TIMEOUT_MS 10000

struct api_call {
	int done, failed, status;
	char *body;
	size_t len;
	char why[160];
};

static int api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct api_call *a = lws_get_opaque_user_data(wsi);
	(void)user;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (a) {
			snprintf(a->why, sizeof(a->why), "%s",
				 in ? (const char *)in : "cannot connect");
			a->failed = a->done = 1;
		}
		return 0;
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		if (a)
			a->status = (int)lws_http_client_http_response(wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		if (a == NULL)
			return 0;
		if (a->len + len > API_MAX_BODY) {
			snprintf(a->why, sizeof(a->why), "the answer is too long");
			a->failed = a->done = 1;
			return -1;
		}
		char *grown = realloc(a->body, a->len + len + 1);
		if (grown == NULL) {
			snprintf(a->why, sizeof(a->why), "out of memory");
			a->failed = a->done = 1;
			return -1;
		}
		a->body = grown;
		memcpy(a->body + a->len, in, len);
		a->len += len;
		a->body[a->len] = '\0';
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
		char buf[LWS_PRE + 4096];
		char *p = buf + LWS_PRE;
		int n = (int)sizeof(buf) - LWS_PRE;
		return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
	}
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		if (a)
			a->done = 1;
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols api_protocols[] = {
    {"ephemeral-api", api_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int api_get(const struct client_config *cfg, const char *path, int *status, char **body, char *err,
	    size_t errlen)
{
	struct lws_context_creation_info info;
	struct api_call a = {0};
	char url_path[2048];
	*body = NULL;
	/* The base URL's path (the site may live under a prefix), then the API's path. */
	const char *prefix = strstr(cfg->server.base, "://");
	prefix = prefix ? strchr(prefix + 3, '/') : NULL;
	snprintf(url_path, sizeof(url_path), "%s%s", prefix ? prefix : "/", path);
	lws_set_log_level(cfg->lws_logs ? LLL_ERR | LLL_WARN : 0, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = api_protocols;
	info.fd_limit_per_thread = 4;
	if (cfg->server.tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = cfg->cacert;
	}
	struct lws_context *ctx = lws_create_context(&info);
	if (ctx == NULL) {
		snprintf(err, errlen, "cannot set up an HTTP client");
		return -1;
	}
	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof(ci));
	ci.context = ctx;
	ci.address = cfg->server.host;
	ci.port = cfg->server.port;
	ci.path = url_path;
	ci.host = cfg->server.authority;
	ci.method = "GET";
	ci.protocol = api_protocols[0].name;
	ci.opaque_user_data = &a;
	if (cfg->server.tls) {
		ci.ssl_connection = LCCSCF_USE_SSL;
		if (cfg->insecure)
			ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
					     LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
					     LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	}
	int64_t deadline = now_ms() + API_TIMEOUT_MS;
	if (lws_client_connect_via_info(&ci) == NULL && !a.done) {
		snprintf(a.why, sizeof(a.why), "cannot connect");
		a.failed = a.done = 1;
	}
	while (!a.done && !client_interrupted()) {
		if (now_ms() > deadline) {
			snprintf(a.why, sizeof(a.why), "no answer within %d s",
				 API_TIMEOUT_MS / 1000);
			a.failed = 1;
			break;
		}
		lws_service(ctx, 100);
	}
	lws_context_destroy(ctx);
	if (a.failed || client_interrupted() || a.status == 0) {
		free(a.body);
		snprintf(err, errlen, "%s%s", cfg->server.base,
			 a.why[0] ? "" : ": the server did not answer");
		if (a.why[0])
			snprintf(err + strlen(err), errlen - strlen(err), "%s: %s", path, a.why);
		return -1;
	}
	*status = a.status;
	*body = a.body ? a.body : strdup("");
	return *body ? 0 : -1;
}
