/*
 * timer.c — the gateway's own timers: libev timers on the loop it shares with lws.
 *
 * lws_sul_schedule() would be the lws way, but lws 4.1 on libev arms one libev timer for the
 * earliest sul it knew of when it last looked, and looks again only when that timer fires or
 * when its idle watcher runs, which libev does only in a turn with nothing else pending. A sul
 * scheduled earlier than the armed one waits: under steady traffic on 14,000 connections the
 * heartbeat to the hub came 1 to 11 s late while the loop's turns took under 1.5 s, and the hub
 * took busy gateways for dead (docs/BENCHMARKS.md, "100,000 idle WebSockets"). libev looks at
 * its own timers in every turn. Owns nothing but these two calls; each module owns its timers.
 */
#include "gateway.h"

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
