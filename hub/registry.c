/*
 * registry.c — who holds what: gateways, their connections, hashes and holdings.
 *
 * Owns every gateway, conn, hashent and holding struct; nothing else allocates or frees them.
 * A holding sits in two lists at once (the hash's holders, the connection's holdings) so adding,
 * dropping and forgetting a whole connection are all proportional to what changes. Every change
 * of a hash's viewer count marks the hash dirty; counts.c tells the interested gateways later
 * and asks registry_hash_release() to free the entry once nobody holds, wants or watches it.
 * This module sends nothing and calls no module above it: router.c lets go of a connection, a
 * holding or a gateway (router_conn_close, router_drop, router_gateway_remove) before it is
 * removed here, so the waits hung on a connection are always empty when it is freed.
 */
#include "hub.h"
#include "log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void registry_init(struct hub *hub)
{
	map_init(&hub->gw_by_instance, offsetof(struct gateway, instance), sizeof(uint64_t));
	map_init(&hub->conns, offsetof(struct conn, key), sizeof(uint64_t));
	map_init(&hub->hashes, offsetof(struct hashent, hash), HASH_LEN);
	map_init(&hub->holdings, offsetof(struct holding, key), sizeof(((struct holding *)0)->key));
}

/* After router_free(): nothing waits any more. */
void registry_free(struct hub *hub)
{
	while (hub->ngateways)
		registry_gateway_remove(hub, hub->active[hub->ngateways - 1]);
	size_t it = 0;
	struct hashent *h;
	while ((h = map_next(&hub->hashes, &it))) {
		free(h->gws);
		free(h);
	}
	SLIST_INIT(&hub->dirty);
	map_free(&hub->gw_by_instance);
	map_free(&hub->conns);
	map_free(&hub->hashes);
	map_free(&hub->holdings);
}

struct gateway *registry_gateway_by_peer(struct hub *hub, const uint8_t *peer, size_t len)
{
	/* Few gateways (one per few thousand connections): a scan is cheaper than a map. */
	for (uint32_t i = 0; i < hub->ngateways; i++) {
		struct gateway *gw = hub->active[i];
		if (gw->peer_len == len && memcmp(gw->peer, peer, len) == 0)
			return gw;
	}
	return NULL;
}

struct gateway *registry_gateway_find(struct hub *hub, const uint8_t *peer, size_t peer_len,
				      uint64_t instance)
{
	struct gateway *gw = map_get(&hub->gw_by_instance, &instance);
	return gw ? gw : registry_gateway_by_peer(hub, peer, peer_len);
}

struct gateway *registry_gateway_join(struct hub *hub, const uint8_t *peer, size_t peer_len,
				      uint64_t instance, const char *name, size_t name_len)
{
	struct gateway *gw;
	int slot = -1;
	for (int i = 0; i < HUB_MAX_GATEWAYS; i++) {
		if (hub->gateways[i] == NULL) {
			slot = i;
			break;
		}
	}
	if (slot < 0) {
		log_warnx("%s: no room for another gateway", __func__);
		return NULL;
	}
	gw = calloc(1, sizeof(*gw));
	if (gw == NULL)
		return NULL;
	gw->slot = (uint16_t)slot;
	memcpy(gw->peer, peer, peer_len);
	gw->peer_len = peer_len;
	gw->instance = instance;
	if (name_len > sizeof(gw->name) - 1)
		name_len = sizeof(gw->name) - 1;
	for (size_t i = 0; i < name_len; i++) {
		char ch = name[i];
		gw->name[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
	}
	if (name_len == 0)
		snprintf(gw->name, sizeof(gw->name), "gw%d", slot);
	if (map_put(&hub->gw_by_instance, gw) < 0) {
		free(gw);
		return NULL;
	}
	hub->gateways[slot] = gw;
	gw->active_index = hub->ngateways;
	hub->active[hub->ngateways++] = gw;
	log_info("gateway %s joined (slot %d)", gw->name, slot);
	return gw;
}

/* Connections removed per scan of the connection map in registry_gateway_remove(). */
#define REGISTRY_REMOVE_BATCH 256

void registry_gateway_remove(struct hub *hub, struct gateway *gw)
{
	/* Connections are found through the global map: a gateway's are those with its slot.
	 * They are gathered into a fixed batch (the map may not change while it is walked) and
	 * the walk repeats until none is left: removing a gateway never needs memory, so no
	 * connection can outlive its gateway. */
	struct conn *doomed[REGISTRY_REMOVE_BATCH];
	size_t n;
	do {
		size_t it = 0;
		struct conn *c;
		n = 0;
		while (n < REGISTRY_REMOVE_BATCH && (c = map_next(&hub->conns, &it)))
			if (c->gw == gw)
				doomed[n++] = c;
		for (size_t i = 0; i < n; i++)
			registry_conn_remove(hub, doomed[i]);
	} while (n == REGISTRY_REMOVE_BATCH);
	map_del(&hub->gw_by_instance, &gw->instance);
	hub->gateways[gw->slot] = NULL;
	struct gateway *last = hub->active[--hub->ngateways];
	hub->active[gw->active_index] = last;
	last->active_index = gw->active_index;
	free(gw->counts);
	free(gw->asked);
	hubproto_routes_free(&gw->requests);
	hubproto_routes_free(&gw->routes);
	free(gw);
}

struct conn *registry_conn(struct hub *hub, struct gateway *gw, uint64_t id, int create)
{
	if (!HUB_CONN_ID_VALID(id))
		return NULL;
	uint64_t key = (uint64_t)gw->slot << 48 | id;
	struct conn *c = map_get(&hub->conns, &key);
	if (c || !create)
		return c;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->key = key;
	c->gw = gw;
	c->id = id;
	if (map_put(&hub->conns, c) < 0) {
		free(c);
		return NULL;
	}
	hub->nconns++;
	gw->connections++;
	return c;
}

void registry_conn_remove(struct hub *hub, struct conn *c)
{
	while (!LIST_EMPTY(&c->holdings))
		registry_remove_holder(hub, c, LIST_FIRST(&c->holdings)->h->hash);
	map_del(&hub->conns, &c->key);
	hub->nconns--;
	c->gw->connections--;
	free(c);
}

struct hashent *registry_hash(struct hub *hub, const uint8_t hash[HASH_LEN], int create)
{
	struct hashent *h = map_get(&hub->hashes, hash);
	if (h || !create)
		return h;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	memcpy(h->hash, hash, HASH_LEN);
	TAILQ_INIT(&h->holders);
	if (map_put(&hub->hashes, h) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

void registry_hash_release(struct hub *hub, struct hashent *h)
{
	if (h->viewers || h->fetch || h->ngws || h->dirty)
		return;
	map_del(&hub->hashes, h->hash);
	free(h->gws);
	free(h);
}

int registry_gw_ref(struct hashent *h, uint16_t slot, int delta)
{
	for (uint16_t i = 0; i < h->ngws; i++) {
		if (h->gws[i].slot != slot)
			continue;
		h->gws[i].refs = (uint32_t)((int64_t)h->gws[i].refs + delta);
		if (h->gws[i].refs == 0)
			h->gws[i] = h->gws[--h->ngws];
		return 0;
	}
	if (delta <= 0)
		return 0;
	if (h->ngws == h->capgws) {
		uint16_t ncap = h->capgws ? (uint16_t)(h->capgws * 2) : 2;
		struct gwref *n = realloc(h->gws, ncap * sizeof(*n));
		if (n == NULL)
			return -1;
		h->gws = n;
		h->capgws = ncap;
	}
	h->gws[h->ngws++] = (struct gwref){slot, (uint32_t)delta};
	return 0;
}

void registry_mark_dirty(struct hub *hub, struct hashent *h)
{
	if (h->dirty)
		return;
	h->dirty = 1;
	SLIST_INSERT_HEAD(&hub->dirty, h, dirty_entry);
}

int registry_holds(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN])
{
	uint8_t key[HUBPROTO_CONN_KEY_LEN];
	hubproto_conn_key(key, c->key, hash);
	return map_get(&hub->holdings, key) != NULL;
}

int registry_add_holder(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN])
{
	uint8_t key[HUBPROTO_CONN_KEY_LEN];
	hubproto_conn_key(key, c->key, hash);
	if (map_get(&hub->holdings, key))
		return 0;
	struct hashent *h = registry_hash(hub, hash, 1);
	if (h == NULL)
		return -1;
	struct holding *hd = calloc(1, sizeof(*hd));
	if (hd == NULL)
		goto fail;
	memcpy(hd->key, key, sizeof(key));
	hd->h = h;
	hd->c = c;
	if (registry_gw_ref(h, c->gw->slot, 1) < 0)
		goto fail;
	if (map_put(&hub->holdings, hd) < 0) {
		registry_gw_ref(h, c->gw->slot, -1);
		goto fail;
	}
	/* New holders go first: they have served least, which spreads load off the sharer. */
	TAILQ_INSERT_HEAD(&h->holders, hd, hentry);
	LIST_INSERT_HEAD(&c->holdings, hd, centry);
	c->nholdings++;
	c->gw->holdings++;
	hub->nholdings++;
	if (h->viewers++ == 0)
		hub->nhashes_held++;
	registry_mark_dirty(hub, h);
	return 1;

fail:
	/* Out of memory: nothing changed, except maybe an entry just made for this hash; the
	 * next flush frees it if nobody holds, wants or watches it. */
	free(hd);
	if (h->viewers == 0)
		registry_mark_dirty(hub, h);
	return -1;
}

int registry_remove_holder(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN])
{
	uint8_t key[HUBPROTO_CONN_KEY_LEN];
	hubproto_conn_key(key, c->key, hash);
	struct holding *hd = map_del(&hub->holdings, key);
	if (hd == NULL)
		return 0;
	struct hashent *h = hd->h;
	TAILQ_REMOVE(&h->holders, hd, hentry);
	LIST_REMOVE(hd, centry);
	free(hd);
	c->nholdings--;
	c->gw->holdings--;
	hub->nholdings--;
	if (--h->viewers == 0)
		hub->nhashes_held--;
	registry_gw_ref(h, c->gw->slot, -1);
	registry_mark_dirty(hub, h);
	return 1;
}

void registry_holder_asked(struct hashent *h, struct holding *hd)
{
	/* To the back of the line: the next want of this hash asks someone else. */
	TAILQ_REMOVE(&h->holders, hd, hentry);
	TAILQ_INSERT_TAIL(&h->holders, hd, hentry);
}

uint32_t registry_viewers(struct hub *hub, const uint8_t hash[HASH_LEN])
{
	struct hashent *h = map_get(&hub->hashes, hash);
	return h ? h->viewers : 0;
}
