/*
 * hubfx.c — a `struct hub` for tests (hubfx.h): the set-up of main.c without its settings file,
 * its keys or its loop, so that every test and fuzz target of the hub starts from the same state.
 */
#include "hubfx.h"

#include <string.h>

void hubfx_init(struct hub *hub)
{
	memset(hub, 0, sizeof(*hub));
	hub->instance = 0x4855421234ull;
	hub->started_ms = now_ms();
	hub->heartbeat_ms = 500;
	hub->expiry_ms = 2000;
	hub->holder_timeout_ms = 10000;
	registry_init(hub);
	router_init(hub);
	watch_init(hub);
	files_init(hub);
}

int hubfx_bind(struct hub *hub, const char *endpoint)
{
	int one = 1;
	hub->ctx = zmq_ctx_new();
	if (hub->ctx == NULL)
		return -1;
	hub->router = hubproto_socket(hub->ctx, ZMQ_ROUTER);
	if (hub->router == NULL ||
	    zmq_setsockopt(hub->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0 ||
	    zmq_bind(hub->router, endpoint) != 0)
		return -1;
	return 0;
}

void hubfx_free(struct hub *hub)
{
	watch_free(hub);
	router_free(hub);
	registry_free(hub);
	files_free(hub);
	if (hub->router)
		zmq_close(hub->router);
	if (hub->ctx)
		zmq_ctx_term(hub->ctx);
	hub->router = hub->ctx = NULL;
}
