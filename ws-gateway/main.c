/*
 * main.c — the gateway process: settings, the lws context, the hub link, and a clean stop.
 *
 * protocols[0] is ephemeral.v1, so a client that offers no subprotocol gets it too; the second
 * entry carries the hub socket's descriptor in the same loop. The loop is libev's (epoll), given
 * to lws as a foreign loop: lws's own poll() loop scans every descriptor on every turn, which
 * costs a gateway holding thousands of idle connections more than the work itself
 * (docs/BENCHMARKS.md, "Many connections"). SIGINT and SIGTERM are libev signal watchers that
 * end the loop; the context is destroyed after it.
 */
#include "config.h"
#include "gateway.h"
#include "log.h"

#include <ev.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static struct gateway *gateway_running;

static void gateway_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	if (gateway_running)
		gateway_running->stopping = 1;
	ev_break(loop, EVBREAK_ALL);
}

static void gateway_lws_log(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		log_warnx("lws: %.*s", (int)n, line);
	else
		log_debug("lws: %.*s", (int)n, line);
}

int main(int argc, char **argv)
{
	static struct gateway gw;
	config_from_args(argc, argv, "ephemeral-gateway",
			 "An Ephemeral WebSocket gateway: browsers and CLIs connect here.");

	tune_allocator_for_blobs();
	if (framewatch_init() < 0)
		fatalx("out of memory");
	gw.instance = random_u64();
	gw.max_blob = (size_t)config_int("gateway.max_blob");
	gw.max_lies = (int)config_int("gateway.max_lies");
	gw.want_timeout_ms = (int)config_int("gateway.want_timeout_ms");
	gw.max_holds = (int)config_int("gateway.max_holds");
	gw.max_wants = (int)config_int("gateway.max_wants");
	gw.max_violations = (int)config_int("gateway.max_violations");
	gw.max_conns_per_addr = (int)config_int("gateway.max_conns_per_addr");
	gw.max_conns = (int)config_int("gateway.max_conns");
	gw.hub_queue = (int)config_int("gateway.hub_queue");
	gw.msg_rate = config_int("gateway.msg_rate");
	gw.msg_burst = config_int("gateway.msg_burst");
	gw.byte_rate = config_int("gateway.byte_rate");
	/* A whole largest message always fits in the byte budget at once. */
	gw.byte_burst = gw.byte_rate / 4 > 2 * (long long)(HASH_LEN + gw.max_blob)
			    ? gw.byte_rate / 4
			    : 2 * (long long)(HASH_LEN + gw.max_blob);
	limits_init(&gw, config_str("gateway.trusted_proxies"),
		    config_str("gateway.allowed_origins"));
	gw.heartbeat_ms = (int)config_int("hub.heartbeat_ms");
	gw.expiry_ms = (int)config_int("hub.peer_expiry_ms");
	int port = (int)config_int("gateway.port");
	if (*config_str("gateway.name"))
		snprintf(gw.name, sizeof(gw.name), "%s", config_str("gateway.name"));
	else
		snprintf(gw.name, sizeof(gw.name), "gw-%d", port);
	snprintf(gw.endpoint, sizeof(gw.endpoint), "%s", config_str("hub.endpoint"));
	snprintf(gw.peer_bind, sizeof(gw.peer_bind), "%s", config_str("gateway.peer_bind"));
	snprintf(gw.peer_endpoint, sizeof(gw.peer_endpoint), "%s",
		 config_str("gateway.peer_endpoint"));
	map_init(&gw.sessions, offsetof(struct session, id), sizeof(uint64_t));
	map_init(&gw.interests, offsetof(struct interest, key),
		 sizeof(((struct interest *)0)->key));
	map_init(&gw.hashsubs, offsetof(struct hashsub, hash), HASH_LEN);
	gw.tx_scratch = malloc(LWS_PRE + GW_TX_CHUNK);
	if (gw.tx_scratch == NULL)
		fatalx("out of memory");

	static struct lws_protocols protocols[] = {
	    {GW_PROTOCOL, session_callback, sizeof(struct session), GW_RX_CHUNK, 0, NULL,
	     GW_TX_CHUNK},
	    {GW_HUB_LINK_PROTOCOL, hub_link_callback, 0, 0, 0, NULL, 0},
	    {GW_PEER_PROTOCOL, peer_callback, 0, 0, 0, NULL, 0},
	    {NULL, NULL, 0, 0, 0, NULL, 0},
	};
	enum log_level level = LOG_LEVEL_INFO;
	log_level_parse(config_str("log.level"), &level);
	lws_set_log_level(level == LOG_LEVEL_DEBUG ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO
						   : LLL_ERR | LLL_WARN,
			  gateway_lws_log);

	/* Ping quiet connections so that proxies keep them open and dead peers are noticed. */
	static const lws_retry_bo_t idle_policy = {.secs_since_valid_ping = 30,
						   .secs_since_valid_hangup = 75};
	struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
	if (loop == NULL)
		loop = ev_default_loop(0);
	if (loop == NULL)
		fatalx("no event loop (libev)");
	void *foreign_loops[] = {loop};
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = config_str("gateway.listen");
	info.protocols = protocols;
	info.user = &gw;
	info.pt_serv_buf_size = 64 * 1024;
	info.retry_and_idle_policy = &idle_policy;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6 |
		       LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = foreign_loops;
	gw.ctx = lws_create_context(&info);
	if (gw.ctx == NULL)
		fatalx("cannot listen on %s:%d", info.iface, port);
	gw.vhost = lws_get_vhost_by_name(gw.ctx, "default");
	if (gw.vhost == NULL)
		fatalx("no default vhost");

	gw.zctx = zmq_ctx_new();
	if (peer_open(&gw) < 0)
		fatalx("cannot open the peer endpoint %s", gw.peer_bind);
	if (hub_link_open(&gw) < 0)
		fatalx("cannot reach the hub at %s", gw.endpoint);
	hub_link_hello(&gw);
	hub_link_start_timers(&gw);

	gateway_running = &gw;
	ev_signal sigint, sigterm;
	ev_signal_init(&sigint, gateway_on_signal, SIGINT);
	ev_signal_init(&sigterm, gateway_on_signal, SIGTERM);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	signal(SIGPIPE, SIG_IGN);

	log_info("gateway %s listening on ws://%s:%d/ (hub %s)", gw.name, info.iface, port,
		 gw.endpoint);
	ev_run(loop, 0);

	log_info("gateway %s stopping", gw.name);
	ev_signal_stop(loop, &sigint);
	ev_signal_stop(loop, &sigterm);
	lws_context_destroy(gw.ctx);
	hub_link_close(&gw);
	peer_close(&gw);
	zmq_ctx_term(gw.zctx);
	map_free(&gw.sessions);
	map_free(&gw.interests);
	map_free(&gw.hashsubs);
	limits_free(&gw);
	framewatch_free();
	free(gw.tx_scratch);
	ev_loop_destroy(loop);
	config_reset();
	return 0;
}
