/*
 * hubfx.h — a `struct hub` for tests that drive the hub's modules directly (tests/unit/test_*.c
 * and tests/fuzz/): its tables set up as main.c does, with fixed timings, and optionally its
 * ROUTER bound to an inproc endpoint with ZMQ_ROUTER_MANDATORY, as main.c binds it.
 */
#ifndef EPH_HUBFX_H
#define EPH_HUBFX_H

#include "hub.h"

/* The tables of every module (registry, router, watch, files), instance, start and timings. No
 * sockets. */
void hubfx_init(struct hub *hub);
/* A ZeroMQ context and the ROUTER bound to endpoint. 0, or -1. */
int hubfx_bind(struct hub *hub, const char *endpoint);
/* Forgets every gateway (and so every connection and holding), frees the tables, and closes
 * the ROUTER and the context if hubfx_bind made them. */
void hubfx_free(struct hub *hub);

#endif
