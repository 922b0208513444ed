/*
 * main.c — the hub process: settings, sockets, the event loop and clean shutdown.
 *
 * One thread polls the ROUTER (gateways and frontends) and the REP (operators) sockets, and with
 * CurveZMQ the ZAP handler that admits their keys. Each turn drains what is readable, runs due
 * timers (heartbeats, gateway expiry, holder timeouts) and flushes batched viewer counts. A hub
 * without keys refuses at start to bind anywhere but loopback.
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

/* With hub.secret_key, a CurveZMQ server whose ZAP handler lets in the keys of
 * hub.allowed_keys; without, a plain socket that only this machine may reach. */
static void *hub_bind(struct hub *hub, int type, const char *setting, const char *domain)
{
	const char *endpoint = config_str(setting);
	char err[512];
	if (hub->zap.sock == NULL && !zsec_endpoint_is_loopback(endpoint))
		fatalx("%s = %s is reachable from other machines, and the hub has no keys: set "
		       "hub.secret_key and hub.allowed_keys (ephemeral-ctl keygen makes keys; see "
		       "docs/OPERATIONS.md), or bind to 127.0.0.1",
		       setting, endpoint);
	void *sock = hubproto_socket(hub->ctx, type);
	if (sock == NULL)
		fatalx("cannot make a socket for %s: %s", endpoint, zmq_strerror(zmq_errno()));
	if (hub->zap.sock != NULL &&
	    zsec_server_socket(sock, &hub->keys, &hub->zap, domain, err, sizeof(err)) < 0)
		fatalx("%s: %s", setting, err);
	if (zmq_bind(sock, endpoint) < 0)
		fatalx("cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
	return sock;
}

/* Loads the hub's key pair and opens the ZAP handler, before any socket binds. */
static void hub_secure(struct hub *hub)
{
	const char *secret = config_str("hub.secret_key");
	char err[512];
	if (*secret == '\0')
		return;
	if (!zsec_available())
		fatalx("hub.secret_key is set, but this libzmq has no CURVE support");
	if (zsec_keys_load(secret, 1, &hub->keys, err, sizeof(err)) < 0)
		fatalx("hub.secret_key: %s", err);
	if (zsec_zap_open(&hub->zap, hub->ctx, config_str("hub.allowed_keys"), err, sizeof(err)) <
	    0)
		fatalx("hub.allowed_keys: %s", err);
	log_info("CurveZMQ on: the hub's public key is %s", hub->keys.public_z85);
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
	router_init(&hub);
	watch_init(&hub);
	files_init(&hub);

	hub.ctx = zmq_ctx_new();
	hub_secure(&hub);
	hub.router = hub_bind(&hub, ZMQ_ROUTER, "hub.endpoint", "hub");
	int one = 1;
	/* Report sends to vanished gateways instead of dropping them silently. */
	zmq_setsockopt(hub.router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	hub.operator= hub_bind(&hub, ZMQ_REP, "hub.operator_endpoint", "operator");

	on_stop_signals(hub_on_signal);

	log_info("hub listening on %s, operators on %s", config_str("hub.endpoint"),
		 config_str("hub.operator_endpoint"));

	int64_t next_beat = now_ms() + hub.heartbeat_ms, settle = -1;
	while (!hub_stopping) {
		int64_t now = now_ms();
		int64_t wake = next_beat;
		int64_t deadline = router_next_deadline(&hub);
		if (deadline >= 0 && deadline < wake)
			wake = deadline;
		if (settle >= 0 && settle < wake)
			wake = settle;
		zmq_pollitem_t items[] = {{hub.router, 0, ZMQ_POLLIN, 0},
					  {hub.operator, 0, ZMQ_POLLIN, 0},
					  {hub.zap.sock, 0, ZMQ_POLLIN, 0}};
		long timeout = wake > now ? (long)(wake - now) : 0;
		if (zmq_poll(items, hub.zap.sock ? 3 : 2, timeout) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			fatalx("zmq_poll: %s", zmq_strerror(zmq_errno()));
		}
		/* Bounded batches keep operators and timers served under a flood. */
		int behind = 1;
		for (int i = 0; i < HUBPROTO_DRAIN_BUDGET; i++) {
			struct hubmsg m;
			int rc = hubproto_recv(hub.router, &m, 1);
			if (rc == 0) {
				behind = 0;
				break;
			}
			if (rc < 0) {
				log_warnx("dropped a malformed message: %s", m.error);
				continue;
			}
			link_handle(&hub, &m);
			hubmsg_close(&m);
		}
		if (items[1].revents & ZMQ_POLLIN)
			operator_handle(&hub);
		if (hub.zap.sock != NULL)
			zsec_zap_drain(&hub.zap); /* handshakes wait for these answers */
		now = now_ms();
		router_expire(&hub, now);
		if (now >= next_beat) {
			link_heartbeat(&hub, now, behind);
			next_beat = now + hub.heartbeat_ms;
		}
		link_flush(&hub);
		counts_flush(&hub);
		settle = link_settle(&hub, now_ms());
	}

	log_info("hub stopping");
	watch_free(&hub);
	router_free(&hub);
	registry_free(&hub);
	files_free(&hub);
	zmq_close(hub.router);
	zmq_close(hub.operator);
	if (hub.zap.sock != NULL)
		zsec_zap_close(&hub.zap);
	zmq_ctx_term(hub.ctx);
	config_reset();
	return 0;
}
