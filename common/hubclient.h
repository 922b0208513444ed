/*
 * hubclient.h — a synchronous request/reply client of the hub, for the FastCGI frontend.
 *
 * Owns one DEALER socket to the hub's ROUTER endpoint. Each call sends one request with a fresh
 * request id and waits at most timeout_ms for the reply with that id; replies to earlier,
 * timed-out requests are read and thrown away. Never blocks longer than the timeout.
 */
#ifndef EPH_HUBCLIENT_H
#define EPH_HUBCLIENT_H

#include <stdint.h>

#include "util.h"

struct hubclient;

struct hubclient *hubclient_open(const char *endpoint);
void hubclient_destroy(struct hubclient **c);

/* 0 with *viewers set; -1 when the hub did not answer in time. */
int hubclient_lookup(struct hubclient *c, const uint8_t hash[HASH_LEN], uint32_t *viewers,
		     int timeout_ms);
/* 0 with *json set to a malloc'd, NUL-terminated stats object (the operator `stats` reply);
 * -1 when the hub did not answer in time. */
int hubclient_stats(struct hubclient *c, char **json, int timeout_ms);

#endif
