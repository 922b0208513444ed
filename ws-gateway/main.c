/*
 * main.c — the gateway process: settings, the lws context, the hub link, and a clean stop.
 *
 * protocols[0] is ephemeral.v1, so a client that offers no subprotocol gets it too; the second
 * entry carries the hub socket's descriptor in the same loop. The loop is libev's (epoll), given
 * to lws as a foreign loop: lws's own poll() loop scans every descriptor on every turn, which
 * costs a gateway holding thousands of idle connections more than the work itself
 * (docs/BENCHMARKS.md, "Many connections"). SIGINT and SIGTERM are libev signal watchers that
 * end the loop; the context is destroyed after it.
 *
 * Two vhosts: "default" listens on gateway.port, where the web server proxies /ws; with
 * gateway.direct_port set, "direct" serves the public port that every gateway of the site
 * shares. lws (4.1) sets SO_REUSEPORT only when it runs several service threads, so that socket
 * is ours: bound with SO_REUSEPORT (the kernel spreads new connections over the gateways),
 * accepted by a libev watcher and handed to lws (lws_adopt_socket_vhost), which does TLS there
 * with OpenSSL when gateway.tls_cert is set. Both vhosts run the same protocol, Origin checks
 * and limits.
 */
#include "config.h"
#include "gateway.h"
#include "log.h"

#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Accepts more than this many connections in one turn only after the others had theirs. */
#define DIRECT_ACCEPTS_PER_TURN 64
/* Out of descriptors: stop accepting for this long rather than spin on a ready socket. */
#define DIRECT_PAUSE_S 0.1

/* The public port's socket, outside lws (see the top). */
struct direct_listener {
	int fd;
	struct lws_vhost *vhost;
	ev_io io;
	ev_timer pause;
};

static struct gateway *gateway_running;

static void gateway_on_turn_end(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	hub_link_flush(w->data);
	peer_flush_delivered(w->data); /* (the handlers flush it already; this catches any other) */
}

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

/* A vhost: listening on port, or (port CONTEXT_PORT_NO_LISTEN_SERVER) fed by adoption. */
static struct lws_vhost *gateway_vhost(struct gateway *gw, const struct lws_protocols *protocols,
				       const char *name, const char *iface, int port)
{
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.vhost_name = name;
	info.port = port;
	info.iface = iface;
	info.protocols = protocols;
	info.user = gw;
	/* keepalive.c pings quiet connections (see why there). Without a policy of its own a
	 * vhost gets lws's default one (ping after 300 s), and its per-connection timer: a
	 * hangup of 0 turns that off. */
	static const lws_retry_bo_t no_idle_policy = {.secs_since_valid_ping = 0,
						      .secs_since_valid_hangup = 0};
	info.retry_and_idle_policy = &no_idle_policy;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
	if (port == CONTEXT_PORT_NO_LISTEN_SERVER && *config_str("gateway.tls_cert")) {
		info.ssl_cert_filepath = config_str("gateway.tls_cert");
		info.ssl_private_key_filepath = config_str("gateway.tls_key");
		info.options |=
		    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT; /* lws reads it per vhost too */
	}
	return lws_create_vhost(gw->ctx, &info);
}

/* The shared public socket: SO_REUSEPORT, non-blocking. A descriptor, or -1 with errno set. */
static int direct_open(const char *addr, int port)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, SOMAXCONN) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void direct_on_pause_end(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct direct_listener *dl = w->data;
	ev_io_start(loop, &dl->io);
}

/* New public connections go to lws as if it had accepted them (TLS included). */
static void direct_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct direct_listener *dl = w->data;
	for (int i = 0; i < DIRECT_ACCEPTS_PER_TURN; i++) {
		int fd = accept4(dl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_warnx("%s: %s: not accepting for %.0f ms", __func__,
					  strerror(errno), DIRECT_PAUSE_S * 1000);
				ev_io_stop(loop, &dl->io);
				ev_timer_set(&dl->pause, DIRECT_PAUSE_S, 0);
				ev_timer_start(loop, &dl->pause);
			}
			return; /* EAGAIN, or a connection that went away before we took it */
		}
		/*
		 * lws sets TCP_NODELAY on what its own listener accepts (ops-listen.c), not on
		 * what it adopts: without it Nagle held a blob behind the count before it until the
		 * client's delayed ACK, 5 ms and more on every want in direct mode.
		 */
		int one = 1;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
			log_debug("%s: TCP_NODELAY: %s", __func__, strerror(errno));
		if (lws_adopt_socket_vhost(dl->vhost, fd) == NULL)
			log_warnx("%s: lws could not adopt a connection", __func__);
	}
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
	gw.idle_ping_s = (int)config_int("gateway.idle_ping_s");
	gw.idle_close_s = (int)config_int("gateway.idle_close_s");
	if (gw.idle_close_s <= gw.idle_ping_s)
		fatalx("gateway.idle_close_s (%d) must be more than gateway.idle_ping_s (%d)",
		       gw.idle_close_s, gw.idle_ping_s);
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
	interest_init(&gw);
	filecheck_init(&gw);
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

	struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
	if (loop == NULL)
		loop = ev_default_loop(0);
	if (loop == NULL)
		fatalx("no event loop (libev)");
	rxbuf_init((size_t)gw.max_conns);
	void *foreign_loops[] = {loop};
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.user = &gw;
	info.pt_serv_buf_size = GW_RX_CHUNK; /* lws reads into it: at most this much a recv() */
	/* lws 4.1 reads VALIDATE_UTF8 from the context's options, not the vhost's: text that is not
	 * UTF-8 is closed with 1007 (docs/LIMITS.md, "RFC 6455 frames"). */
	info.options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (*config_str("gateway.tls_cert"))
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.foreign_loops = foreign_loops;
	gw.loop = loop;
	gw.ctx = lws_create_context(&info);
	if (gw.ctx == NULL)
		fatalx("cannot create the lws context");
	gw.vhost = gateway_vhost(&gw, protocols, "default", config_str("gateway.listen"), port);
	if (gw.vhost == NULL)
		fatalx("cannot listen on %s:%d", config_str("gateway.listen"), port);
	static struct direct_listener direct = {.fd = -1};
	int direct_port = (int)config_int("gateway.direct_port");
	if (direct_port) {
		const char *addr = config_str("gateway.direct_listen");
		direct.vhost =
		    gateway_vhost(&gw, protocols, "direct", NULL, CONTEXT_PORT_NO_LISTEN_SERVER);
		if (direct.vhost == NULL)
			fatalx("cannot set up gateway.direct_port (gateway.tls_cert, "
			       "gateway.tls_key?)");
		direct.fd = direct_open(addr, direct_port);
		if (direct.fd < 0)
			fatalx("cannot listen on %s:%d (gateway.direct_port): %s", addr,
			       direct_port, strerror(errno));
		ev_io_init(&direct.io, direct_on_accept, direct.fd, EV_READ);
		ev_init(&direct.pause, direct_on_pause_end);
		direct.io.data = direct.pause.data = &direct;
		ev_io_start(loop, &direct.io);
		log_info("gateway %s also accepts on %s://%s:%d/, shared with the other gateways",
			 gw.name, *config_str("gateway.tls_cert") ? "wss" : "ws", addr,
			 direct_port);
		if (gw.norigins == 0)
			log_warnx(
			    "gateway.allowed_origins is empty: browsers on gateway.direct_port "
			    "are refused unless the pages come from that same host and port");
	}

	gw.zctx = zmq_ctx_new();
	if (peer_open(&gw) < 0)
		fatalx("cannot open the peer endpoint %s", gw.peer_bind);
	if (hub_link_open(&gw) < 0)
		fatalx("cannot reach the hub at %s", gw.endpoint);
	hub_link_hello(&gw);
	hub_link_start_timers(&gw);
	interest_start_timers(&gw);
	keepalive_start(&gw);
	timer_lws_tick_start(&gw);

	gateway_running = &gw;
	/* Runs when a turn of the loop has handled every event, before it waits again: what was
	 * batched for the hub in that turn goes now. */
	ev_prepare turn_end;
	ev_prepare_init(&turn_end, gateway_on_turn_end);
	turn_end.data = &gw;
	ev_prepare_start(loop, &turn_end);
	ev_signal sigint, sigterm;
	ev_signal_init(&sigint, gateway_on_signal, SIGINT);
	ev_signal_init(&sigterm, gateway_on_signal, SIGTERM);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	signal(SIGPIPE, SIG_IGN);

	log_info("gateway %s listening on ws://%s:%d/ (hub %s)", gw.name,
		 config_str("gateway.listen"), port, gw.endpoint);
	ev_run(loop, 0);

	log_info("gateway %s stopping", gw.name);
	if (direct.fd >= 0) {
		ev_io_stop(loop, &direct.io);
		ev_timer_stop(loop, &direct.pause);
		close(direct.fd);
	}
	timer_lws_tick_stop(&gw);
	ev_prepare_stop(loop, &turn_end);
	ev_signal_stop(loop, &sigint);
	ev_signal_stop(loop, &sigterm);
	lws_context_destroy(gw.ctx);
	rxbuf_free();
	hub_link_close(&gw);
	peer_close(&gw);
	zmq_ctx_term(gw.zctx);
	map_free(&gw.sessions);
	map_free(&gw.interests);
	map_free(&gw.hashsubs);
	filecheck_free(&gw);
	limits_free(&gw);
	framewatch_free();
	free(gw.tx_scratch);
	ev_loop_destroy(loop);
	config_reset();
	return 0;
}
