/*
 * main.c — ephemeral-fcgi: the FastCGI frontend, one request at a time.
 *
 * Reads the settings (hub.endpoint, frontend.hub_timeout_ms, frontend.lookup_cache_ms,
 * frontend.web_dir), loads the page templates, connects to the hub, then accepts requests on the
 * FastCGI socket the web server handed over as standard input (lighttpd's bin-path, Apache's
 * mod_fcgid, spawn-fcgi). Given a socket as its one argument ("127.0.0.1:9000" or
 * "/run/ephemeral/fcgi.sock"), it listens there itself instead, for a web server that does not
 * spawn FastCGI programs (Apache's mod_proxy_fcgi) or a service manager. Run from a shell with
 * neither, it answers the one CGI request described by its environment, which is handy for
 * debugging:
 * REQUEST_METHOD=GET REQUEST_URI=/ build/ephemeral-fcgi
 */
#include "config.h"
#include "frontend.h"
#include "log.h"

#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static int sink_fcgx(void *ctx, const void *data, size_t len)
{
	FCGX_Stream *out = ctx;
	while (len > 0) {
		int chunk = len > 1 << 30 ? 1 << 30 : (int)len;
		if (FCGX_PutStr(data, chunk, out) != chunk)
			return -1;
		data = (const char *)data + chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

static int sink_stdout(void *ctx, const void *data, size_t len)
{
	return fwrite(data, 1, len, ctx) == len ? 0 : -1;
}

/* The URI as it may appear in a log line: at most outlen - 4 bytes, then "..."; control and
 * non-ASCII bytes as '?'. outlen must be at least 4. */
static void printable_uri(const char *uri, char *out, size_t outlen)
{
	size_t i = 0;
	for (; uri[i] && i + 4 < outlen; i++)
		out[i] = (uri[i] >= 0x20 && uri[i] < 0x7f) ? uri[i] : '?';
	if (uri[i])
		memcpy(out + i, "...", 4);
	else
		out[i] = '\0';
}

/* HTTPS as lighttpd and Apache (mod_ssl) set it: "on" over TLS. */
static int is_https(const char *https, const char *scheme)
{
	return (https && strcasecmp(https, "on") == 0) || (scheme && strcmp(scheme, "https") == 0);
}

static void serve(struct frontend *fe, const char *method, const char *uri, response_sink sink,
		  void *ctx)
{
	struct response r;
	int64_t start = now_ms();

	response_init(&r);
	frontend_handle(fe, method, uri, &r);
	if (response_write(&r, sink, ctx) < 0)
		log_debug("the web server went away before the answer was written");
	if (r.failed)
		log_errorx("out of memory while answering a request");
	char shown[204];
	printable_uri(uri ? uri : "", shown, sizeof(shown));
	log_debug("%s %s -> %d (%lld ms)", method ? method : "-", shown, r.status,
		  (long long)(now_ms() - start));
	response_free(&r);
}

int main(int argc, char **argv)
{
	struct frontend fe;
	char err[1024];

	int first = config_from_args(argc, argv, "ephemeral-fcgi",
				     "FastCGI frontend of Ephemeral: pages, API and metrics.\n"
				     "An extra argument HOST:PORT or /PATH makes it listen there.");
	const char *listen_on = first < argc ? argv[first++] : NULL;
	if (first != argc)
		fatalx("unexpected argument \"%s\" (settings are -c FILE and -o KEY=VALUE, then at "
		       "most one socket to listen on)",
		       argv[first]);

	/* A client that hangs up must not kill the process. A process the web server spawned must
	 * not outlive it by being orphaned (nothing else would stop it); one that listens itself
	 * belongs to whoever started it (a service manager may well be pid 1). */
	signal(SIGPIPE, SIG_IGN);
#ifdef __linux__
	if (listen_on == NULL) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			fatalx("the web server that started this process is gone");
	}
#endif

	memset(&fe, 0, sizeof(fe));
	fe.hub_endpoint = config_str("hub.endpoint");
	fe.hub_timeout_ms = (int)config_int("frontend.hub_timeout_ms");
	if (frontend_ws_init(&fe, config_str("frontend.ws_url"), err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (pages_load(&fe.pages, config_str("frontend.web_dir"), err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (frontend_open(&fe, (int)config_int("frontend.lookup_cache_ms")) < 0)
		fatalx("cannot use hub.endpoint \"%s\"", fe.hub_endpoint);

	if (FCGX_Init() != 0)
		fatalx("FCGX_Init failed");
	int listen_fd = 0;
	if (listen_on != NULL) {
		/* "HOST:PORT" is TCP (an empty HOST means every address), anything else a path. */
		listen_fd = FCGX_OpenSocket(listen_on, 128);
		if (listen_fd < 0)
			fatalx("cannot listen on \"%s\": %s", listen_on, strerror(errno));
	}
	if (listen_on == NULL && FCGX_IsCGI()) {
		fe.host = getenv("HTTP_HOST");
		fe.https = is_https(getenv("HTTPS"), getenv("REQUEST_SCHEME"));
		serve(&fe, getenv("REQUEST_METHOD"), getenv("REQUEST_URI"), sink_stdout, stdout);
	} else {
		FCGX_Request req;
		if (FCGX_InitRequest(&req, listen_fd, 0) != 0)
			fatalx("FCGX_InitRequest failed");
		log_info("serving FastCGI requests%s%s; hub at %s, templates from %s/templates",
			 listen_on ? " on " : "", listen_on ? listen_on : "", fe.hub_endpoint,
			 config_str("frontend.web_dir"));
		while (FCGX_Accept_r(&req) >= 0) {
			fe.host = FCGX_GetParam("HTTP_HOST", req.envp);
			fe.https = is_https(FCGX_GetParam("HTTPS", req.envp),
					    FCGX_GetParam("REQUEST_SCHEME", req.envp));
			serve(&fe, FCGX_GetParam("REQUEST_METHOD", req.envp),
			      FCGX_GetParam("REQUEST_URI", req.envp), sink_fcgx, req.out);
			FCGX_Finish_r(&req);
		}
		FCGX_Free(&req, 1);
	}
	frontend_close(&fe);
	pages_free(&fe.pages);
	frontend_ws_free(&fe);
	return 0;
}
