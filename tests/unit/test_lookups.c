/*
 * test_lookups.c — the frontend's cache of the hub's answers (frontend-fcgi/lookups.c).
 *
 * An answer is reused until its lifetime is up and never after; a push from the hub changes a
 * kept answer (its lifetime unchanged) and never creates one; a lifetime of 0 keeps nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../frontend-fcgi/frontend.h"

static void hash_of(uint8_t hash[HASH_LEN], uint8_t seed)
{
	for (int i = 0; i < HASH_LEN; i++)
		hash[i] = (uint8_t)(seed * 31 + i);
}

static void test_reused_until_expiry(void **state)
{
	(void)state;
	struct lookups l;
	uint8_t h[HASH_LEN];
	uint32_t v = 99;
	hash_of(h, 1);
	assert_int_equal(lookups_init(&l, 250), 0);
	assert_int_equal(lookups_get(&l, h, 1000, &v), 0);
	lookups_put(&l, h, 3, 1000);
	assert_int_equal(lookups_get(&l, h, 1000, &v), 1);
	assert_int_equal(v, 3);
	assert_int_equal(lookups_get(&l, h, 1249, &v), 1);
	assert_int_equal(lookups_get(&l, h, 1250, &v), 0);
	lookups_free(&l);
}

static void test_push_updates_kept_answers_only(void **state)
{
	(void)state;
	struct lookups l;
	uint8_t h[HASH_LEN], other[HASH_LEN];
	uint32_t v = 99;
	hash_of(h, 2);
	hash_of(other, 3);
	assert_int_equal(lookups_init(&l, 250), 0);
	lookups_put(&l, h, 0, 1000);
	lookups_update(&l, h, 1); /* a holder came: the cached "gone" is gone */
	assert_int_equal(lookups_get(&l, h, 1100, &v), 1);
	assert_int_equal(v, 1);
	assert_int_equal(lookups_get(&l, h, 1250, &v), 0); /* lifetime unchanged */
	lookups_update(&l, other, 5);			   /* never asked: not kept */
	assert_int_equal(lookups_get(&l, other, 1100, &v), 0);
	lookups_free(&l);
}

static void test_collision_replaces(void **state)
{
	(void)state;
	struct lookups l;
	uint8_t a[HASH_LEN], b[HASH_LEN];
	uint32_t v = 99;
	hash_of(a, 4);
	memcpy(b, a, HASH_LEN);
	b[HASH_LEN - 1] ^= 0xff; /* same slot (the first bytes pick it), another hash */
	assert_int_equal(lookups_init(&l, 250), 0);
	lookups_put(&l, a, 1, 1000);
	lookups_put(&l, b, 0, 1000);
	assert_int_equal(lookups_get(&l, a, 1000, &v), 0);
	assert_int_equal(lookups_get(&l, b, 1000, &v), 1);
	assert_int_equal(v, 0);
	lookups_update(&l, a, 7); /* a's answer is no longer kept: b's is untouched */
	assert_int_equal(lookups_get(&l, b, 1000, &v), 1);
	assert_int_equal(v, 0);
	lookups_free(&l);
}

static void test_lifetime_zero_keeps_nothing(void **state)
{
	(void)state;
	struct lookups l;
	uint8_t h[HASH_LEN];
	uint32_t v = 99;
	hash_of(h, 5);
	assert_int_equal(lookups_init(&l, 0), 0);
	lookups_put(&l, h, 1, 1000);
	lookups_update(&l, h, 2);
	assert_int_equal(lookups_get(&l, h, 1000, &v), 0);
	assert_int_equal(v, 99);
	lookups_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reused_until_expiry),
	    cmocka_unit_test(test_push_updates_kept_answers_only),
	    cmocka_unit_test(test_collision_replaces),
	    cmocka_unit_test(test_lifetime_zero_keeps_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
