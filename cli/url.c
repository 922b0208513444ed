/*
 * url.c — server addresses and links.
 *
 * Owns the one rule that ties them together: a link is the server's base URL followed by the
 * 64-digit address, and the WebSocket is the base URL's path followed by "ws", with ws:// for
 * http:// and wss:// for https://. A server behind a path prefix (http://host/eph/) therefore
 * works the same way. Only the parsing lives here; nothing connects. Called by main.c (options)
 * and by the commands (links they print, endpoints they name in messages).
 */
#include "cli.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reasons quote at most this much of what a person gave, so that a long argument never pushes
 * the reason itself out of the message. */
#define URL_QUOTE_MAX 96

/* s, or its first URL_QUOTE_MAX bytes (never half a UTF-8 character) and "...". */
static const char *url_quote(const char *s, char out[URL_QUOTE_MAX + 4])
{
	size_t n = strnlen(s, URL_QUOTE_MAX + 1);
	if (n <= URL_QUOTE_MAX)
		return s;
	n = URL_QUOTE_MAX;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(out, s, n);
	memcpy(out + n, "...", 4);
	return out;
}

static int url_scheme(const char **p, int *tls)
{
	static const struct {
		const char *prefix;
		int tls;
	} schemes[] = {{"http://", 0}, {"https://", 1}, {"ws://", 0}, {"wss://", 1}};
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);
		if (strncasecmp(*p, schemes[i].prefix, n) == 0) {
			*p += n;
			*tls = schemes[i].tls;
			return 0;
		}
	}
	return strstr(*p, "://") ? -1 : 0; /* no scheme at all: http:// */
}

/* What a person pasted, without the spaces around it: its start, and its length in *len. */
static const char *url_trim(const char *s, size_t *len)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	*len = n;
	return s;
}

/* url_parse_server on the first n characters of p (a link's part before its hash, or a server
 * address without the spaces after it). */
static int url_parse_prefix(const char *p, size_t n, struct url_server *server, char *err,
			    size_t errlen)
{
	char *prefix = strndup(p, n);
	if (prefix == NULL)
		return error_set(err, errlen, "out of memory");
	int rc = url_parse_server(prefix, server, err, errlen);
	free(prefix);
	return rc;
}

int url_parse_server(const char *url, struct url_server *out, char *err, size_t errlen)
{
	size_t len;
	const char *p = url_trim(url, &len);
	if (p[len] != '\0') /* as pasted, with a newline or spaces after it */
		return url_parse_prefix(p, len, out, err, errlen);
	char qbuf[URL_QUOTE_MAX + 4];
	const char *q = url_quote(url, qbuf);
	memset(out, 0, sizeof(*out));
	if (url_scheme(&p, &out->tls) < 0)
		return error_set(err, errlen, "%s: only http:// and https:// servers are known", q);
	size_t alen = strcspn(p, "/?#");
	if (alen == 0)
		return error_set(err, errlen, "%s: no host name", q);
	if (alen >= sizeof(out->authority))
		return error_set(err, errlen, "%s: the host name is too long", q);
	memcpy(out->authority, p, alen);
	out->authority[alen] = '\0';
	if (strchr(out->authority, '@'))
		return error_set(err, errlen,
				 "%s: user names in server addresses are not supported", q);
	/* It goes into the Host header and every link printed: no spaces, no control characters. */
	for (const char *c = out->authority; *c; c++)
		if (*c <= ' ' || *c >= 0x7f)
			return error_set(err, errlen,
					 "%s: the host name has a space or a character other than "
					 "visible ASCII",
					 q);

	const char *host = out->authority, *colon;
	size_t hlen;
	if (host[0] == '[') {
		const char *close = strchr(host, ']');
		if (close == NULL || close == host + 1)
			return error_set(err, errlen, "%s: a bracketed IPv6 address is not closed",
					 q);
		host++;
		hlen = (size_t)(close - host);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] != '\0' && colon == NULL)
			return error_set(err, errlen, "%s: unexpected text after the address", q);
	} else {
		colon = strchr(host, ':');
		hlen = colon ? (size_t)(colon - host) : strlen(host);
	}
	if (hlen == 0 || hlen >= sizeof(out->host))
		return error_set(err, errlen, "%s: no host name", q);
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	out->port = out->tls ? 443 : 80;
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (!isdigit((unsigned char)colon[1]) || *end != '\0' || port < 1 || port > 65535)
			return error_set(err, errlen,
					 "%s: the port is not a number from 1 to 65535", q);
		out->port = (int)port;
	}

	/* The prefix: the path up to and including its last '/', without query or fragment. */
	const char *path = p + alen;
	size_t plen = strcspn(path, "?#");
	while (plen && path[plen - 1] != '/')
		plen--;
	if (plen == 0) {
		path = "/";
		plen = 1;
	}
	snprintf(out->origin, sizeof(out->origin), "%s://%s", out->tls ? "https" : "http",
		 out->authority);
	/* Refused rather than cut short: a link printed from a shortened base names another. */
	if (plen + 3 > sizeof(out->ws_path) || strlen(out->origin) + plen >= sizeof(out->base))
		return error_set(err, errlen, "%s: the path is too long", q);
	snprintf(out->base, sizeof(out->base), "%s%.*s", out->origin, (int)plen, path);
	snprintf(out->ws_path, sizeof(out->ws_path), "%.*sws", (int)plen, path);
	return 0;
}

int url_parse_link(const char *link, uint8_t hash[HASH_LEN], struct url_server *server,
		   int *has_server, char *err, size_t errlen)
{
	char hex[HASH_HEX_LEN + 1], q[URL_QUOTE_MAX + 4];
	size_t len;
	const char *p = url_trim(link, &len);
	*has_server = 0;

	const char *seg = p;
	size_t seglen = len;
	if (!hash_hex_valid_anycase(p, len)) {
		/* A link: the address is the last path segment (a trailing '/' is forgiven). */
		size_t end = strcspn(p, "?#");
		if (end > len)
			end = len;
		if (end && p[end - 1] == '/')
			end--;
		size_t start = end;
		while (start && p[start - 1] != '/')
			start--;
		seg = p + start;
		seglen = end - start;
		if (start == 0 || !hash_hex_valid_anycase(seg, seglen))
			return error_set(err, errlen,
					 "\"%s\" is neither a link (http://host/<hash>) nor a "
					 "64-digit address",
					 url_quote(link, q));
		if (url_parse_prefix(p, start, server, err, errlen) < 0)
			return -1;
		*has_server = 1;
	}
	hash_hex_lower(seg, hex);
	return hash_from_hex(hex, HASH_HEX_LEN, hash);
}

int url_parse_sha256(const char *arg, uint8_t hash[HASH_LEN], struct url_server *server,
		     int *has_server, char *err, size_t errlen)
{
	static const char scheme[] = "sha256:", seg[] = "/sha256/";
	char hex[HASH_HEX_LEN + 1], q[URL_QUOTE_MAX + 4];
	size_t len;
	const char *p = url_trim(arg, &len);
	*has_server = 0;
	size_t end = strcspn(p, "?#");
	if (end > len)
		end = len;
	if (end && p[end - 1] == '/')
		end--;
	const char *h;
	if (strncasecmp(p, scheme, sizeof(scheme) - 1) == 0) {
		h = p + sizeof(scheme) - 1;
	} else {
		/* A link: .../sha256/<hash>, the server being what comes before /sha256/. */
		if (end < HASH_HEX_LEN + sizeof(seg) - 1 ||
		    strncasecmp(p + end - HASH_HEX_LEN - (sizeof(seg) - 1), seg, sizeof(seg) - 1) !=
			0)
			return 0;
		h = p + end - HASH_HEX_LEN;
		size_t start = (size_t)(h - p) - (sizeof(seg) - 1) + 1; /* keep the '/' */
		if (url_parse_prefix(p, start, server, err, errlen) < 0)
			return -1;
		*has_server = 1;
	}
	if ((size_t)(p + end - h) != HASH_HEX_LEN || !hash_hex_valid_anycase(h, HASH_HEX_LEN))
		return error_set(err, errlen, "\"%s\": a SHA-256 is 64 hex digits",
				 url_quote(arg, q));
	for (size_t i = 0; i < HASH_HEX_LEN; i++)
		hex[i] = (char)tolower((unsigned char)h[i]);
	hex[HASH_HEX_LEN] = '\0';
	return hash_from_hex(hex, HASH_HEX_LEN, hash) < 0 ? -1 : 1;
}

void url_link(const struct url_server *s, const uint8_t hash[HASH_LEN], char *out, size_t len)
{
	char hex[HASH_HEX_LEN + 1];
	hash_to_hex(hash, hex);
	snprintf(out, len, "%s%s", s->base, hex);
}

void url_ws(const struct url_server *s, char *out, size_t len)
{
	snprintf(out, len, "%s://%s%s", s->tls ? "wss" : "ws", s->authority, s->ws_path);
}
