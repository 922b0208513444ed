/*
 * interest.c — what each connection does with each hash, and the viewer counts it is owed.
 *
 * Owns interest and hashsub structs. An interest exists while its connection holds the hash,
 * wants it, or was asked for it by the hub; interest_settle() frees it once none is true. Counts
 * from the hub go to every connection holding or wanting the hash, at most 4 a second per
 * connection and hash, and less often on a hash that many of this gateway's connections hold
 * (count_interval_ms: a popular page's count would otherwise cost each of its viewers a message
 * every 250 ms, 15 us of CPU each): a value that comes too soon waits on the throttle list, and
 * only the newest waiting value is sent, so the last value always arrives. Open wants are kept
 * oldest first so that a want the hub never answers ends in not_found (gateway.want_timeout_ms).
 * Opening a want tells the hub (HUB_WANT); its answer NOT_FOUND and the timeout both end here.
 * Its own timer (interest_start_timers) sends held-back counts and ends wants that timed out.
 */
#include "gateway.h"
#include "log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define COUNT_INTERVAL_MS	   250	/* the least interval between two counts, per connection */
#define COUNT_INTERVAL_MAX_MS	   2000 /* ... and the most it grows to on a popular hash */
#define COUNT_AUDIENCE_PER_QUARTER 1000 /* connections of a hash served at the least interval */
#define INTEREST_TICK_MS	   50 /* throttled counts and want timeouts are looked at this often */

void interest_init(struct gateway *gw)
{
	map_init(&gw->interests, offsetof(struct interest, key),
		 sizeof(((struct interest *)0)->key));
	map_init(&gw->hashsubs, offsetof(struct hashsub, hash), HASH_LEN);
	TAILQ_INIT(&gw->wants);
	LIST_INIT(&gw->throttled);
}

struct interest *interest_get(struct gateway *gw, struct session *s, const uint8_t *hash,
			      int create)
{
	uint8_t key[HUBPROTO_CONN_KEY_LEN];
	hubproto_conn_key(key, s->id, hash);
	struct interest *in = map_get(&gw->interests, key);
	if (in || !create)
		return in;
	struct hashsub *hs = map_get(&gw->hashsubs, hash);
	if (hs == NULL) {
		hs = calloc(1, sizeof(*hs));
		if (hs == NULL)
			return NULL;
		memcpy(hs->hash, hash, HASH_LEN);
		if (map_put(&gw->hashsubs, hs) < 0) {
			free(hs);
			return NULL;
		}
	}
	in = calloc(1, sizeof(*in));
	if (in)
		memcpy(in->key, key, sizeof(key));
	if (in == NULL || map_put(&gw->interests, in) < 0) {
		free(in);
		if (LIST_EMPTY(&hs->interests)) {
			map_del(&gw->hashsubs, hash);
			free(hs);
		}
		return NULL;
	}
	in->s = s;
	in->hs = hs;
	in->last_count = -1;
	in->pending_count = -1;
	LIST_INSERT_HEAD(&s->interests, in, sentry);
	LIST_INSERT_HEAD(&hs->interests, in, hentry);
	hs->ninterests++;
	return in;
}

static void throttle_remove(struct interest *in)
{
	if (!in->in_throttle)
		return;
	LIST_REMOVE(in, tentry);
	in->in_throttle = 0;
	in->pending_count = -1;
}

void interest_want_open(struct gateway *gw, struct interest *in)
{
	in->wants = 1;
	in->s->nwants++;
	in->want_deadline = now_ms() + gw->want_timeout_ms;
	TAILQ_INSERT_TAIL(&gw->wants, in, wentry);
	hub_link_want(gw, in->s->id, HUBPROTO_CONN_KEY_HASH(in->key));
}

size_t interest_want_resend(struct gateway *gw)
{
	size_t n = 0;
	struct interest *in;
	TAILQ_FOREACH(in, &gw->wants, wentry)
	{
		if (in->deferred)
			continue; /* goes to the hub again when its connection's queue drains */
		hub_link_want(gw, in->s->id,
			      HUBPROTO_CONN_KEY_HASH(in->key)); /* this turn's list */
		n++;
	}
	return n;
}

void interest_want_close(struct gateway *gw, struct interest *in)
{
	if (!in->wants)
		return;
	TAILQ_REMOVE(&gw->wants, in, wentry);
	in->wants = 0;
	in->s->nwants--;
	if (in->deferred) {
		in->deferred = 0;
		in->s->ndeferred--;
	}
}

void interest_settle(struct gateway *gw, struct interest *in)
{
	if (!in->requested && in->named) { /* answered, declined, or its holder closed */
		peer_named_free(in->named);
		in->named = NULL;
	}
	if (in->holds || in->wants || in->requested || in->verifying)
		return;
	throttle_remove(in);
	struct hashsub *hs = in->hs;
	LIST_REMOVE(in, sentry);
	LIST_REMOVE(in, hentry);
	hs->ninterests--;
	map_del(&gw->interests, in->key);
	free(in);
	if (LIST_EMPTY(&hs->interests)) {
		map_del(&gw->hashsubs, hs->hash);
		free(hs);
	}
}

static void interest_send_count(struct interest *in, int64_t viewers, int64_t now)
{
	in->last_count = viewers;
	in->last_sent_ms = now;
	session_send_text(in->s, wsmsg_count(in->hs->hash, (uint32_t)viewers));
}

/*
 * How long a connection waits between two counts of this hash: 250 ms up to 1,000 interested
 * connections on this gateway, then in proportion (2,000: 500 ms), at most 2 s from 8,000 on. So
 * one hash's counts cost this gateway at most about 4,000 messages a second, however popular.
 */
static int64_t count_interval_ms(const struct hashsub *hs)
{
	int64_t ms = COUNT_INTERVAL_MS * (int64_t)hs->ninterests / COUNT_AUDIENCE_PER_QUARTER;
	return ms < COUNT_INTERVAL_MS	    ? COUNT_INTERVAL_MS
	       : ms > COUNT_INTERVAL_MAX_MS ? COUNT_INTERVAL_MAX_MS
					    : ms;
}

void interest_count(struct gateway *gw, const uint8_t *hash, uint32_t viewers)
{
	struct hashsub *hs = map_get(&gw->hashsubs, hash);
	int64_t now = now_ms();
	if (hs == NULL)
		return;
	int64_t interval = count_interval_ms(hs);
	struct interest *in;
	LIST_FOREACH(in, &hs->interests, hentry)
	{
		if (!in->holds && !in->wants)
			continue;
		if (in->last_count == viewers && !in->in_throttle)
			continue;
		if (in->last_count < 0 || now - in->last_sent_ms >= interval) {
			throttle_remove(in);
			interest_send_count(in, viewers, now);
			continue;
		}
		in->pending_count = viewers;
		if (!in->in_throttle) {
			in->in_throttle = 1;
			LIST_INSERT_HEAD(&gw->throttled, in, tentry);
		}
	}
}

static void interest_flush_throttled(struct gateway *gw)
{
	int64_t now = now_ms();
	struct interest *in = LIST_FIRST(&gw->throttled), *next;
	for (; in; in = next) {
		next = LIST_NEXT(in, tentry);
		if (now - in->last_sent_ms < count_interval_ms(in->hs))
			continue;
		int64_t v = in->pending_count;
		throttle_remove(in);
		if (v >= 0 && v != in->last_count && (in->holds || in->wants))
			interest_send_count(in, v, now);
	}
}

static void interest_expire_wants(struct gateway *gw)
{
	int64_t now = now_ms();
	struct interest *in;
	while ((in = TAILQ_FIRST(&gw->wants)) && in->want_deadline <= now) {
		interest_want_close(gw, in);
		session_send_error(in->s, "not_found", in->hs->hash, "no holder answered in time");
		interest_settle(gw, in);
	}
}

void interest_not_found(struct gateway *gw, uint64_t id, const uint8_t *hash)
{
	struct session *s = session_find(gw, id);
	struct interest *in = s ? interest_get(gw, s, hash, 0) : NULL;
	if (in == NULL || !in->wants)
		return;
	interest_want_close(gw, in);
	interest_settle(gw, in);
	session_send_error(s, "not_found", hash, "no viewer holds this content");
}

static void interest_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct gateway *gw = lws_container_of(t, struct gateway, interest_timer);
	interest_flush_throttled(gw);
	interest_expire_wants(gw);
	timer_arm(gw, &gw->interest_timer, interest_tick, INTEREST_TICK_MS);
}

void interest_start_timers(struct gateway *gw)
{
	timer_arm(gw, &gw->interest_timer, interest_tick, INTEREST_TICK_MS);
}

void interest_session_closed(struct gateway *gw, struct session *s)
{
	while (!LIST_EMPTY(&s->interests)) {
		struct interest *in = LIST_FIRST(&s->interests);
		interest_want_close(gw, in);
		in->holds = in->requested = in->verifying = 0;
		interest_settle(gw, in);
	}
}
