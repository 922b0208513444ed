/*
 * hub_link.c — the gateway's side of the hub protocol (docs/HUB-PROTOCOL.md).
 *
 * Owns the DEALER socket to the hub and its place in the lws loop: ZMQ_FD is adopted as a raw
 * file, and because that descriptor is edge-triggered, the socket is drained until ZMQ_EVENTS
 * says nothing is left, both when lws reports it readable and after every send (a zero-delay
 * "kick" timer does the latter, outside the caller's stack). Liveness: HEARTBEAT every
 * hub.heartbeat_ms; a hub silent for hub.peer_expiry_ms is presumed gone and the socket is
 * rebuilt. A new hub instance (seen in PING/WELCOME/RESET) gets HELLO and the whole state again:
 * every connection, everything it holds, every open want; where the socket's queue
 * (gateway.hub_queue) is full, the re-announcement stops and the tick resumes it until it is
 * complete. A WANT the socket refuses (its queue full, the same hub still there) is kept and sent
 * again by the tick, for the wants still open, until the socket takes it or a re-announcement
 * carries them. A refused message that says what is held or connected (HAVE, DROP, CONN_OPEN,
 * CONN_CLOSE, FILE) leaves the hub's registry wrong: once the socket takes messages again the
 * gateway says HELLO and re-announces its state, which the hub takes in place of what it had
 * (at most every HUB_LINK_RESTATE_MS, backing off to HUB_LINK_RESTATE_MAX_MS while refusals keep
 * coming, so a hub that stays overloaded is not flooded with them). A hub that takes no
 * messages, or stays silent, is logged once per outage, not once per message or reconnection.
 */
#include "gateway.h"
#include "log.h"
#include "zsec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The re-announcement's resumption, the peer links' retries and a drain run this often. */
#define HUB_LINK_TICK_MS 50
/* A re-announcement for state messages the same hub's socket refused starts at most this often. */
#define HUB_LINK_RESTATE_MS	2000
#define HUB_LINK_RESTATE_MAX_MS 60000 /* ... and backs off to this while they keep coming */

static void hub_link_kick(struct ev_loop *loop, ev_timer *t, int revents);

static void hub_link_schedule_kick(struct gateway *gw)
{
	if (gw->kick_scheduled)
		return;
	gw->kick_scheduled = 1;
	timer_arm(gw, &gw->kick_timer, hub_link_kick, 0);
}

static int hub_link_post(struct gateway *gw, const struct hubproto_out *o, int retried);

/*
 * Keeps the entries of a WANT the hub socket refused (its queue full, or no socket), to be sent
 * again once it takes messages: a client must not wait gateway.want_timeout_ms for nothing, nor
 * hear not_found for a blob someone holds.
 */
static void hub_link_keep_unsent(struct gateway *gw, const uint8_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (hubproto_list_put(&gw->wants_unsent, &gw->wants_unsent_len,
				      &gw->wants_unsent_cap, list + i * HUBPROTO_CONN_KEY_LEN,
				      HUBPROTO_CONN_KEY_LEN) < 0) {
			log_warnx("%s: out of memory: %zu wants left to gateway.want_timeout_ms",
				  __func__, n - i);
			return;
		}
	}
}

/* Sends a WANT; what the socket refuses is kept for hub_link_retry_wants. */
static void hub_link_post_wants(struct gateway *gw, const uint8_t *list, size_t n)
{
	struct hubproto_out o = {.cmd = HUB_WANT, .list = list, .list_count = n};
	if (hub_link_post(gw, &o, 0) < 0)
		hub_link_keep_unsent(gw, list, n);
}

void hub_link_flush(struct gateway *gw)
{
	peer_flush_blobs(gw);
	if (gw->wants_out_len == 0)
		return;
	size_t n = gw->wants_out_len / HUBPROTO_CONN_KEY_LEN;
	gw->wants_out_len = 0; /* first: hub_link_post flushes before it sends */
	hub_link_post_wants(gw, gw->wants_out, n);
}

void hub_link_want(struct gateway *gw, uint64_t conn, const uint8_t hash[HASH_LEN])
{
	uint8_t entry[HUBPROTO_CONN_KEY_LEN];
	hubproto_conn_entry(entry, conn, hash);
	if (hubproto_list_put(&gw->wants_out, &gw->wants_out_len, &gw->wants_out_cap, entry,
			      sizeof(entry)) < 0) {
		hub_link_post_wants(gw, entry, 1); /* out of memory: this one goes alone */
	}
}

/* Whether the hub socket's queue has room again (ZMQ_EVENTS may take in the socket's pending
 * commands: the tick drains the socket right after). */
static int hub_link_takes_messages(struct gateway *gw)
{
	int events = 0;
	size_t size = sizeof(events);
	return gw->zsock && zmq_getsockopt(gw->zsock, ZMQ_EVENTS, &events, &size) == 0 &&
	       (events & ZMQ_POLLOUT);
}

/* Sends again, in one WANT, the refused wants that are still open; keeps them if the socket
 * still refuses. The tick calls it while any wait. */
static void hub_link_retry_wants(struct gateway *gw)
{
	/* Not while the queue is still full: walking a long list every tick would cost an
	 * overloaded hub's gateway more than the wants are worth. */
	if (!hub_link_takes_messages(gw))
		return;
	hub_link_flush(gw); /* before: its refusals add to the list this sends */
	size_t n = 0;
	for (size_t off = 0; off < gw->wants_unsent_len; off += HUBPROTO_CONN_KEY_LEN) {
		const uint8_t *e = gw->wants_unsent + off;
		struct session *s = session_find(gw, get_u64(e));
		struct interest *in = s ? interest_get(gw, s, HUBPROTO_CONN_KEY_HASH(e), 0) : NULL;
		if (in == NULL || !in->wants || in->deferred)
			continue; /* ended meanwhile, or wanted again when its queue drains */
		memmove(gw->wants_unsent + n * HUBPROTO_CONN_KEY_LEN, e, HUBPROTO_CONN_KEY_LEN);
		n++;
	}
	gw->wants_unsent_len = n * HUBPROTO_CONN_KEY_LEN;
	if (n == 0)
		return;
	struct hubproto_out o = {.cmd = HUB_WANT, .list = gw->wants_unsent, .list_count = n};
	if (hub_link_post(gw, &o, 1) < 0)
		return; /* still full: the next tick tries again */
	log_debug("sent the hub %zu wants its socket had refused", n);
	gw->wants_unsent_len = 0;
}

/* Whether cmd says what a connection holds or that it exists: the hub's registry. */
static int hub_link_is_state(uint8_t cmd)
{
	return cmd == HUB_HAVE || cmd == HUB_DROP || cmd == HUB_CONN_OPEN ||
	       cmd == HUB_CONN_CLOSE || cmd == HUB_FILE;
}

/* Sends o. A refusal is a loss unless `retried` (the re-announcement sends it again later). */
static int hub_link_post(struct gateway *gw, const struct hubproto_out *o, int retried)
{
	hub_link_flush(gw); /* wants queued before o go before it */
	int rc = gw->zsock ? hubproto_send(gw->zsock, NULL, 0, o) : -1;
	if (rc < 0 && retried)
		return -1;
	if (rc < 0) {
		gw->counters[HUB_GWC_HUB_REFUSED]++;
		if (gw->zsock && !gw->hub_lost && hub_link_is_state(o->cmd))
			gw->state_unsent++; /* the tick re-announces everything once it can */
		/* A hub that is gone refuses everything: say so once per outage, not per message.
		 * Once it answers, the re-announcement fills the queue on purpose: what that
		 * refuses meanwhile is counted, and said when the queue takes messages again. */
		if (gw->hub_unsent++ == 0 && !(gw->resyncing && !gw->hub_lost))
			log_warnx("the hub takes no messages (%s: %s): dropping them until it does",
				  hubproto_cmd_name(o->cmd),
				  gw->zsock ? zmq_strerror(errno) : "no socket");
		return -1;
	}
	if (gw->hub_unsent && !gw->hub_lost) {
		/* (While the hub is silent a fresh socket queues without it: that is no return.) */
		log_warnx("the hub takes messages again: %llu were dropped",
			  (unsigned long long)gw->hub_unsent);
		gw->hub_unsent = 0;
	}
	hub_link_schedule_kick(gw);
	return rc;
}

int hub_link_send(struct gateway *gw, const struct hubproto_out *o)
{
	return hub_link_post(gw, o, 0);
}

/* HELLO: our instance, connection count, name and peer endpoint. */
static int hub_link_post_hello(struct gateway *gw, int quiet)
{
	char data[HUBPROTO_HELLO_DATA_MAX];
	struct hubproto_out o = {.cmd = HUB_HELLO,
				 .id = gw->instance,
				 .value = gw->nsessions,
				 .data = data,
				 .data_len =
				     hubproto_hello_data(data, gw->name, gw->peer_endpoint)};
	return hub_link_post(gw, &o, quiet);
}

void hub_link_hello(struct gateway *gw)
{
	hub_link_post_hello(gw, 0);
}

/* Re-announces one connection: its open, its holdings, its wants. -1 if the hub socket refused
 * a message (its queue is full): the whole connection is sent again later, which the hub takes
 * as it takes the first time (opening, holding and wanting twice change nothing). */
static int hub_link_resync_session(struct gateway *gw, struct session *s)
{
	static uint8_t list[WSMSG_MAX_HASHES * 8][HASH_LEN];
	const size_t max = sizeof(list) / sizeof(list[0]);
	size_t n = 0, holds = 0, wants = 0;
	struct hubproto_out open = {.cmd = HUB_CONN_OPEN, .id = s->id};
	if (hub_link_post(gw, &open, 1) < 0)
		return -1;
	struct interest *in;
	LIST_FOREACH(in, &s->interests, sentry)
	{
		if (in->holds) {
			memcpy(list[n++], HUBPROTO_CONN_KEY_HASH(in->key), HASH_LEN);
			holds++;
		}
		if (n == max || (n && LIST_NEXT(in, sentry) == NULL)) {
			struct hubproto_out have = {
			    .cmd = HUB_HAVE, .id = s->id, .list = list, .list_count = n};
			if (hub_link_post(gw, &have, 1) < 0)
				return -1;
			n = 0;
		}
	}
	/* The files it announced that the gateway checked: after the holdings (the hub lists a
	 * manifest only for a connection that holds it). */
	static uint8_t files[WSMSG_MAX_HASHES][HUBPROTO_FILE_ENTRY];
	const size_t max_files = sizeof(files) / sizeof(files[0]);
	size_t nfiles = 0;
	struct file_claim *fc;
	LIST_FOREACH(fc, &s->claims, entry)
	{
		nfiles += (size_t)filecheck_entry(gw, s, fc, files[nfiles]);
		if (nfiles == max_files || (nfiles && LIST_NEXT(fc, entry) == NULL)) {
			struct hubproto_out file = {
			    .cmd = HUB_FILE, .id = s->id, .list = files, .list_count = nfiles};
			if (hub_link_post(gw, &file, 1) < 0)
				return -1;
			nfiles = 0;
		}
	}
	LIST_FOREACH(in, &s->interests, sentry)
	{
		if (!in->wants)
			continue;
		uint8_t entry[HUBPROTO_CONN_KEY_LEN];
		hubproto_conn_entry(entry, s->id, HUBPROTO_CONN_KEY_HASH(in->key));
		struct hubproto_out want = {.cmd = HUB_WANT, .list = entry, .list_count = 1};
		if (hub_link_post(gw, &want, 1) < 0)
			return -1;
		wants++;
	}
	gw->resync_conns++;
	gw->resync_holds += holds;
	gw->resync_wants += wants;
	return 0;
}

/* Goes on with the re-announcement where the high-water mark stopped it. Each pass walks every
 * connection and sends those not yet sent in this round, so connections that open or close
 * meanwhile are neither missed nor sent for nothing. */
static void hub_link_resync_step(struct gateway *gw)
{
	size_t it = 0;
	struct session *s;
	if (!gw->resync_hello) {
		if (hub_link_post_hello(gw, 1) < 0)
			return;
		gw->resync_hello = 1;
	}
	while ((s = map_next(&gw->sessions, &it))) {
		if (s->synced_gen == gw->resync_gen)
			continue;
		if (hub_link_resync_session(gw, s) < 0)
			return; /* the hub's queue is full: the tick resumes it */
		s->synced_gen = gw->resync_gen;
	}
	gw->resyncing = 0;
	/* While the hub is away this is only queued for it, at every reconnection: said once
	 * it answers (the PING of its new instance asks for it again). */
	if (gw->hub_lost)
		log_debug("queued %zu connections, %zu holdings, %zu wants for the hub",
			  gw->resync_conns, gw->resync_holds, gw->resync_wants);
	else
		log_info("re-announced %zu connections, %zu holdings, %zu wants to the hub",
			 gw->resync_conns, gw->resync_holds, gw->resync_wants);
}

/* Teaches a (new) hub everything: who is connected, what they hold, what they wait for. */
static void hub_link_resync(struct gateway *gw, uint64_t hub_instance)
{
	gw->synced_instance = hub_instance;
	gw->wants_unsent_len = 0; /* every open want goes in the re-announcement */
	gw->state_unsent = 0;	  /* and everything held */
	gw->resync_gen++;
	gw->resyncing = 1;
	gw->resync_hello = 0;
	gw->resync_conns = gw->resync_holds = gw->resync_wants = 0;
	hub_link_resync_step(gw);
}

static void on_welcome(struct gateway *gw, struct hubmsg *m)
{
	if (gw->synced_instance && gw->synced_instance != m->id && gw->hub_instance != m->id) {
		/* Our state went to another hub instance than the one welcoming us. */
		gw->hub_instance = m->id;
		hub_link_resync(gw, m->id);
		return;
	}
	if (gw->hub_instance != m->id)
		log_info("joined hub %016llx", (unsigned long long)m->id);
	gw->hub_instance = m->id;
	gw->synced_instance = m->id;
}

static void on_ping(struct gateway *gw, struct hubmsg *m)
{
	if (gw->synced_instance != m->id) {
		log_info("hub %016llx is new to us: announcing our state",
			 (unsigned long long)m->id);
		gw->hub_instance = m->id;
		hub_link_resync(gw, m->id);
	}
}

static void on_reset(struct gateway *gw, struct hubmsg *m)
{
	/* Many messages may bounce off a restarted hub; re-announce once per hub instance. */
	if (gw->synced_instance != m->id) {
		log_info("hub %016llx does not know us: announcing our state",
			 (unsigned long long)m->id);
		gw->hub_instance = m->id;
		hub_link_resync(gw, m->id);
	}
}

static void on_request(struct gateway *gw, struct hubmsg *m)
{
	peer_request(gw, m);
}

static void on_route(struct gateway *gw, struct hubmsg *m)
{
	peer_route(gw, m);
}

static void on_not_found(struct gateway *gw, struct hubmsg *m)
{
	interest_not_found(gw, m->id, m->hash);
}

static void on_count(struct gateway *gw, struct hubmsg *m)
{
	for (size_t i = 0; i < m->list_count; i++) {
		const uint8_t *e = m->list + i * HUBPROTO_COUNT_ENTRY;
		interest_count(gw, e, get_u32(e + HASH_LEN));
	}
}

static void on_peer_keys(struct gateway *gw, struct hubmsg *m)
{
	peer_allow(gw, m->list, m->list_count, m->value == HUB_PEER_KEYS_ALL);
}

static const struct {
	uint8_t cmd;
	void (*fn)(struct gateway *, struct hubmsg *);
} hub_link_handlers[] = {
    {HUB_WELCOME, on_welcome}, {HUB_PING, on_ping},	      {HUB_RESET, on_reset},
    {HUB_REQUEST, on_request}, {HUB_ROUTE, on_route},	      {HUB_NOT_FOUND, on_not_found},
    {HUB_COUNT, on_count},     {HUB_PEER_KEYS, on_peer_keys},
};

/*
 * Reads until a non-blocking receive finds nothing: that receive also takes in ZeroMQ's pending
 * commands, as asking ZMQ_EVENTS would, so the edge-triggered ZMQ_FD fires again for the next
 * message; asking ZMQ_EVENTS before every message cost a poll() each.
 */
static void hub_link_drain(struct gateway *gw)
{
	for (int budget = HUBPROTO_DRAIN_BUDGET; gw->zsock && budget > 0; budget--) {
		struct hubmsg m;
		int rc = hubproto_recv(gw->zsock, &m, 0);
		if (rc == 0) {
			peer_flush_delivered(gw); /* the routes of this turn, in one message */
			return;
		}
		if (rc < 0) {
			log_warnx("%s: malformed message from hub: %s", __func__, m.error);
			continue;
		}
		gw->hub_last_seen = now_ms();
		if (gw->hub_lost) {
			log_warnx(
			    "the hub answers again: %llu messages to it were dropped meanwhile",
			    (unsigned long long)gw->hub_unsent);
			gw->hub_lost = 0;
			gw->hub_unsent = 0;
		}
		log_debug("hub: %s id=%llu entries=%zu", hubproto_cmd_name(m.cmd),
			  (unsigned long long)m.id, m.list_count);
		size_t i;
		for (i = 0; i < sizeof(hub_link_handlers) / sizeof(hub_link_handlers[0]); i++) {
			if (hub_link_handlers[i].cmd == m.cmd) {
				hub_link_handlers[i].fn(gw, &m);
				if (hubproto_carries_settled(m.cmd))
					peer_settle(gw, m.id);
				break;
			}
		}
		if (i == sizeof(hub_link_handlers) / sizeof(hub_link_handlers[0]))
			log_warnx("%s: hub sent %s, which only gateways send", __func__,
				  hubproto_cmd_name(m.cmd));
		hubmsg_close(&m);
	}
	peer_flush_delivered(gw);
	hub_link_schedule_kick(gw); /* budget spent: come back after serving the clients */
}

static void hub_link_kick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct gateway *gw = lws_container_of(t, struct gateway, kick_timer);
	gw->kick_scheduled = 0;
	hub_link_drain(gw);
}

int hub_link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		      size_t len)
{
	(void)user;
	(void)in;
	(void)len;
	struct gateway *gw = lws_context_user(lws_get_context(wsi));
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		hub_link_drain(gw);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (gw->zwsi == wsi)
			gw->zwsi = NULL;
		return 0;
	default:
		return 0;
	}
}

int hub_link_open(struct gateway *gw)
{
	gw->zsock = hubproto_socket(gw->zctx, ZMQ_DEALER);
	int hwm = gw->hub_queue;
	if (gw->zsock && hwm > 0)
		zmq_setsockopt(gw->zsock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	if (gw->zsock == NULL || zsec_client_from_config(gw->zsock, "gateway.secret_key") < 0 ||
	    zmq_connect(gw->zsock, gw->endpoint) < 0) {
		log_errorx("%s: cannot connect to %s: %s", __func__, gw->endpoint,
			   zmq_strerror(zmq_errno()));
		goto fail;
	}
	/* No HEARTBEAT before HELLO: lws calls session_callback (hub_link_beat_if_due) as it adopts
	 * the descriptor, and a hub hearing of us first from a HEARTBEAT answers RESET, for a
	 * second re-announcement of everything. */
	gw->beat_sent_ms = now_ms();
	gw->zwsi = zadopt(gw, gw->zsock, GW_HUB_LINK_PROTOCOL, "hub socket");
	if (gw->zwsi == NULL)
		goto fail;
	gw->hub_last_seen = now_ms();
	gw->synced_instance = 0;
	return 0;
fail:
	/* No half-open link: the next heartbeat finds the hub silent and tries again. */
	if (gw->zsock)
		zmq_close(gw->zsock);
	gw->zsock = NULL;
	return -1;
}

void hub_link_close(struct gateway *gw)
{
	if (gw->zwsi) {
		struct lws *w = gw->zwsi;
		gw->zwsi = NULL;
		lws_set_timeout(w, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
	}
	if (gw->zsock) {
		zmq_close(gw->zsock);
		gw->zsock = NULL;
	}
	free(gw->wants_out); /* the wants still open are re-announced to the next socket */
	gw->wants_out = NULL;
	gw->wants_out_len = gw->wants_out_cap = 0;
	free(gw->wants_unsent);
	gw->wants_unsent = NULL;
	gw->wants_unsent_len = gw->wants_unsent_cap = 0;
}

static void hub_link_send_beat(struct gateway *gw, int64_t now)
{
	uint8_t counters[HUB_GWC_COUNT * 8];
	for (int i = 0; i < HUB_GWC_COUNT; i++)
		put_u64(counters + 8 * i, gw->counters[i]);
	struct hubproto_out o = {.cmd = HUB_HEARTBEAT,
				 .id = gw->instance,
				 .value = gw->nsessions,
				 .list = counters,
				 .list_count = HUB_GWC_COUNT};
	hub_link_send(gw, &o);
	gw->beat_sent_ms = now;
}

/* Every hub.heartbeat_ms: a HEARTBEAT, or, when the hub has been silent for
 * hub.peer_expiry_ms, a new socket and a re-announcement. */
static void hub_link_beat(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct gateway *gw = lws_container_of(t, struct gateway, beat_timer);
	int64_t now = now_ms();
	if (now - gw->hub_last_seen > gw->expiry_ms)
		hub_link_drain(gw); /* what waits unread is no silence */
	if (now - gw->hub_last_seen > gw->expiry_ms) {
		/* Said once per outage: while the hub stays away this repeats every expiry. */
		if (!gw->hub_lost)
			log_warnx("hub silent for %lld ms: reconnecting until it answers",
				  (long long)(now - gw->hub_last_seen));
		gw->hub_lost = 1;
		hub_link_close(gw);
		peer_forget_kept(gw); /* their routes were for the old socket: never coming */
		if (hub_link_open(gw) == 0)
			hub_link_resync(gw, 0);
	} else {
		hub_link_send_beat(gw, now);
	}
	timer_arm(gw, &gw->beat_timer, hub_link_beat, gw->heartbeat_ms);
}

void hub_link_beat_if_due(struct gateway *gw)
{
	int64_t now = now_ms();
	if (now - gw->beat_sent_ms >= gw->heartbeat_ms && gw->zsock)
		hub_link_send_beat(gw, now);
}

/* The same hub's socket refused state messages: once it takes messages again, HELLO and the
 * whole state, which the hub takes in place of what it had (it forgets a gateway that says HELLO
 * again), so holdings it never heard of appear and ones it was not told are gone disappear. */
static void hub_link_restate(struct gateway *gw)
{
	int64_t now = now_ms();
	int64_t wait = gw->state_resync_wait_ms ? gw->state_resync_wait_ms : HUB_LINK_RESTATE_MS;
	if (now - gw->state_resync_ms < wait || !hub_link_takes_messages(gw))
		return;
	log_warnx("the hub's queue refused %llu messages about what is connected and held: "
		  "announcing our state again",
		  (unsigned long long)gw->state_unsent);
	/* A hub that stays behind would get the whole state ever again: each time soon after the
	 * last, the next waits twice as long (up to HUB_LINK_RESTATE_MAX_MS). */
	int64_t next = now - gw->state_resync_ms < 2 * wait ? 2 * wait : HUB_LINK_RESTATE_MS;
	gw->state_resync_wait_ms = next < HUB_LINK_RESTATE_MAX_MS ? next : HUB_LINK_RESTATE_MAX_MS;
	gw->state_resync_ms = now;
	gw->counters[HUB_GWC_RESTATES]++;
	hub_link_resync(gw, gw->hub_instance);
}

static void hub_link_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct gateway *gw = lws_container_of(t, struct gateway, tick_timer);
	if (gw->resyncing)
		hub_link_resync_step(gw);
	else if (gw->state_unsent)
		hub_link_restate(gw);
	else if (gw->wants_unsent_len)
		hub_link_retry_wants(gw);
	peer_tick(gw);
	hub_link_drain(gw);
	timer_arm(gw, &gw->tick_timer, hub_link_tick, HUB_LINK_TICK_MS);
}

void hub_link_start_timers(struct gateway *gw)
{
	timer_arm(gw, &gw->beat_timer, hub_link_beat, gw->heartbeat_ms);
	timer_arm(gw, &gw->tick_timer, hub_link_tick, HUB_LINK_TICK_MS);
}
