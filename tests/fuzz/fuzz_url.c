/*
 * fuzz_url.c — libFuzzer target for what a person pastes into the terminal client (cli/url.c):
 * --url servers, links and sha256: names.
 *
 * The input, up to its first NUL (an argument cannot hold one), goes to url_parse_server,
 * url_parse_link and url_parse_sha256. A refusal must be a reason that is whole in 512 bytes,
 * however long the input. A server accepted must be whole: a host, a port from 1 to 65535, an
 * origin that is the scheme and the authority, a base URL that starts with the origin and ends with
 * '/', a WebSocket path that is the base's path and "ws"; and its base must parse back as the same
 * server. A link or sha256 name accepted must give back its address through what the client prints:
 * the link url_link writes (or "sha256:" and the hex) parses again into the same address and
 * server.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_ARG 4096

/* In the 512 bytes main.c gives it, a reason is whole: not cut off by a long argument. */
static void check_err(const char *err, size_t len)
{
	const char *end = memchr(err, '\0', len);
	if (end == NULL || err[0] == '\0' || (size_t)(end - err) + 1 >= len)
		abort();
}

static int same_server(const struct url_server *a, const struct url_server *b)
{
	return a->tls == b->tls && a->port == b->port && strcmp(a->host, b->host) == 0 &&
	       strcmp(a->authority, b->authority) == 0 && strcmp(a->origin, b->origin) == 0 &&
	       strcmp(a->base, b->base) == 0 && strcmp(a->ws_path, b->ws_path) == 0;
}

static void check_server(const struct url_server *s)
{
	char err[512];
	struct url_server back;
	size_t olen = strlen(s->origin), blen = strlen(s->base);
	const char *scheme = s->tls ? "https://" : "http://";
	if (s->host[0] == '\0' || s->port < 1 || s->port > 65535 || strchr(s->authority, '@'))
		abort();
	/* what goes into the Host header and the links printed: visible ASCII only */
	for (const char *c = s->authority; *c; c++)
		if (*c <= ' ' || *c >= 0x7f)
			abort();
	if (strncmp(s->origin, scheme, strlen(scheme)) != 0 ||
	    strcmp(s->origin + strlen(scheme), s->authority) != 0)
		abort();
	if (blen <= olen || strncmp(s->base, s->origin, olen) != 0 || s->base[olen] != '/' ||
	    s->base[blen - 1] != '/')
		abort();
	if (strlen(s->ws_path) != blen - olen + 2 ||
	    strncmp(s->ws_path, s->base + olen, blen - olen) != 0 ||
	    strcmp(s->ws_path + blen - olen, "ws") != 0)
		abort();
	if (url_parse_server(s->base, &back, err, sizeof(err)) != 0 || !same_server(s, &back))
		abort();
}

static void check_link(const uint8_t hash[HASH_LEN], const struct url_server *server,
		       int has_server)
{
	char link[2048], err[512];
	struct url_server s, back;
	uint8_t again[HASH_LEN];
	int has;
	if (!has_server && url_parse_server(CLI_DEFAULT_URL, &s, err, sizeof(err)) != 0)
		abort();
	url_link(has_server ? server : &s, hash, link, sizeof(link));
	if (url_parse_link(link, again, &back, &has, err, sizeof(err)) != 0 || !has ||
	    memcmp(again, hash, HASH_LEN) != 0 || !same_server(has_server ? server : &s, &back))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char arg[FUZZ_MAX_ARG + 1], err[512], name[HASH_HEX_LEN + 8];
	struct url_server s;
	uint8_t hash[HASH_LEN], again[HASH_LEN];
	int has;
	const uint8_t *nul = memchr(data, '\0', size);
	size_t len = nul ? (size_t)(nul - data) : size;
	if (len > FUZZ_MAX_ARG)
		return 0;
	memcpy(arg, data, len);
	arg[len] = '\0';

	memset(err, 'x', sizeof(err));
	if (url_parse_server(arg, &s, err, sizeof(err)) == 0)
		check_server(&s);
	else
		check_err(err, sizeof(err));

	memset(err, 'x', sizeof(err));
	if (url_parse_link(arg, hash, &s, &has, err, sizeof(err)) == 0) {
		if (has)
			check_server(&s);
		check_link(hash, &s, has);
	} else {
		check_err(err, sizeof(err));
	}

	memset(err, 'x', sizeof(err));
	int rc = url_parse_sha256(arg, hash, &s, &has, err, sizeof(err));
	if (rc == 1) {
		if (has)
			check_server(&s);
		char hex[HASH_HEX_LEN + 1];
		hash_to_hex(hash, hex);
		snprintf(name, sizeof(name), "sha256:%s", hex);
		if (url_parse_sha256(name, again, &s, &has, err, sizeof(err)) != 1 || has ||
		    memcmp(again, hash, HASH_LEN) != 0)
			abort();
	} else if (rc < 0) {
		check_err(err, sizeof(err));
	} else if (rc != 0 || has) {
		abort();
	}
	return 0;
}
