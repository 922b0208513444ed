/*
 * map.c — open addressing with linear probing; see map.h for the contract.
 */
#include "map.h"

#include <stdlib.h>
#include <string.h>

static uint64_t map_hash(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 0x243F6A8885A308D3ull ^ len;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9E3779B97F4A7C15ull;
		h ^= h >> 29;
		p += 8;
		len -= 8;
	}
	while (len--) {
		h = (h ^ *p++) * 0x100000001B3ull;
	}
	h ^= h >> 32;
	h *= 0xD6E8FEB86659FD93ull;
	h ^= h >> 32;
	return h;
}

void map_init(struct map *m, size_t key_off, size_t key_len)
{
	memset(m, 0, sizeof(*m));
	m->key_off = key_off;
	m->key_len = key_len;
}

void map_free(struct map *m)
{
	free(m->slots);
	free(m->hashes);
	m->slots = NULL;
	m->hashes = NULL;
	m->cap = m->len = 0;
}

static const void *map_key(const struct map *m, const void *val)
{
	return (const uint8_t *)val + m->key_off;
}

void *map_get(const struct map *m, const void *key)
{
	if (m->len == 0)
		return NULL;
	uint64_t h = map_hash(key, m->key_len);
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		void *v = m->slots[i];
		if (v == NULL)
			return NULL;
		if (m->hashes[i] == h && memcmp(map_key(m, v), key, m->key_len) == 0)
			return v;
	}
}

static void map_place(struct map *m, void *val, uint64_t h)
{
	size_t mask = m->cap - 1;
	size_t i = h & mask;
	while (m->slots[i] != NULL)
		i = (i + 1) & mask;
	m->slots[i] = val;
	m->hashes[i] = h;
}

static int map_grow(struct map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16;
	void **oslots = m->slots;
	uint64_t *ohashes = m->hashes;
	size_t ocap = m->cap;
	void **slots = calloc(ncap, sizeof(*slots));
	uint64_t *hashes = calloc(ncap, sizeof(*hashes));
	if (slots == NULL || hashes == NULL) {
		free(slots);
		free(hashes);
		return -1;
	}
	m->slots = slots;
	m->hashes = hashes;
	m->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (oslots[i])
			map_place(m, oslots[i], ohashes[i]);
	free(oslots);
	free(ohashes);
	return 0;
}

int map_put(struct map *m, void *val)
{
	/* Keep the load at or below 3/4 so probes stay short. */
	if ((m->len + 1) * 4 > m->cap * 3 && map_grow(m) < 0)
		return -1;
	map_place(m, val, map_hash(map_key(m, val), m->key_len));
	m->len++;
	return 0;
}

void *map_del(struct map *m, const void *key)
{
	if (m->len == 0)
		return NULL;
	uint64_t h = map_hash(key, m->key_len);
	size_t mask = m->cap - 1;
	size_t i = h & mask;
	for (;; i = (i + 1) & mask) {
		void *v = m->slots[i];
		if (v == NULL)
			return NULL;
		if (m->hashes[i] == h && memcmp(map_key(m, v), key, m->key_len) == 0)
			break;
	}
	void *found = m->slots[i];
	/* Backward-shift: move later entries of the same probe run into the hole. */
	size_t hole = i;
	for (size_t j = (i + 1) & mask; m->slots[j] != NULL; j = (j + 1) & mask) {
		size_t home = m->hashes[j] & mask;
		/* Entry j may fill the hole unless its home lies cyclically in (hole, j]. */
		int movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
		if (movable) {
			m->slots[hole] = m->slots[j];
			m->hashes[hole] = m->hashes[j];
			hole = j;
		}
	}
	m->slots[hole] = NULL;
	m->hashes[hole] = 0;
	m->len--;
	return found;
}

void *map_next(const struct map *m, size_t *iter)
{
	while (*iter < m->cap) {
		void *v = m->slots[(*iter)++];
		if (v)
			return v;
	}
	return NULL;
}
