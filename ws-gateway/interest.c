/*
 * interest.c — what each connection does with each hash, and the viewer counts it is owed.
 *
 * Owns interest and hashsub structs. An interest exists while its connection holds the hash,
 * wants it, or was asked for it by the hub; interest_settle() frees it once none is true. Counts
 * from the hub go to every connection holding or wanting the hash, at most 4 a second per
 * connection and hash: a value that comes too soon waits on the throttle list, and only the
 * newest waiting value is sent, so the last value always arrives. Open wants are kept oldest
 * first so that a want the hub never answers ends in not_found (gateway.want_timeout_ms).
 */
#include "gateway.h"
#include "log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define COUNT_INTERVAL_MS 250

static void interest_key(uint8_t key[8 + HASH_LEN], uint64_t id, const uint8_t *hash)
{
	memcpy(key, &id, 8);
	memcpy(key + 8, hash, HASH_LEN);
}

struct interest *interest_get(struct gateway *gw, struct session *s, const uint8_t *hash,
			      int create)
{
	uint8_t key[8 + HASH_LEN];
	interest_key(key, s->id, hash);
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
		if (hs->head == NULL) {
			map_del(&gw->hashsubs, hash);
			free(hs);
		}
		return NULL;
	}
	in->s = s;
	in->hs = hs;
	in->last_count = -1;
	in->pending_count = -1;
	in->snext = s->interests;
	if (s->interests)
		s->interests->sprev = in;
	s->interests = in;
	in->hnext = hs->head;
	if (hs->head)
		hs->head->hprev = in;
	hs->head = in;
	return in;
}

static void throttle_remove(struct gateway *gw, struct interest *in)
{
	if (!in->in_throttle)
		return;
	if (in->tprev)
		in->tprev->tnext = in->tnext;
	else
		gw->throttle_head = in->tnext;
	if (in->tnext)
		in->tnext->tprev = in->tprev;
	in->tnext = in->tprev = NULL;
	in->in_throttle = 0;
	in->pending_count = -1;
}

void interest_want_open(struct gateway *gw, struct interest *in)
{
	in->wants = 1;
	in->s->nwants++;
	in->want_deadline = now_ms() + gw->want_timeout_ms;
	in->wprev = gw->wants_tail;
	in->wnext = NULL;
	if (gw->wants_tail)
		gw->wants_tail->wnext = in;
	else
		gw->wants_head = in;
	gw->wants_tail = in;
}

void interest_want_close(struct gateway *gw, struct interest *in)
{
	if (!in->wants)
		return;
	if (in->wprev)
		in->wprev->wnext = in->wnext;
	else
		gw->wants_head = in->wnext;
	if (in->wnext)
		in->wnext->wprev = in->wprev;
	else
		gw->wants_tail = in->wprev;
	in->wnext = in->wprev = NULL;
	in->wants = 0;
	in->s->nwants--;
	if (in->deferred) {
		in->deferred = 0;
		in->s->ndeferred--;
	}
}

void interest_settle(struct gateway *gw, struct interest *in)
{
	if (in->holds || in->wants || in->requested || in->verifying)
		return;
	throttle_remove(gw, in);
	struct session *s = in->s;
	struct hashsub *hs = in->hs;
	if (in->sprev)
		in->sprev->snext = in->snext;
	else
		s->interests = in->snext;
	if (in->snext)
		in->snext->sprev = in->sprev;
	if (in->hprev)
		in->hprev->hnext = in->hnext;
	else
		hs->head = in->hnext;
	if (in->hnext)
		in->hnext->hprev = in->hprev;
	map_del(&gw->interests, in->key);
	free(in);
	if (hs->head == NULL) {
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

void interest_count(struct gateway *gw, const uint8_t *hash, uint32_t viewers)
{
	struct hashsub *hs = map_get(&gw->hashsubs, hash);
	int64_t now = now_ms();
	if (hs == NULL)
		return;
	for (struct interest *in = hs->head; in; in = in->hnext) {
		if (!in->holds && !in->wants)
			continue;
		if (in->last_count == viewers && !in->in_throttle)
			continue;
		if (in->last_count < 0 || now - in->last_sent_ms >= COUNT_INTERVAL_MS) {
			throttle_remove(gw, in);
			interest_send_count(in, viewers, now);
			continue;
		}
		in->pending_count = viewers;
		if (!in->in_throttle) {
			in->in_throttle = 1;
			in->tprev = NULL;
			in->tnext = gw->throttle_head;
			if (gw->throttle_head)
				gw->throttle_head->tprev = in;
			gw->throttle_head = in;
		}
	}
}

void interest_flush_throttled(struct gateway *gw)
{
	int64_t now = now_ms();
	struct interest *in = gw->throttle_head, *next;
	for (; in; in = next) {
		next = in->tnext;
		if (now - in->last_sent_ms < COUNT_INTERVAL_MS)
			continue;
		int64_t v = in->pending_count;
		throttle_remove(gw, in);
		if (v >= 0 && v != in->last_count && (in->holds || in->wants))
			interest_send_count(in, v, now);
	}
}

void interest_expire_wants(struct gateway *gw)
{
	int64_t now = now_ms();
	while (gw->wants_head && gw->wants_head->want_deadline <= now) {
		struct interest *in = gw->wants_head;
		interest_want_close(gw, in);
		session_send_error(in->s, "not_found", in->hs->hash, "no holder answered in time");
		interest_settle(gw, in);
	}
}

void interest_session_closed(struct gateway *gw, struct session *s)
{
	while (s->interests) {
		struct interest *in = s->interests;
		interest_want_close(gw, in);
		in->holds = in->requested = in->verifying = 0;
		interest_settle(gw, in);
	}
}
