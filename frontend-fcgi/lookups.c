/*
 * lookups.c — the hub's recent answers about hashes, so that a link opened by thousands of people
 * at once costs the hub one question per frontend process and frontend.lookup_cache_ms.
 *
 * Owns a fixed table (LOOKUPS_SLOTS entries, direct-mapped on the hash: a collision replaces the
 * older entry) of (hash, viewers, expiry). An entry is used only until it expires; meanwhile the
 * hub tells of every change of the hash's count (a COUNT, see hub/watch.c), which
 * lookups_update() applies, so a cached "gone" never outlives a new holder. Never allocates after
 * lookups_init(). Called by frontend.c; tested by tests/unit/test_lookups.c.
 */
#include "frontend.h"

#include <stdlib.h>
#include <string.h>

struct lookup_entry {
	uint8_t hash[HASH_LEN];
	uint32_t viewers;
	int64_t expires_ms; /* 0: empty */
};

static struct lookup_entry *lookups_slot(const struct lookups *l, const uint8_t hash[HASH_LEN])
{
	/* The hash is a SHA-256 (or what a client made up): its bytes are already spread. */
	return &l->slots[get_u32(hash) & (LOOKUPS_SLOTS - 1)];
}

int lookups_init(struct lookups *l, int ttl_ms)
{
	l->ttl_ms = ttl_ms;
	l->slots = NULL;
	if (ttl_ms <= 0)
		return 0;
	l->slots = calloc(LOOKUPS_SLOTS, sizeof(*l->slots));
	return l->slots ? 0 : -1;
}

void lookups_free(struct lookups *l)
{
	free(l->slots);
	l->slots = NULL;
}

int lookups_get(const struct lookups *l, const uint8_t hash[HASH_LEN], int64_t now,
		uint32_t *viewers)
{
	if (l->slots == NULL)
		return 0;
	const struct lookup_entry *e = lookups_slot(l, hash);
	if (e->expires_ms <= now || memcmp(e->hash, hash, HASH_LEN) != 0)
		return 0;
	*viewers = e->viewers;
	return 1;
}

void lookups_put(struct lookups *l, const uint8_t hash[HASH_LEN], uint32_t viewers, int64_t now)
{
	if (l->slots == NULL)
		return;
	struct lookup_entry *e = lookups_slot(l, hash);
	memcpy(e->hash, hash, HASH_LEN);
	e->viewers = viewers;
	e->expires_ms = now + l->ttl_ms;
}

void lookups_update(struct lookups *l, const uint8_t hash[HASH_LEN], uint32_t viewers)
{
	if (l->slots == NULL)
		return;
	struct lookup_entry *e = lookups_slot(l, hash);
	if (e->expires_ms != 0 && memcmp(e->hash, hash, HASH_LEN) == 0)
		e->viewers = viewers;
}
