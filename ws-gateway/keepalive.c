/*
 * keepalive.c — finds the connections that went quiet: a connection that has sent no frame for
 * gateway.idle_ping_s gets a ping, and one that has still sent nothing gateway.idle_close_s after
 * its last frame is closed (a peer that vanished without a FIN holds memory and a slot of
 * gateway.max_conns until then).
 *
 * lws offers the same per connection (retry_and_idle_policy), but keeps every connection's timer
 * in one sorted linked list that each insertion walks from its head, and each new connection's
 * timer, being the furthest, walks all of it: with 14,000 connections on a gateway that walk
 * took 71% of its CPU while they were opening, turns of its loop lasted up to 19 s, and the hub
 * took the silent gateways for dead. Here every connection is in one of two lists, each in the
 * order of the time that matters for it: `quiet` (by its last frame; a frame moves it to the
 * tail, at most every KEEPALIVE_SLACK_MS) and `pinged` (by its ping). A tick every
 * KEEPALIVE_TICK_MS takes from their heads only what is due: O(1) per frame and per connection
 * due. Owns both lists and the tick; session.c calls keepalive_open/seen/close, and sends the
 * ping or closes when keepalive_due() says so.
 */
#include "gateway.h"
#include "log.h"
#include "util.h"

/* A frame within this long of the last one leaves the connection where it is in its list: it
 * may be pinged that much early, and a busy connection costs a list move a quarter second. */
#define KEEPALIVE_SLACK_MS 250
#define KEEPALIVE_TICK_MS  250

void keepalive_open(struct gateway *gw, struct session *s)
{
	s->ka_last = now_ms();
	s->ka_list = KA_QUIET;
	TAILQ_INSERT_TAIL(&gw->ka_quiet, s, ka_entry);
}

static void keepalive_unlist(struct gateway *gw, struct session *s)
{
	if (s->ka_list == KA_QUIET)
		TAILQ_REMOVE(&gw->ka_quiet, s, ka_entry);
	else if (s->ka_list == KA_PINGED)
		TAILQ_REMOVE(&gw->ka_pinged, s, ka_entry);
	s->ka_list = KA_NONE;
}

void keepalive_seen(struct gateway *gw, struct session *s)
{
	int64_t now = now_ms();
	if (s->ka_list == KA_QUIET && now - s->ka_last < KEEPALIVE_SLACK_MS)
		return; /* left as it was, the order holds */
	keepalive_unlist(gw, s);
	s->ka_last = now;
	s->ka_list = KA_QUIET;
	TAILQ_INSERT_TAIL(&gw->ka_quiet, s, ka_entry);
}

void keepalive_close(struct gateway *gw, struct session *s)
{
	keepalive_unlist(gw, s);
	s->ka_ping = 0;
}

enum ka_due keepalive_due(struct session *s)
{
	enum ka_due due = (enum ka_due)s->ka_ping;
	s->ka_ping = KA_DUE_NONE;
	return due;
}

static void keepalive_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct gateway *gw = lws_container_of(t, struct gateway, keepalive_timer);
	int64_t now = now_ms();
	struct session *s;
	while ((s = TAILQ_FIRST(&gw->ka_quiet)) != NULL &&
	       now - s->ka_last >= (int64_t)gw->idle_ping_s * 1000) {
		TAILQ_REMOVE(&gw->ka_quiet, s, ka_entry);
		s->ka_pinged = now;
		s->ka_list = KA_PINGED;
		TAILQ_INSERT_TAIL(&gw->ka_pinged, s, ka_entry);
		s->ka_ping = KA_DUE_PING;
		lws_callback_on_writable(s->wsi);
	}
	int64_t grace = (int64_t)(gw->idle_close_s - gw->idle_ping_s) * 1000;
	while ((s = TAILQ_FIRST(&gw->ka_pinged)) != NULL && now - s->ka_pinged >= grace) {
		if (s->rx_paused) {
			/* We stopped reading it (limits.c): its pong waits unread, not missing. */
			keepalive_seen(gw, s);
			continue;
		}
		keepalive_unlist(gw, s);
		gw->counters[HUB_GWC_CLOSED_SILENT]++;
		log_debug("connection %llu silent for %lld ms: closed", (unsigned long long)s->id,
			  (long long)(now - s->ka_last));
		/* Closed from its next writable callback, at once for a peer that vanished (its
		 * socket takes bytes); lws's timeout is for one whose socket takes none. */
		s->ka_ping = KA_DUE_CLOSE;
		lws_callback_on_writable(s->wsi);
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_WS_PONG_CHECK_GET_PONG, 2);
	}
	timer_arm(gw, &gw->keepalive_timer, keepalive_tick, KEEPALIVE_TICK_MS);
}

void keepalive_start(struct gateway *gw)
{
	TAILQ_INIT(&gw->ka_quiet);
	TAILQ_INIT(&gw->ka_pinged);
	timer_arm(gw, &gw->keepalive_timer, keepalive_tick, KEEPALIVE_TICK_MS);
}
