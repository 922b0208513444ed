/*
 * timer.c — the gateway's own timers: libev timers on the loop it shares with lws.
 *
 * lws_sul_schedule() would be the lws way, but lws 4.1 on libev arms one libev timer for the
 * earliest sul it knew of when it last looked, and looks again only when that timer fires or
 * when its idle watcher runs, which libev does only in a turn with nothing else pending. A sul
 * scheduled earlier than the armed one waits: under steady traffic on 14,000 connections the
 * heartbeat to the hub came 1 to 11 s late while the loop's turns took under 1.5 s, and the hub
 * took busy gateways for dead (docs/BENCHMARKS.md, "100,000 idle WebSockets"). libev looks at
 * its own timers in every turn. Owns nothing but these calls; each module owns its timers.
 *
 * lws's own timeouts are suls all the same (the one that closes a connection whose handshake
 * never comes, among others): under load they waited for the sul lws had armed its timer for, or
 * for the idle watcher; a silent connection was closed after 19 s instead of 10
 * (tests/e2e/forced-service.test.mjs). timer_lws_tick() is a sul that reschedules itself every
 * TIMER_LWS_TICK_MS, so lws's timer is never armed further ahead than that: each time it fires,
 * lws serves every sul that is due and arms it again.
 */
#include "gateway.h"

#define TIMER_LWS_TICK_MS 500 /* how late one of lws's own timeouts may be, at most */

static void timer_lws_tick(lws_sorted_usec_list_t *sul)
{
	struct gateway *gw = lws_container_of(sul, struct gateway, lws_tick);
	lws_sul_schedule(gw->ctx, 0, &gw->lws_tick, timer_lws_tick,
			 (lws_usec_t)TIMER_LWS_TICK_MS * LWS_US_PER_MS);
}

void timer_lws_tick_start(struct gateway *gw)
{
	timer_lws_tick(&gw->lws_tick);
}

void timer_lws_tick_stop(struct gateway *gw)
{
	lws_sul_cancel(&gw->lws_tick);
}

void timer_arm(struct gateway *gw, ev_timer *t, timer_cb cb, int64_t ms)
{
	/* libev counts from the time its turn began, which under load is many ms ago: a timer
	 * would fire before what the caller computed from now_ms() (a close due "300 ms from
	 * now" was found not yet due, and never looked at again). */
	ev_now_update(gw->loop);
	ev_timer_stop(gw->loop, t);
	ev_timer_init(t, cb, (ev_tstamp)ms / 1000.0, 0.0);
	ev_timer_start(gw->loop, t);
}

void timer_stop(struct gateway *gw, ev_timer *t)
{
	ev_timer_stop(gw->loop, t);
}
