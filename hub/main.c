/*
 * main.c — the hub process: settings, sockets, the event loop and clean shutdown.
 *
 * One thread polls the ROUTER (gateways and frontends) and the REP (operators) sockets. Each turn
 * drains what is readable, runs due timers (heartbeats, gateway expiry, holder timeouts) and
 * flushes batched viewer counts.
 */
#include "config.h"
#include "hub.h"
#include "log.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t hub_stopping;

static void hub_on_signal(int sig)
{
	(void)sig;
	hub_stopping = 1;
}

static void *hub_bind(struct hub *hub, int type, const char *endpoint)
{
	void *sock = hubproto_socket(hub->ctx, type);
	if (sock == NULL || zmq_bind(sock, endpoint) < 0)
		fatalx("cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
	return sock;
}

int main(int argc, char **argv)
{
	struct hub hub;
	memset(&hub, 0, sizeof(hub));
	config_from_args(argc, argv, "ephemeral-hub",
			 "The Ephemeral hub: registry of who holds what, router of wants.");

	tune_allocator_for_blobs();
	hub.instance = random_u64();
	hub.started_ms = now_ms();
	hub.heartbeat_ms = (int)config_int("hub.heartbeat_ms");
	hub.expiry_ms = (int)config_int("hub.peer_expiry_ms");
	hub.holder_timeout_ms = (int)config_int("hub.holder_timeout_ms");
	registry_init(&hub);
	watch_init(&hub);

	hub.ctx = zmq_ctx_new();
	hub.router = hub_bind(&hub, ZMQ_ROUTER, config_str("hub.endpoint"));
	int one = 1;
	/* Report sends to vanished gateways instead of dropping them silently. */
	zmq_setsockopt(hub.router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	hub.operator= hub_bind(&hub, ZMQ_REP, config_str("hub.operator_endpoint"));

	on_stop_signals(hub_on_signal);

	log_info("hub listening on %s, operators on %s", config_str("hub.endpoint"),
		 config_str("hub.operator_endpoint"));

	int64_t next_beat = now_ms() + hub.heartbeat_ms;
	while (!hub_stopping) {
		int64_t now = now_ms();
		int64_t wake = next_beat;
		int64_t deadline = router_next_deadline(&hub);
		if (deadline >= 0 && deadline < wake)
			wake = deadline;
		zmq_pollitem_t items[] = {{hub.router, 0, ZMQ_POLLIN, 0},
					  {hub.operator, 0, ZMQ_POLLIN, 0}};
		long timeout = wake > now ? (long)(wake - now) : 0;
		if (zmq_poll(items, 2, timeout) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			fatalx("zmq_poll: %s", zmq_strerror(zmq_errno()));
		}
		/* Bounded batches keep operators and timers served under a flood. */
		for (int i = 0; i < 4096; i++) {
			struct hubmsg m;
			int rc = hubproto_recv(hub.router, &m, 1);
			if (rc == 0)
				break;
			if (rc < 0) {
				log_warnx("dropped a malformed message: %s", m.error);
				continue;
			}
			link_handle(&hub, &m);
			hubmsg_close(&m);
		}
		if (items[1].revents & ZMQ_POLLIN)
			operator_handle(&hub);
		now = now_ms();
		router_expire(&hub, now);
		if (now >= next_beat) {
			link_heartbeat(&hub, now);
			next_beat = now + hub.heartbeat_ms;
		}
		counts_flush(&hub);
	}

	log_info("hub stopping");
	watch_free(&hub);
	registry_free(&hub);
	zmq_close(hub.router);
	zmq_close(hub.operator);
	zmq_ctx_term(hub.ctx);
	config_reset();
	return 0;
}
