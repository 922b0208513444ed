/*
 * map.h — an open-addressing hash table of pointers, keyed by fixed-size bytes inside the values.
 *
 * The table stores pointers to the caller's structs and never owns them; each struct carries its
 * own key at a fixed offset (a raw SHA-256, a connection id, or both), so a lookup costs no
 * allocation. Linear probing with backward-shift deletion: no tombstones, so a table that churns
 * (connections coming and going all day) never degrades.
 */
#ifndef EPH_MAP_H
#define EPH_MAP_H

#include <stddef.h>
#include <stdint.h>

struct map {
	void **slots;
	uint64_t *hashes;
	size_t cap; /* power of two, or 0 before the first insert */
	size_t len;
	size_t key_off;
	size_t key_len;
};

void map_init(struct map *m, size_t key_off, size_t key_len);
void map_free(struct map *m); /* frees the table, not the values */
void *map_get(const struct map *m, const void *key);
/* Inserts val (its key must not be in the map yet). -1 on out of memory. */
int map_put(struct map *m, void *val);
/* Removes and returns the value with this key, or NULL. */
void *map_del(struct map *m, const void *key);
static inline size_t map_len(const struct map *m)
{
	return m->len;
}
/* Iteration: for (size_t i = 0; (v = map_next(m, &i));) — do not insert or delete meanwhile. */
void *map_next(const struct map *m, size_t *iter);

#endif
