/*
 * test_map.c — the open-addressing table, checked against a plain array as the model.
 *
 * Backward-shift deletion is the delicate part: removing an entry from the middle of a probe run
 * (also one that wraps around the end of the table) must leave every other entry reachable.
 * Small tables with many random operations hit those cases thousands of times; a large one
 * checks growth and lookups at scale.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "map.h"

struct item {
	uint32_t tag; /* keeps the key away from offset 0 */
	uint64_t key;
	int in_map;
	int seen;
};

/* A different key layout: 36 bytes (hash + u32), so map_hash also takes its byte-wise tail. */
struct wide {
	char pad[5];
	uint8_t key[36];
	int in_map;
	int seen;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* splitmix64: a bijection of the counter, so successive outputs never repeat */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void check_all(struct map *m, struct item *items, size_t n)
{
	size_t expect = 0;
	for (size_t i = 0; i < n; i++) {
		void *got = map_get(m, &items[i].key);
		if (items[i].in_map) {
			expect++;
			if (got != &items[i])
				fail_msg("key %zu (%llx) not found", i,
					 (unsigned long long)items[i].key);
		} else if (got != NULL) {
			fail_msg("deleted key %zu (%llx) still found", i,
				 (unsigned long long)items[i].key);
		}
	}
	assert_int_equal(map_len(m), expect);
}

static void check_iteration(struct map *m, struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		items[i].seen = 0;
	size_t it = 0, visited = 0;
	struct item *v;
	while ((v = map_next(m, &it))) {
		assert_true(v >= items && v < items + n);
		assert_true(v->in_map);
		assert_int_equal(v->seen, 0);
		v->seen = 1;
		visited++;
	}
	assert_int_equal(visited, map_len(m));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(items[i].seen, items[i].in_map);
}

static void test_empty(void **state)
{
	(void)state;
	struct map m;
	uint64_t key = 1;
	size_t it = 0;
	map_init(&m, offsetof(struct item, key), sizeof(uint64_t));
	assert_null(map_get(&m, &key));
	assert_null(map_del(&m, &key));
	assert_null(map_next(&m, &it));
	assert_int_equal(map_len(&m), 0);
	map_free(&m);
	map_free(&m); /* idempotent */
	assert_null(map_get(&m, &key));
}

/* 100k random keys: insert, find, delete half at random, find again, iterate, reinsert. */
static void test_many_keys(void **state)
{
	(void)state;
	const size_t n = 100000;
	struct item *items = calloc(n, sizeof(*items));
	assert_non_null(items);
	struct map m;
	map_init(&m, offsetof(struct item, key), sizeof(uint64_t));

	for (size_t i = 0; i < n; i++) {
		items[i].key = rng();
		items[i].tag = (uint32_t)i;
		assert_int_equal(map_put(&m, &items[i]), 0);
		items[i].in_map = 1;
	}
	assert_int_equal(map_len(&m), n);
	assert_true(m.cap >= n * 4 / 3);
	assert_int_equal(m.cap & (m.cap - 1), 0);
	check_all(&m, items, n);
	check_iteration(&m, items, n);

	/* keys that are not in the map are not found */
	for (size_t i = 0; i < 10000; i++) {
		uint64_t k = rng() | 1ull << 63;
		void *got = map_get(&m, &k);
		if (got)
			assert_true(((struct item *)got)->key == k);
	}

	for (size_t i = 0; i < n; i++) {
		if (rng() & 1) {
			assert_ptr_equal(map_del(&m, &items[i].key), &items[i]);
			items[i].in_map = 0;
			assert_null(map_del(&m, &items[i].key));
		}
	}
	check_all(&m, items, n);
	check_iteration(&m, items, n);

	for (size_t i = 0; i < n; i++) {
		if (!items[i].in_map) {
			assert_int_equal(map_put(&m, &items[i]), 0);
			items[i].in_map = 1;
		}
	}
	check_all(&m, items, n);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(map_del(&m, &items[i].key), &items[i]);
		items[i].in_map = 0;
	}
	assert_int_equal(map_len(&m), 0);
	check_all(&m, items, n);
	map_free(&m);
	assert_int_equal(m.cap, 0);
	assert_null(m.slots);
	free(items);
}

/*
 * Model-based churn on small tables (16..64 slots): random puts and deletes, with everything
 * checked after each delete. With few slots most entries sit in long, wrapping probe runs.
 */
static void test_churn_small_tables(void **state)
{
	(void)state;
	enum { POOL = 48 };
	struct item items[POOL];
	for (int round = 0; round < 2000; round++) {
		struct map m;
		map_init(&m, offsetof(struct item, key), sizeof(uint64_t));
		size_t pool = 8 + (size_t)(rng() % (POOL - 8));
		for (size_t i = 0; i < pool; i++) {
			items[i].key = rng();
			items[i].in_map = 0;
		}
		for (int op = 0; op < 200; op++) {
			struct item *it = &items[rng() % pool];
			if (it->in_map) {
				assert_ptr_equal(map_del(&m, &it->key), it);
				it->in_map = 0;
				check_all(&m, items, pool);
			} else {
				assert_int_equal(map_put(&m, it), 0);
				it->in_map = 1;
			}
		}
		check_all(&m, items, pool);
		check_iteration(&m, items, pool);
		map_free(&m);
	}
}

/*
 * Keys chosen so that they all share a home slot in a 16-slot table, and then a run that wraps
 * from the last slot to the first: the cases where a wrong "movable" test loses entries.
 */
static void test_clustered_runs(void **state)
{
	(void)state;
	enum { N = 12 };
	struct item probe, items[N];
	struct map m;

	/* Learn each candidate's home slot from a table of 16 that holds only it. */
	for (size_t want_home = 0; want_home < 16; want_home += 5) {
		size_t n = 0;
		while (n < N) {
			map_init(&m, offsetof(struct item, key), sizeof(uint64_t));
			probe.key = rng();
			assert_int_equal(map_put(&m, &probe), 0);
			assert_int_equal(m.cap, 16);
			size_t home = 0;
			while (m.slots[home] != &probe)
				home++;
			map_free(&m);
			/* half the keys share want_home, the others the slot before the end */
			size_t target = n % 2 ? 15 : want_home;
			if (home == target)
				items[n++].key = probe.key;
		}
		/* delete every subset order: first, middle, last of the run, several times */
		for (int order = 0; order < 50; order++) {
			map_init(&m, offsetof(struct item, key), sizeof(uint64_t));
			for (size_t i = 0; i < N; i++) {
				assert_int_equal(map_put(&m, &items[i]), 0);
				items[i].in_map = 1;
			}
			assert_int_equal(m.cap, 16);
			check_all(&m, items, N);
			for (size_t k = 0; k < N; k++) {
				size_t i = (size_t)(rng() % N);
				while (!items[i].in_map)
					i = (i + 1) % N;
				assert_ptr_equal(map_del(&m, &items[i].key), &items[i]);
				items[i].in_map = 0;
				check_all(&m, items, N);
				check_iteration(&m, items, N);
			}
			map_free(&m);
		}
	}
}

static void test_wide_keys(void **state)
{
	(void)state;
	const size_t n = 5000;
	struct wide *w = calloc(n, sizeof(*w));
	assert_non_null(w);
	struct map m;
	map_init(&m, offsetof(struct wide, key), sizeof(w->key));
	for (size_t i = 0; i < n; i++) {
		/* keys differ only in their last 4 bytes, past the 8-byte words */
		memset(w[i].key, 0xab, 32);
		memcpy(w[i].key + 32, &i, 4);
		assert_int_equal(map_put(&m, &w[i]), 0);
	}
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(map_get(&m, w[i].key), &w[i]);
	uint8_t absent[36];
	memset(absent, 0xab, 36);
	memset(absent + 32, 0xff, 4);
	assert_null(map_get(&m, absent));
	for (size_t i = 0; i < n; i += 3)
		assert_ptr_equal(map_del(&m, w[i].key), &w[i]);
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(map_get(&m, w[i].key), i % 3 ? &w[i] : NULL);
	assert_int_equal(map_len(&m), n - (n + 2) / 3);
	map_free(&m);
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_many_keys),
	    cmocka_unit_test(test_churn_small_tables),
	    cmocka_unit_test(test_clustered_runs),
	    cmocka_unit_test(test_wide_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
