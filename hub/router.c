/*
 * router.c — turns wants into transfers: one fetch per hash, shared by everyone waiting for it.
 *
 * Owns fetch and waiter structs. For each fetch it asks one holder at a time: never a connection
 * that is itself waiting, never one already asked for this fetch, and the holder asked least
 * recently first (asked holders move to the back of the hash's line). A holder that declines,
 * lies, leaves or stays silent past hub.holder_timeout_ms is skipped and the next is asked; when
 * none is left every waiter gets NOT_FOUND. A blob that arrives for a hash nobody waits for any
 * more (a late answer) is dropped; one that arrives late while others still wait is used.
 */
#include "hub.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static void tq_remove(struct hub *hub, struct fetch *f)
{
	if (f->tprev)
		f->tprev->tnext = f->tnext;
	else if (hub->tq_head == f)
		hub->tq_head = f->tnext;
	if (f->tnext)
		f->tnext->tprev = f->tprev;
	else if (hub->tq_tail == f)
		hub->tq_tail = f->tprev;
	f->tnext = f->tprev = NULL;
}

/* Every attempt gets the same timeout, so appending keeps the queue sorted by deadline. */
static void tq_append(struct hub *hub, struct fetch *f)
{
	f->tprev = hub->tq_tail;
	f->tnext = NULL;
	if (hub->tq_tail)
		hub->tq_tail->tnext = f;
	else
		hub->tq_head = f;
	hub->tq_tail = f;
}

static int fetch_tried(const struct fetch *f, uint64_t key)
{
	for (size_t i = 0; i < f->ntried; i++)
		if (f->tried[i] == key)
			return 1;
	return 0;
}

static void fetch_mark_tried(struct fetch *f, uint64_t key)
{
	if (fetch_tried(f, key))
		return;
	if (f->ntried == f->captried) {
		size_t ncap = f->captried ? f->captried * 2 : 4;
		uint64_t *n = realloc(f->tried, ncap * sizeof(*n));
		if (n == NULL)
			return;
		f->tried = n;
		f->captried = ncap;
	}
	f->tried[f->ntried++] = key;
}

static struct waiter *fetch_waiter_of(const struct fetch *f, const struct conn *c)
{
	for (struct waiter *w = c->waits; w; w = w->cnext)
		if (w->f == f)
			return w;
	return NULL;
}

static void waiter_unlink(struct waiter *w)
{
	struct fetch *f = w->f;
	struct conn *c = w->c;
	if (w->fprev)
		w->fprev->fnext = w->fnext;
	else
		f->waiters = w->fnext;
	if (w->fnext)
		w->fnext->fprev = w->fprev;
	if (w->cprev)
		w->cprev->cnext = w->cnext;
	else
		c->waits = w->cnext;
	if (w->cnext)
		w->cnext->cprev = w->cprev;
	f->nwaiters--;
}

static void fetch_set_holder(struct fetch *f, struct conn *c)
{
	if (f->holder)
		f->holder->asked--;
	f->holder = c;
	if (c)
		c->asked++;
}

static void fetch_destroy(struct hub *hub, struct fetch *f)
{
	struct hashent *h = f->h;
	while (f->waiters) {
		struct waiter *w = f->waiters;
		registry_gw_ref(h, w->c->gw->slot, -1);
		waiter_unlink(w);
		free(w);
	}
	tq_remove(hub, f);
	fetch_set_holder(f, NULL);
	h->fetch = NULL;
	free(f->tried);
	free(f);
	registry_mark_dirty(hub, h); /* lets counts.c free the hash if nobody cares any more */
}

static void fetch_fail_all(struct hub *hub, struct fetch *f)
{
	for (struct waiter *w = f->waiters; w; w = w->fnext) {
		struct hubproto_out o = {.cmd = HUB_NOT_FOUND, .id = w->c->id, .hash = f->h->hash};
		link_send(hub, w->c->gw, &o);
		hub->stats.requests_failed++;
	}
	fetch_destroy(hub, f);
}

/*
 * The holder to ask next: not tried for this fetch, not itself waiting, and the one with the
 * fewest requests already waiting on it, earliest in the hash's line on a tie. Counting what
 * each connection is already asked for spreads one downloader's pieces over every holder,
 * whatever order they announced them in. The scan stops at an idle holder, or after
 * ROUTER_SCAN eligible ones on very popular hashes.
 */
#define ROUTER_SCAN 64
static struct holding *fetch_pick_holder(struct fetch *f)
{
	struct holding *best = NULL;
	int seen = 0;
	for (struct holding *hd = f->h->head; hd && seen < ROUTER_SCAN; hd = hd->hnext) {
		if (fetch_tried(f, hd->c->key) || fetch_waiter_of(f, hd->c))
			continue;
		seen++;
		if (best == NULL || hd->c->asked < best->c->asked)
			best = hd;
		if (best->c->asked == 0)
			break;
	}
	return best;
}

/* Asks the next eligible holder; fails every waiter when there is none. */
static void fetch_ask_next(struct hub *hub, struct fetch *f)
{
	struct hashent *h = f->h;
	struct holding *hd;
	fetch_set_holder(f, NULL);
	tq_remove(hub, f);
	while ((hd = fetch_pick_holder(f))) {
		struct conn *c = hd->c;
		fetch_mark_tried(f, c->key);
		struct hubproto_out o = {.cmd = HUB_REQUEST, .id = c->id, .hash = h->hash};
		if (link_send(hub, c->gw, &o) < 0)
			continue;
		/* To the back of the line: the next want of this hash asks someone else. */
		if (hd != h->tail) {
			if (hd->hprev)
				hd->hprev->hnext = hd->hnext;
			else
				h->head = hd->hnext;
			hd->hnext->hprev = hd->hprev;
			hd->hprev = h->tail;
			hd->hnext = NULL;
			h->tail->hnext = hd;
			h->tail = hd;
		}
		fetch_set_holder(f, c);
		f->deadline_ms = now_ms() + hub->holder_timeout_ms;
		tq_append(hub, f);
		return;
	}
	fetch_fail_all(hub, f);
}

void router_want(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN])
{
	struct hashent *h = registry_hash(hub, hash, 0);
	if (h && h->fetch && fetch_waiter_of(h->fetch, c))
		return; /* a second want of the same hash on one connection gets no second answer */
	hub->stats.requests_total++;
	if (h == NULL || h->viewers == 0 || (h->viewers == 1 && registry_holds(hub, c, hash))) {
		struct hubproto_out o = {.cmd = HUB_NOT_FOUND, .id = c->id, .hash = hash};
		link_send(hub, c->gw, &o);
		hub->stats.requests_failed++;
		return;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return;
	int fresh = 0;
	if (h->fetch == NULL) {
		h->fetch = calloc(1, sizeof(*h->fetch));
		if (h->fetch == NULL) {
			free(w);
			return;
		}
		h->fetch->h = h;
		fresh = 1;
	}
	struct fetch *f = h->fetch;
	w->f = f;
	w->c = c;
	w->fnext = f->waiters;
	if (f->waiters)
		f->waiters->fprev = w;
	f->waiters = w;
	w->cnext = c->waits;
	if (c->waits)
		c->waits->cprev = w;
	c->waits = w;
	f->nwaiters++;
	registry_gw_ref(h, c->gw->slot, 1);
	counts_queue(hub, c->gw, h);
	if (fresh)
		fetch_ask_next(hub, f);
}

void router_blob(struct hub *hub, struct conn *holder, const uint8_t hash[HASH_LEN],
		 zmq_msg_t *data, size_t len)
{
	struct hashent *h = registry_hash(hub, hash, 0);
	(void)holder;
	if (h == NULL || h->fetch == NULL)
		return; /* a late answer that nobody waits for any more */
	struct fetch *f = h->fetch;

	/* One DELIVER per gateway, naming all its waiting connections; the blob frame is shared,
	 * not copied, between them. Waiters are taken gateway by gateway off a scratch list. */
	uint8_t *list = malloc((size_t)f->nwaiters * 8);
	struct gateway **gws = malloc((size_t)f->nwaiters * sizeof(*gws));
	size_t ngws = 0;
	if (list == NULL || gws == NULL) {
		free(list);
		free(gws);
		return;
	}
	for (struct waiter *w = f->waiters; w; w = w->fnext) {
		size_t i = 0;
		while (i < ngws && gws[i] != w->c->gw)
			i++;
		if (i == ngws)
			gws[ngws++] = w->c->gw;
	}
	for (size_t g = 0; g < ngws; g++) {
		size_t n = 0;
		for (struct waiter *w = f->waiters; w; w = w->fnext)
			if (w->c->gw == gws[g])
				put_u64(list + 8 * n++, w->c->id);
		struct hubproto_out o = {.cmd = HUB_DELIVER,
					 .hash = hash,
					 .list = list,
					 .list_count = n,
					 .data_msg = data};
		if (link_send(hub, gws[g], &o) < 0)
			continue; /* logged by link_send */
		hub->stats.requests_served += n;
		hub->stats.bytes_relayed += (uint64_t)len * n;
	}
	free(list);
	free(gws);
	fetch_destroy(hub, f);
}

void router_fail(struct hub *hub, struct conn *holder, const uint8_t hash[HASH_LEN],
		 uint32_t reason)
{
	if (reason == HUB_FAIL_MISMATCH)
		hub->stats.hash_mismatches++;
	else if (reason == HUB_FAIL_DECLINED)
		hub->stats.declines++;
	struct hashent *h = registry_hash(hub, hash, 0);
	if (reason == HUB_FAIL_DECLINED || reason == HUB_FAIL_MISMATCH) {
		/* Dropping the claim also moves the fetch on if this holder was the one asked. */
		if (registry_remove_holder(hub, holder, hash))
			return;
	}
	if (h && h->fetch && h->fetch->holder == holder)
		fetch_ask_next(hub, h->fetch);
}

void router_holder_gone(struct hub *hub, struct hashent *h, struct conn *c)
{
	if (h->fetch && h->fetch->holder == c)
		fetch_ask_next(hub, h->fetch);
}

void router_cancel_waiter(struct hub *hub, struct waiter *w)
{
	struct fetch *f = w->f;
	registry_gw_ref(f->h, w->c->gw->slot, -1);
	waiter_unlink(w);
	free(w);
	if (f->nwaiters == 0)
		fetch_destroy(hub, f);
}

void router_expire(struct hub *hub, int64_t now)
{
	while (hub->tq_head && hub->tq_head->deadline_ms <= now) {
		struct fetch *f = hub->tq_head;
		hub->stats.holder_timeouts++;
		fetch_ask_next(hub, f);
	}
}

int64_t router_next_deadline(struct hub *hub)
{
	return hub->tq_head ? hub->tq_head->deadline_ms : -1;
}
