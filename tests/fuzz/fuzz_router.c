/*
 * fuzz_router.c — libFuzzer target for the frontend's URL router (frontend-fcgi/router.h).
 *
 * Input: METHOD, a NUL byte, REQUEST_URI; an input without a NUL is a URI, tried with GET, HEAD
 * and no method. Both become C strings, as the FastCGI environment gives them. Whatever the
 * bytes, the answer is a known route; only GET and HEAD get past the method check; a hash is set
 * exactly for the routes that name one, and it is the path's own hash, lowercased.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void check(const char *method, const char *uri)
{
	struct route_match m;
	router_match(method, uri, &m);
	if ((int)m.route < 0 || m.route >= ROUTE_COUNT)
		abort();
	if (strcmp(router_route_name(m.route), "unknown") == 0)
		abort();
	int get = method && strcmp(method, "GET") == 0;
	int head = method && strcmp(method, "HEAD") == 0;
	if ((m.route == ROUTE_BAD_METHOD) != !(get || head))
		abort();
	if (m.head != (head && m.route != ROUTE_BAD_METHOD))
		abort();

	size_t hlen = strnlen(m.hash, sizeof(m.hash));
	if (hlen == sizeof(m.hash))
		abort();
	int names_hash = m.route == ROUTE_PAGE || m.route == ROUTE_PAGE_REDIRECT ||
			 m.route == ROUTE_API_PAGE || m.route == ROUTE_SHA256 ||
			 m.route == ROUTE_SHA256_REDIRECT || m.route == ROUTE_API_FILES;
	if (names_hash != (hlen == HASH_HEX_LEN))
		abort();
	if (!names_hash && hlen != 0)
		abort();
	if (names_hash) {
		if (!is_lower_hex(m.hash, HASH_HEX_LEN))
			abort();
		/* the path is the prefix and then the hash, in any case */
		const char *q = strchr(uri, '?');
		size_t plen = q ? (size_t)(q - uri) : strlen(uri);
		const char *want = m.route == ROUTE_API_PAGE	? ROUTER_API_PAGES
				   : m.route == ROUTE_API_FILES ? ROUTER_API_FILES
				   : m.route == ROUTE_SHA256 || m.route == ROUTE_SHA256_REDIRECT
				       ? ROUTER_SHA256
				       : "/";
		size_t prefix = strlen(want);
		if (plen != prefix + HASH_HEX_LEN)
			abort();
		if (memcmp(uri, want, prefix) != 0)
			abort();
		const char *p = uri + prefix;
		int upper = 0;
		for (size_t i = 0; i < HASH_HEX_LEN; i++) {
			char c = p[i];
			if (c >= 'A' && c <= 'F') {
				c = (char)(c - 'A' + 'a');
				upper = 1;
			}
			if (c != m.hash[i])
				abort();
		}
		/* only a page or /sha256/ address may differ in case, and then it is a redirect */
		if (upper != (m.route == ROUTE_PAGE_REDIRECT || m.route == ROUTE_SHA256_REDIRECT))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* "GET\0/path": method and URI; without a NUL the whole input is a URI */
	const char *nul = memchr(buf, '\0', size);
	if (nul) {
		check(buf, nul + 1);
	} else {
		check("GET", buf);
		check("HEAD", buf);
		check(NULL, buf);
	}
	check(buf, NULL);
	free(buf);
	return 0;
}
