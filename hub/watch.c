/*
 * watch.c — tells frontends at once when the count of a hash they looked up recently changes.
 *
 * A frontend keeps the hub's answers for a moment (frontend.lookup_cache_ms) and asks, in its
 * LOOKUP's value, to hear of changes for that long. This module remembers such hashes (a watch,
 * until its time is up) and the frontends that asked (by routing id); once per turn of the loop,
 * counts_flush() hands it the hashes whose count changed, and every frontend that asked anything
 * within its watch time gets one COUNT listing the watched ones among them (the same batching
 * gateways get). So a cached answer is never older than the hub's count: a cached "gone" never
 * outlives a new holder, nor a cached "held" its last one. Expired watches and frontends are
 * swept at most once a second, on a lookup; their number is bounded by the lookup rate times
 * WATCH_MAX_MS, and frontends by WATCH_MAX_FRONTENDS. Owns struct watch and struct watcher;
 * called by link.c (LOOKUP) and counts.c.
 */
#include "hub.h"
#include "log.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct watch {
	uint8_t hash[HASH_LEN];
	int64_t until_ms;
	uint32_t viewers; /* as last told (the lookup that began the watch, or a flush) */
};

/* A frontend process: its DEALER's routing id, and the COUNT entries batched for it. */
struct watcher {
	uint8_t peer[HUBPROTO_MAX_PEER];
	size_t peer_len;
	int64_t until_ms;
	uint8_t *counts;
	size_t counts_len, counts_cap;
	LIST_ENTRY(watcher) link;
};

void watch_init(struct hub *hub)
{
	map_init(&hub->watches, offsetof(struct watch, hash), HASH_LEN);
	LIST_INIT(&hub->watchers);
}

static void watcher_free(struct hub *hub, struct watcher *w)
{
	LIST_REMOVE(w, link);
	hub->nwatchers--;
	free(w->counts);
	free(w);
}

void watch_free(struct hub *hub)
{
	struct watch *w;
	for (size_t i = 0; (w = map_next(&hub->watches, &i));)
		free(w);
	map_free(&hub->watches);
	while (!LIST_EMPTY(&hub->watchers))
		watcher_free(hub, LIST_FIRST(&hub->watchers));
}

/* Forgets watches and frontends whose time is up. */
static void watch_expire(struct hub *hub, int64_t now)
{
	struct watcher *fe, *next;
	for (fe = LIST_FIRST(&hub->watchers); fe; fe = next) {
		next = LIST_NEXT(fe, link);
		if (fe->until_ms < now)
			watcher_free(hub, fe);
	}
	/* map_next() must not run across a deletion: collect a batch, delete it, go again. */
	struct watch *batch[256], *w;
	size_t n;
	do {
		n = 0;
		for (size_t i = 0; n < 256 && (w = map_next(&hub->watches, &i));)
			if (w->until_ms < now)
				batch[n++] = w;
		for (size_t k = 0; k < n; k++)
			free(map_del(&hub->watches, batch[k]->hash));
	} while (n == 256);
	hub->watch_sweep_ms = now + WATCH_SWEEP_MS;
}

/* A watch that could not be kept: the frontend's cache may then lag by up to its lifetime.
 * Logged at most once a minute, not at the lookup rate. */
static void watch_warn(struct hub *hub, int64_t now, const char *why)
{
	if (now < hub->watch_warned_ms)
		return;
	log_warnx("watch: %s: frontends' cached answers may lag by up to their lifetime", why);
	hub->watch_warned_ms = now + WATCH_WARN_MS;
}

void watch_lookup(struct hub *hub, const uint8_t *peer, size_t peer_len,
		  const uint8_t hash[HASH_LEN], uint32_t watch_ms, uint32_t viewers)
{
	if (watch_ms == 0)
		return;
	int64_t now = now_ms();
	if (now >= hub->watch_sweep_ms)
		watch_expire(hub, now);
	int64_t until = now + (watch_ms < WATCH_MAX_MS ? watch_ms : WATCH_MAX_MS);

	struct watcher *fe;
	LIST_FOREACH(fe, &hub->watchers, link)
	{
		if (fe->peer_len == peer_len && memcmp(fe->peer, peer, peer_len) == 0)
			break;
	}
	if (fe == NULL) {
		if (hub->nwatchers >= WATCH_MAX_FRONTENDS ||
		    (fe = calloc(1, sizeof(*fe))) == NULL) {
			watch_warn(hub, now, "cannot follow one more frontend");
			return;
		}
		memcpy(fe->peer, peer, peer_len);
		fe->peer_len = peer_len;
		LIST_INSERT_HEAD(&hub->watchers, fe, link);
		hub->nwatchers++;
	}
	if (fe->until_ms < until)
		fe->until_ms = until;

	struct watch *w = map_get(&hub->watches, hash);
	if (w == NULL) {
		w = calloc(1, sizeof(*w));
		if (w)
			memcpy(w->hash, hash, HASH_LEN);
		if (w == NULL || map_put(&hub->watches, w) < 0) {
			free(w);
			watch_warn(hub, now, "out of memory");
			return;
		}
		w->viewers = viewers;
	}
	if (w->until_ms < until)
		w->until_ms = until;
}

static void watch_queue(struct watcher *fe, const uint8_t hash[HASH_LEN], uint32_t viewers)
{
	hubproto_count_put(&fe->counts, &fe->counts_len, &fe->counts_cap, hash, viewers);
}

void watch_changed(struct hub *hub, const struct hashent *h)
{
	if (map_len(&hub->watches) == 0)
		return;
	struct watch *w = map_get(&hub->watches, h->hash);
	if (w == NULL || w->viewers == h->viewers)
		return;
	w->viewers = h->viewers;
	int64_t now = now_ms();
	if (w->until_ms < now)
		return; /* swept on a later lookup */
	struct watcher *fe;
	LIST_FOREACH(fe, &hub->watchers, link)
	{
		if (fe->until_ms >= now)
			watch_queue(fe, h->hash, h->viewers);
	}
}

void watch_flush(struct hub *hub)
{
	struct watcher *fe;
	LIST_FOREACH(fe, &hub->watchers, link)
	{
		if (fe->counts_len == 0)
			continue;
		struct hubproto_out o = {.cmd = HUB_COUNT,
					 .list = fe->counts,
					 .list_count = fe->counts_len / HUBPROTO_COUNT_ENTRY};
		if (hubproto_send(hub->router, fe->peer, fe->peer_len, &o) < 0)
			log_debug("%s: a frontend takes no COUNT: %s", __func__,
				  zmq_strerror(errno));
		fe->counts_len = 0;
	}
}
