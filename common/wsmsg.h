/*
 * wsmsg.h — the ephemeral.v1 WebSocket text messages (PROTOCOL.md "WebSocket"), both directions.
 *
 * The one place that parses what clients send (have, drop, want, decline) and builds what the
 * server sends (welcome, request, count, error); the terminal client uses the same functions for
 * the other direction (and `file`, which names a manifest in `hash` and its file in `sha256`). JSON
 * goes through jansson only. A parse error carries the protocol's error code (bad_request or
 * too_large), a message for a person, and the hash when one applies.
 */
#ifndef EPH_WSMSG_H
#define EPH_WSMSG_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define WSMSG_MAX_TEXT	 (64 * 1024)
#define WSMSG_MAX_HASHES 512

enum wsmsg_type {
	WSMSG_HAVE,
	WSMSG_DROP,
	WSMSG_WANT,
	WSMSG_DECLINE,
	WSMSG_FILE,
	WSMSG_WELCOME,
	WSMSG_REQUEST,
	WSMSG_COUNT,
	WSMSG_ERROR,
};

/* What a welcome names: the blob limit, and the budgets of this connection so that a client can
 * pace itself (PROTOCOL.md): message tokens per second and at most at once (a message costs 1
 * plus 1 per WSMSG_HASHES_PER_TOKEN hashes it lists), wants open and hashes held at once. A
 * budget a server does not name parses as 0. */
struct wsmsg_welcome {
	uint64_t max_blob;
	uint64_t msg_rate, msg_burst;
	uint64_t max_wants, max_holds;
};

#define WSMSG_HASHES_PER_TOKEN 8

struct wsmsg {
	enum wsmsg_type type;
	uint8_t hashes[WSMSG_MAX_HASHES][HASH_LEN]; /* have, drop */
	size_t nhashes;
	uint8_t hash[HASH_LEN];	  /* want, decline, request, count, error (if has_hash); file: the
				   * manifest */
	uint8_t sha256[HASH_LEN]; /* file: the whole file's plain SHA-256 */
	int has_hash;
	uint64_t number; /* count: viewers; welcome: max_blob */
	struct wsmsg_welcome welcome;
	char code[32]; /* error */
	char message[256];
};

struct wsmsg_error {
	const char *code; /* "bad_request" or "too_large" */
	char message[160];
	uint8_t hash[HASH_LEN];
	int has_hash;
};

/* Parses a client's text message. 0 on success, -1 with *err filled. */
int wsmsg_parse_client(const char *text, size_t len, struct wsmsg *m, struct wsmsg_error *err);
/* Parses a server's text message (for clients). 0 on success, -1 with *err filled. */
int wsmsg_parse_server(const char *text, size_t len, struct wsmsg *m, struct wsmsg_error *err);

/* Builders: each returns a malloc'd NUL-terminated JSON text, or NULL on out of memory. */
char *wsmsg_welcome(const struct wsmsg_welcome *w);
char *wsmsg_request(const uint8_t hash[HASH_LEN]);
char *wsmsg_count(const uint8_t hash[HASH_LEN], uint32_t viewers);
char *wsmsg_error(const char *code, const uint8_t *hash, const char *message);
/* Client side: have/drop with n hashes, want/decline with one. */
char *wsmsg_client_hashes(enum wsmsg_type type, const uint8_t (*hashes)[HASH_LEN], size_t n);
char *wsmsg_client_hash(enum wsmsg_type type, const uint8_t hash[HASH_LEN]);
/* Client side: file (the manifest held, the whole file's plain SHA-256 it declares). */
char *wsmsg_client_file(const uint8_t sha256[HASH_LEN], const uint8_t manifest[HASH_LEN]);

#endif
