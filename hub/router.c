/*
 * router.c — turns wants into transfers: one fetch per hash, shared by everyone waiting for it.
 * It decides everything about a transfer and never sees its bytes: the holder's gateway keeps
 * the verified blob and is told, per gateway, which connections wait for it (router_blob).
 *
 * Owns fetch, waiter and transfer structs (a transfer: a blob routed to its holder's gateway, kept
 * until that gateway reports it sent, so that its waiters can wait again if the gateway dies; a
 * blob whose waiters the BLOB says all have it needs none). A
 * REQUEST names the waiters the fetch has then (each marked with the holder asked, w->named), so
 * the holder's gateway gives them the blob the moment it verifies; the BLOB that answers that
 * holder serves them (after its timeout too: w->named_by), and its ROUTEs carry only the waiters
 * who joined since. For
 * each fetch it asks one holder at a time: never a connection that is itself waiting, never one
 * already asked for this fetch, and the holder asked least recently first (asked holders move to
 * the back of the hash's line). A holder that declines, lies, leaves or stays silent past
 * hub.holder_timeout_ms is skipped and the next is asked; when none is left every waiter gets
 * NOT_FOUND. A blob that arrives for a hash nobody waits for any more (a late answer) is dropped;
 * one that arrives late while others still wait is used.
 *
 * Sits above registry.c, which calls nothing here: a connection, a holding or a gateway goes
 * through router_conn_close, router_drop or router_gateway_remove, which let go of it here
 * before the registry removes it.
 */
#include "hub.h"
#include "log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void router_init(struct hub *hub)
{
	TAILQ_INIT(&hub->timeouts);
	LIST_INIT(&hub->transfers);
	map_init(&hub->transfer_keys, offsetof(struct transfer, key),
		 sizeof(((struct transfer *)0)->key));
}

static void transfer_free(struct hub *hub, struct transfer *t)
{
	LIST_REMOVE(t, entry);
	map_del(&hub->transfer_keys, t->key);
	free(t);
}

static void tq_remove(struct hub *hub, struct fetch *f)
{
	if (!f->queued)
		return;
	TAILQ_REMOVE(&hub->timeouts, f, tentry);
	f->queued = 0;
}

/* Every attempt gets the same timeout, so appending keeps the queue sorted by deadline. */
static void tq_append(struct hub *hub, struct fetch *f)
{
	TAILQ_INSERT_TAIL(&hub->timeouts, f, tentry);
	f->queued = 1;
}

static int fetch_tried(const struct fetch *f, uint64_t key)
{
	for (size_t i = 0; i < f->ntried; i++)
		if (f->tried[i] == key)
			return 1;
	return 0;
}

static int fetch_mark_tried(struct fetch *f, uint64_t key)
{
	if (fetch_tried(f, key))
		return 0;
	if (f->ntried == f->captried) {
		size_t ncap = f->captried ? f->captried * 2 : 4;
		uint64_t *n = realloc(f->tried, ncap * sizeof(*n));
		if (n == NULL)
			return -1;
		f->tried = n;
		f->captried = ncap;
	}
	f->tried[f->ntried++] = key;
	return 0;
}

/* The bit of waiter.named_by for holder key (its place among those tried), or 0 past 64. */
static uint64_t fetch_tried_bit(const struct fetch *f, uint64_t key)
{
	for (size_t i = 0; i < f->ntried && i < 64; i++)
		if (f->tried[i] == key)
			return 1ull << i;
	return 0;
}

static struct waiter *fetch_waiter_of(const struct fetch *f, const struct conn *c)
{
	struct waiter *w;
	LIST_FOREACH(w, &c->waits, centry)
	if (w->f == f)
		return w;
	return NULL;
}

static void waiter_unlink(struct waiter *w)
{
	LIST_REMOVE(w, fentry);
	LIST_REMOVE(w, centry);
	w->f->nwaiters--;
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
	while (!LIST_EMPTY(&f->waiters)) {
		struct waiter *w = LIST_FIRST(&f->waiters);
		registry_gw_ref(h, w->c->gw->slot, -1);
		waiter_unlink(w);
		free(w);
	}
	tq_remove(hub, f);
	fetch_set_holder(f, NULL);
	h->fetch = NULL;
	free(f->tried);
	free(f);
	/* The count did not change: a hash nobody holds or wants any more is only marked so that
	 * counts.c frees it after this turn (a COUNT to every gateway holding it, on every fetch's
	 * end, told nothing new). */
	if (h->ngws == 0)
		registry_mark_dirty(hub, h);
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

/* The waiters on gw leave the fetch (their ROUTE went out). */
static void fetch_release_gateway(struct fetch *f, struct gateway *gw)
{
	struct waiter *w = LIST_FIRST(&f->waiters);
	while (w) {
		struct waiter *next = LIST_NEXT(w, fentry);
		if (w->c->gw == gw) {
			registry_gw_ref(f->h, gw->slot, -1);
			waiter_unlink(w);
			free(w);
		}
		w = next;
	}
}

/* The waiters on gw get NOT_FOUND and leave the fetch. */
static void fetch_fail_gateway(struct hub *hub, struct fetch *f, struct gateway *gw)
{
	struct waiter *w;
	LIST_FOREACH(w, &f->waiters, fentry)
	{
		if (w->c->gw != gw)
			continue;
		struct hubproto_out o = {.cmd = HUB_NOT_FOUND, .id = w->c->id, .hash = f->h->hash};
		link_send(hub, gw, &o);
		hub->stats.requests_failed++;
		hub->stats.requests_served += w->again_of != 0;
	}
	fetch_release_gateway(f, gw);
}

static void fetch_fail_all(struct hub *hub, struct fetch *f)
{
	struct waiter *w;
	LIST_FOREACH(w, &f->waiters, fentry)
	{
		struct hubproto_out o = {.cmd = HUB_NOT_FOUND, .id = w->c->id, .hash = f->h->hash};
		link_send(hub, w->c->gw, &o);
		hub->stats.requests_failed++;
		hub->stats.requests_served += w->again_of != 0; /* (its first, served by name) */
	}
	fetch_destroy(hub, f);
}

/*
 * The holder to ask next: not tried for this fetch, not itself waiting, and the one with the
 * fewest requests already waiting on it; on a tie, one on the gateway of a waiter (the latest to
 * join: its blob then never leaves that gateway, no DELIVER hop, no copy over the network), then
 * the earliest in the hash's line. Counting what each connection is already asked
 * for spreads one downloader's pieces over every holder, whatever order they announced them in
 * and wherever they are. A gateway being removed is asked nothing. The scan stops at an idle
 * holder on the waiter's gateway, or after ROUTER_SCAN eligible ones on very popular hashes.
 */
#define ROUTER_SCAN 64
static int fetch_better_holder(const struct holding *hd, const struct holding *best,
			       const struct gateway *near)
{
	if (best == NULL || hd->c->asked < best->c->asked)
		return 1;
	return hd->c->asked == best->c->asked && hd->c->gw == near && best->c->gw != near;
}

static struct holding *fetch_pick_holder(struct fetch *f)
{
	struct holding *best = NULL, *hd;
	const struct waiter *first = LIST_FIRST(&f->waiters);
	const struct gateway *near = first ? first->c->gw : NULL;
	int seen = 0;
	TAILQ_FOREACH(hd, &f->h->holders, hentry)
	{
		if (seen >= ROUTER_SCAN)
			break;
		if (hd->c->gw->leaving || fetch_tried(f, hd->c->key) || fetch_waiter_of(f, hd->c))
			continue;
		seen++;
		if (fetch_better_holder(hd, best, near))
			best = hd;
		if (best->c->asked == 0 && best->c->gw == near)
			break;
	}
	return best;
}

static int gateway_listed(struct gateway *const *gws, size_t n, const struct gateway *gw)
{
	for (size_t i = 0; i < n; i++)
		if (gws[i] == gw)
			return 1;
	return 0;
}

/*
 * At the end of the turn that asked holder c (so every waiter that joined in it is named too):
 * puts the REQUEST entries asking c for f's hash, naming up to HUBPROTO_REQUEST_WAITERS of its
 * waiters, those on one gateway in a row, c's own last (as ROUTE), and none on a gateway
 * c's cannot reach. The named are marked with c, every other waiter unmarked: the BLOB that
 * answers c serves the marked, ROUTEs the rest. -1 when not even an entry naming nobody could be
 * queued.
 */
static int fetch_request(struct fetch *f, struct conn *c)
{
	struct gateway *gw = c->gw, *seen[2 * HUBPROTO_REQUEST_WAITERS];
	struct hubproto_routes *r = &gw->requests;
	size_t queued = r->list_len, named = 0, nseen = 0;
	uint64_t bit = fetch_tried_bit(f, c->key);
	struct waiter *w;
	LIST_FOREACH(w, &f->waiters, fentry)
	w->named = 0;
	while (named < HUBPROTO_REQUEST_WAITERS && nseen < sizeof(seen) / sizeof(seen[0])) {
		struct gateway *next = NULL;
		LIST_FOREACH(w, &f->waiters, fentry)
		if (!gateway_listed(seen, nseen, w->c->gw) && (next == NULL || next == gw))
			next = w->c->gw;
		if (next == NULL)
			break;
		seen[nseen++] = next;
		int peer = link_route_peer(gw, r, next);
		LIST_FOREACH(w, &f->waiters, fentry)
		{
			if (peer < 0 || named == HUBPROTO_REQUEST_WAITERS)
				break;
			if (w->c->gw != next)
				continue;
			if (link_route(gw, r, c->id, f->h->hash, w->c->id, peer) < 0) {
				/* Out of memory: nobody named, they all come by ROUTE. */
				r->list_len = queued;
				LIST_FOREACH(w, &f->waiters, fentry)
				{
					w->named = 0;
					w->named_by &= ~bit;
				}
				named = 0;
				goto unnamed;
			}
			w->named = c->key;
			w->named_by |= bit;
			named++;
		}
	}
unnamed:
	if (named == 0)
		return link_route(gw, &gw->requests, c->id, f->h->hash, 0, 0);
	return 0;
}

void router_name_waiters(struct hub *hub, struct gateway *gw)
{
	for (size_t off = 0; off < gw->asked_len; off += HUBPROTO_CONN_KEY_LEN) {
		const uint8_t *e = gw->asked + off;
		struct conn *c = registry_conn(hub, gw, get_u64(e), 0);
		struct hashent *h = registry_hash(hub, HUBPROTO_CONN_KEY_HASH(e), 0);
		struct fetch *f = h ? h->fetch : NULL;
		if (c == NULL || f == NULL || f->holder != c || !f->request_queued)
			continue; /* moved on in this turn, or asked twice in it */
		f->request_queued = 0;
		if (fetch_request(f, c) < 0) /* (its holder timeout moves it on) */
			log_warnx("%s: out of memory: a REQUEST entry lost", __func__);
	}
	gw->asked_len = 0;
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
		if (fetch_mark_tried(f, c->key) < 0) {
			/* An unmarked holder would be picked again for ever: out of memory, the
			 * waiters hear NOT_FOUND now. */
			log_warnx("%s: out of memory: %u waiters answered not_found", __func__,
				  (unsigned)f->nwaiters);
			break;
		}
		if (link_request(c->gw, c->id, h->hash) < 0)
			continue;
		f->request_queued = 1;
		registry_holder_asked(h, hd);
		fetch_set_holder(f, c);
		f->deadline_ms = now_ms() + hub->holder_timeout_ms;
		tq_append(hub, f);
		return;
	}
	fetch_fail_all(hub, f);
}

/* c waits for hash: joins its fetch (or starts one), or hears NOT_FOUND when nobody holds it. */
static void router_wait(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN])
{
	struct hashent *h = registry_hash(hub, hash, 0);
	if (h && h->fetch && fetch_waiter_of(h->fetch, c))
		return; /* a second want of the same hash on one connection gets no second answer */
	int nobody =
	    h == NULL || h->viewers == 0 || (h->viewers == 1 && registry_holds(hub, c, hash));
	struct waiter *w = nobody ? NULL : calloc(1, sizeof(*w));
	struct fetch *f = w == NULL ? NULL : h->fetch ? h->fetch : calloc(1, sizeof(*f));
	/* Out of memory is answered like nobody holding it: at once, and counted failed
	 * (requests_total = served + failed + open), never left to the want timeout. */
	if (f == NULL || registry_gw_ref(h, c->gw->slot, 1) < 0) {
		if (f != NULL && f != h->fetch)
			free(f);
		free(w);
		if (!nobody)
			log_warnx("%s: out of memory: a want answered not_found", __func__);
		struct hubproto_out o = {.cmd = HUB_NOT_FOUND, .id = c->id, .hash = hash};
		link_send(hub, c->gw, &o);
		hub->stats.requests_failed++;
		return;
	}
	int fresh = h->fetch == NULL;
	if (fresh) {
		f->h = h;
		h->fetch = f;
	}
	w->f = f;
	w->c = c;
	LIST_INSERT_HEAD(&f->waiters, w, fentry);
	LIST_INSERT_HEAD(&c->waits, w, centry);
	f->nwaiters++;
	counts_queue(c->gw, h);
	if (fresh)
		fetch_ask_next(hub, f);
}

void router_want(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN])
{
	struct hashent *h = registry_hash(hub, hash, 0);
	struct waiter *w = h && h->fetch ? fetch_waiter_of(h->fetch, c) : NULL;
	if (w && (w->named || w->named_by) && !w->again_of) {
		/* Named in a REQUEST (this fetch's latest, or one to a holder that timed out): that
		 * holder's gateway may have given it the blob already (its BLOB on the way here),
		 * and this is the next want of the same hash. It is counted, and the BLOB that
		 * served it leaves it waiting (router_blob). */
		w->again_of = w->named ? w->named : ROUTER_STALE;
		hub->stats.requests_total++;
	}
	if (w)
		return; /* counted once: requests_total = served + failed + open */
	hub->stats.requests_total++;
	router_wait(hub, c, hash);
}

/*
 * Routes a blob that a holder's gateway verified and keeps (as token), from its connection
 * holder: the waiters the REQUEST to that holder named (marked with it) have it already, and
 * join the transfer first; for each gateway with other waiters, ROUTE entries naming its waiting
 * connections and its peer address (its endpoint and, with CurveZMQ, its key; none for the holder's
 * own gateway, whose come last), all in this turn's ROUTE to the holder's gateway (link_route). The
 * gateway sends the bytes itself and reports what it delivered (DELIVERED) and whom it could not
 * reach (UNDELIVERED). The named waiters' deliveries come with the BLOB and are counted here; a
 * transfer is followed only while a DELIVERED is owed. Whatever happens, the settled mark of the
 * next REQUEST, ROUTE or COUNT to gw (gw->blobs_routed) lets the gateway free the blob after its
 * routes. Waiters whose entry cannot be queued stay in the fetch, which asks the next holder;
 * those of a ROUTE that cannot be sent wait again (router_unrouted).
 */
void router_blob(struct hub *hub, struct gateway *gw, uint64_t token, const uint8_t hash[HASH_LEN],
		 uint32_t size, uint64_t holder, uint32_t delivered)
{
	struct hashent *h = registry_hash(hub, hash, 0);
	struct fetch *f = h ? h->fetch : NULL;
	struct conn *by = registry_conn(hub, gw, holder, 0);
	struct waiter *w, *wnext;
	int more = (delivered & HUBPROTO_BLOB_MORE) != 0;
	delivered &= ~HUBPROTO_BLOB_MORE;
	if (token > gw->blobs_routed) /* (the next REQUEST, ROUTE or COUNT settles it) */
		gw->blobs_routed = token;
	if (f == NULL)
		return;
	struct gateway **gws = malloc((size_t)f->nwaiters * sizeof(*gws));
	struct transfer *t = malloc(sizeof(*t) + 2 * (size_t)f->nwaiters * sizeof(t->conns[0]));
	size_t ngws = 0;
	if (gws == NULL || t == NULL) {
		free(gws);
		free(t);
		/* Out of memory: the gateway lets the blob go, and the fetch moves on now rather
		 * than at its holder timeout (the next holder, or NOT_FOUND). */
		log_warnx("%s: out of memory: a blob not routed", __func__);
		fetch_ask_next(hub, f);
		return;
	}
	t->key[0] = token;
	t->key[1] = gw->slot;
	t->gw = gw;
	t->token = token;
	memcpy(t->hash, hash, HASH_LEN);
	t->size = size;
	t->nconns = 0;
	/* Named by any REQUEST to by, its latest or one that timed out: by's gateway gave them
	 * the blob as it verified it (a second copy by ROUTE could answer their next want). */
	uint64_t bit = by ? fetch_tried_bit(f, by->key) : 0;
	for (w = LIST_FIRST(&f->waiters); by && w; w = wnext) {
		wnext = LIST_NEXT(w, fentry);
		if (w->named != by->key && !(w->named_by & bit))
			continue;
		t->conns[t->nconns++] = w->c->key;
		if (w->again_of == by->key || (w->again_of && w->named != by->key)) {
			/* served by name (by by, as the timed-out one's stale list when it is not
			 * the holder named now), and wants it again: routed below */
			w->named = w->again_of = w->named_by = 0;
			continue;
		}
		if (w->again_of) /* its first want served by another holder's name */
			t->conns[t->nconns++] = w->c->key;
		registry_gw_ref(f->h, w->c->gw->slot, -1);
		waiter_unlink(w);
		free(w);
	}
	t->npre = t->nconns;
	/* What the gateway gave the named waiters is counted now (at most the waiters it holds);
	 * the rest come in a DELIVERED. Not final (HUBPROTO_BLOB_MORE), they are all counted with
	 * it: should the gateway be forgotten first, every named waiter waits again
	 * (transfer_rewait from owed_from, 0), and one counted here would be answered twice. */
	t->counted = more ? 0 : delivered < t->npre ? delivered : t->npre;
	t->surplus = delivered - (uint32_t)t->counted;
	t->owed_from = more ? 0 : t->npre;
	hub->stats.requests_served += t->counted;
	hub->stats.bytes_relayed += (uint64_t)size * t->counted;
	LIST_FOREACH(w, &f->waiters, fentry)
	{
		size_t i = 0;
		while (i < ngws && gws[i] != w->c->gw)
			i++;
		if (i == ngws)
			gws[ngws++] = w->c->gw;
	}
	for (size_t g = 0; g < ngws;) {
		if (gws[g] != gw && gws[g]->endpoint[0] == '\0') {
			/* A gateway that announced no peer endpoint cannot be reached: its
			 * waiters hear not_found now rather than at their want timeout. */
			log_warnx("%s: gateway %s has no peer endpoint", __func__, gws[g]->name);
			fetch_fail_gateway(hub, f, gws[g]);
			gws[g] = gws[--ngws];
		} else {
			g++;
		}
	}
	for (size_t g = 0; g + 1 < ngws; g++) {
		if (gws[g] == gw) {
			/* The holder's own waiters last: by then the gateway knows whether the
			 * frame went to a peer, and may write it to its clients in place if not. */
			gws[g] = gws[ngws - 1];
			gws[ngws - 1] = gw;
			break;
		}
	}
	for (size_t g = 0; g < ngws; g++) {
		int peer = link_route_peer(gw, &gw->routes, gws[g]), rc = peer < 0 ? -1 : 0;
		size_t queued = gw->routes.list_len;
		LIST_FOREACH(w, &f->waiters, fentry)
		if (rc == 0 && w->c->gw == gws[g])
			rc = link_route(gw, &gw->routes, token, hash, w->c->id, peer);
		if (rc < 0) {
			/* These waiters stay, the next holder is asked; the entries of a blob
			 * must be whole, so this gateway's go, and the routes queued before
			 * are all the blob has. */
			gw->routes.list_len = queued;
			break;
		}
		LIST_FOREACH(w, &f->waiters, fentry)
		{
			if (w->c->gw != gws[g])
				continue;
			t->conns[t->nconns++] = w->c->key;
			if (w->again_of) /* its first want served by another holder's name */
				t->conns[t->nconns++] = w->c->key;
		}
		fetch_release_gateway(f, gws[g]);
	}
	free(gws);
	/* Followed while a DELIVERED is owed: for routes, or named deliveries not final. */
	int owed = t->nconns > t->owed_from;
	if (owed && map_get(&hub->transfer_keys, t->key) == NULL &&
	    map_put(&hub->transfer_keys, t) == 0) {
		LIST_INSERT_HEAD(&hub->transfers, t, entry);
	} else {
		if (owed) /* out of memory, or a token the gateway used twice */
			log_warnx(
			    "%s: transfer %llu of gateway %s not followed: its figures are lost",
			    __func__, (unsigned long long)token, gw->name);
		free(t);
	}
	if (f->nwaiters == 0)
		fetch_destroy(hub, f);
	else
		fetch_ask_next(hub, f);
}

void router_delivered(struct hub *hub, struct gateway *gw, uint64_t token, uint32_t deliveries)
{
	uint64_t key[2] = {token, gw->slot};
	struct transfer *t = map_get(&hub->transfer_keys, key);
	if (t == NULL)
		return; /* routed by a hub before this one */
	/* At most the waiters it holds: a named waiter that left may have been sent the blob, and
	 * a stale list's copy may have answered a routed waiter's newer want. */
	uint64_t n = (uint64_t)deliveries + t->surplus;
	if (n > t->nconns - t->counted)
		n = t->nconns - t->counted;
	hub->stats.requests_served += n;
	hub->stats.bytes_relayed += (uint64_t)t->size * n;
	transfer_free(hub, t);
}

/* The transfer's waiters from its from-th on (but those on skip, which is going) wait again, from
 * the holders left; it keeps the others, and is freed if none. */
static void transfer_rewait(struct hub *hub, struct transfer *t, const struct gateway *skip,
			    size_t from)
{
	for (size_t i = from; i < t->nconns; i++) {
		struct conn *c = map_get(&hub->conns, &t->conns[i]);
		struct hashent *h = registry_hash(hub, t->hash, 0);
		if (c && c->gw != skip && !(h && h->fetch && fetch_waiter_of(h->fetch, c)))
			router_wait(hub, c, t->hash);
	}
	t->nconns = from;
	if (from <= t->owed_from) /* nothing owed any more */
		transfer_free(hub, t);
}

/* c is going: it waits for nothing, and the fetches that asked it ask the next holder. */
static void router_conn_leave(struct hub *hub, struct conn *c)
{
	while (!LIST_EMPTY(&c->waits))
		router_cancel_waiter(hub, LIST_FIRST(&c->waits));
	for (struct holding *hd = LIST_FIRST(&c->holdings); hd && c->asked;
	     hd = LIST_NEXT(hd, centry))
		if (hd->h->fetch && hd->h->fetch->holder == c)
			fetch_ask_next(hub, hd->h->fetch);
}

void router_conn_close(struct hub *hub, struct conn *c)
{
	router_conn_leave(hub, c);
	registry_conn_remove(hub, c);
}

int router_drop(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN])
{
	if (registry_remove_holder(hub, c, hash) == 0)
		return 0;
	struct hashent *h = registry_hash(hub, hash, 0); /* kept until the next count flush */
	if (h->fetch && h->fetch->holder == c)
		fetch_ask_next(hub, h->fetch);
	return 1;
}

/*
 * A gateway is going (silent, re-joined, or the hub stops): its connections leave every fetch,
 * and the waiters of blobs it was to send but never said it sent want them again, from the
 * holders that are left (or hear NOT_FOUND). Then the registry forgets it.
 */
void router_gateway_remove(struct hub *hub, struct gateway *gw)
{
	struct conn *c;
	size_t it = 0;
	link_forget_unsent(gw, "forgotten");
	gw->leaving = 1;
	while ((c = map_next(&hub->conns, &it)))
		if (c->gw == gw)
			router_conn_leave(hub, c);
	struct transfer *t, *next;
	for (t = LIST_FIRST(&hub->transfers); t; t = next) {
		next = LIST_NEXT(t, entry);
		if (t->gw == gw) /* (those BLOB said were given it have it) */
			transfer_rewait(hub, t, gw, t->owed_from);
	}
	registry_gateway_remove(hub, gw);
}

void router_free(struct hub *hub)
{
	while (hub->ngateways)
		router_gateway_remove(hub, hub->active[hub->ngateways - 1]);
	map_free(&hub->transfer_keys);
}

void router_undelivered(struct hub *hub, struct gateway *from, const uint8_t hash[HASH_LEN],
			const char *endpoint, const uint8_t *conns, size_t nconns)
{
	struct gateway *gw = *endpoint ? NULL : from;
	for (uint32_t i = 0; gw == NULL && i < hub->ngateways; i++)
		if (strcmp(hub->active[i]->endpoint, endpoint) == 0)
			gw = hub->active[i];
	if (gw == NULL)
		return; /* that gateway is gone, and its connections with it */
	log_info("%s: gateway %s could not deliver to %zu connections on %s", __func__, from->name,
		 nconns, gw->name);
	struct hashent *h = registry_hash(hub, hash, 0);
	for (size_t i = 0; i < nconns; i++) {
		struct conn *c = registry_conn(hub, gw, get_u64(conns + 8 * i), 0);
		if (c == NULL || (h && h->fetch && fetch_waiter_of(h->fetch, c)))
			continue; /* gone, or waiting again: a fetch of its own answers it */
		struct hubproto_out o = {.cmd = HUB_NOT_FOUND, .id = c->id, .hash = hash};
		link_send(hub, gw, &o);
		hub->stats.requests_failed++;
	}
}

void router_unrouted(struct hub *hub, struct gateway *gw, const uint8_t *entries, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = entries + i * HUBPROTO_ROUTE_ENTRY;
		uint64_t key[2] = {get_u64(e), gw->slot};
		struct transfer *t = map_get(&hub->transfer_keys, key);
		/* Those the REQUEST named have it: counted from BLOB, or (HUBPROTO_BLOB_MORE) in
		 * the DELIVERED the gateway sends when a later message settles the blob. */
		if (t)
			transfer_rewait(hub, t, NULL, t->npre);
	}
}

void router_fail(struct hub *hub, struct conn *holder, const uint8_t hash[HASH_LEN],
		 uint32_t reason)
{
	if (reason == HUB_FAIL_MISMATCH)
		hub->stats.hash_mismatches++;
	else if (reason == HUB_FAIL_DECLINED)
		hub->stats.declines++;
	/* Dropping the claim also moves the fetch on if this holder was the one asked. */
	if ((reason == HUB_FAIL_DECLINED || reason == HUB_FAIL_MISMATCH) &&
	    router_drop(hub, holder, hash))
		return;
	struct hashent *h = registry_hash(hub, hash, 0);
	if (h && h->fetch && h->fetch->holder == holder)
		fetch_ask_next(hub, h->fetch);
}

void router_unrequested(struct hub *hub, struct gateway *gw, const uint8_t *entries, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = entries + i * HUBPROTO_ROUTE_ENTRY;
		struct conn *c = registry_conn(hub, gw, get_u64(e), 0);
		struct hashent *h = registry_hash(hub, e + 8, 0);
		if (c == NULL || h == NULL || h->fetch == NULL || h->fetch->holder != c)
			continue;
		/* Its gateway names nobody for it: a late BLOB of c (an earlier fetch's request)
		 * serves none of these by name. */
		uint64_t bit = fetch_tried_bit(h->fetch, c->key);
		struct waiter *w;
		LIST_FOREACH(w, &h->fetch->waiters, fentry)
		w->named_by &= ~bit;
		fetch_ask_next(hub, h->fetch);
	}
}

void router_expire(struct hub *hub, int64_t now)
{
	struct fetch *f;
	while ((f = TAILQ_FIRST(&hub->timeouts)) && f->deadline_ms <= now) {
		hub->stats.holder_timeouts++;
		fetch_ask_next(hub, f);
	}
}

int64_t router_next_deadline(struct hub *hub)
{
	struct fetch *f = TAILQ_FIRST(&hub->timeouts);
	return f ? f->deadline_ms : -1;
}
