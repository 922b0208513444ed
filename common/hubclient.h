/*
 * hubclient.h — a synchronous request/reply client of the hub, for the FastCGI frontend.
 *
 * Owns one DEALER socket to the hub's ROUTER endpoint. Each call sends one request with a fresh
 * request id and waits at most timeout_ms for the reply with that id; replies to earlier,
 * timed-out requests are read and thrown away. Never blocks longer than the timeout. A lookup
 * may ask the hub to tell of changes to that hash for a while (the hub's watch.c): those COUNT
 * messages go to the callback set with hubclient_on_count(), whenever they are read — during a
 * call, or by hubclient_poll().
 */
#ifndef EPH_HUBCLIENT_H
#define EPH_HUBCLIENT_H

#include <stdint.h>

#include "util.h"

struct hubclient;

struct hubclient *hubclient_open(const char *endpoint);
void hubclient_destroy(struct hubclient **c);

/* 0 with *viewers set; -1 when the hub did not answer in time. With watch_ms > 0 the hub also
 * sends a COUNT whenever the hash's viewers change during the next watch_ms. */
int hubclient_lookup(struct hubclient *c, const uint8_t hash[HASH_LEN], uint32_t *viewers,
		     uint32_t watch_ms, int timeout_ms);
/* Where COUNT entries go (hash, viewers), with arg. */
typedef void (*hubclient_count_fn)(void *arg, const uint8_t hash[HASH_LEN], uint32_t viewers);
void hubclient_on_count(struct hubclient *c, hubclient_count_fn fn, void *arg);
/* Reads, without waiting, whatever the hub sent unasked (COUNTs; late replies are thrown away).
 * Returns how many messages were read. */
int hubclient_poll(struct hubclient *c);
/* The manifests of the file whose plain SHA-256 is sha256: 0 with *viewers (of the hash itself,
 * as a blob) and up to HUBPROTO_MAX_MANIFESTS (manifest, viewers u32 LE) entries, most viewers
 * first, in out (*n of them); -1 when the hub did not answer in time. */
int hubclient_files(struct hubclient *c, const uint8_t sha256[HASH_LEN], uint32_t *viewers,
		    uint8_t (*out)[HASH_LEN + 4], size_t *n, int timeout_ms);
/* 0 with *json set to a malloc'd, NUL-terminated stats object (the operator `stats` reply);
 * -1 when the hub did not answer in time. */
int hubclient_stats(struct hubclient *c, char **json, int timeout_ms);

#endif
