/*
 * test_rxbuf.c — lws's per-connection receive buffers cost only the pages lws writes.
 *
 * What an operator sees is memory per idle WebSocket (docs/BENCHMARKS.md): a buffer lws asked
 * for must not be resident until written, must be resident only where written, and must be
 * empty again when the next connection gets it. Residency is read with mincore(); lws's own
 * allocation entry point (lws_realloc, which every lws_malloc and lws_free goes through) is
 * what is driven, as lws drives it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway.h"

#define RX_ASK (GW_RX_CHUNK + LWS_PRE + 4) /* what lws 4.1 asks for per connection */

static size_t resident_pages(const void *p, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)p / page * page;
	size_t n = ((uintptr_t)p + len - start + page - 1) / page;
	unsigned char vec[64];
	assert_true(n <= sizeof(vec));
	assert_int_equal(mincore((void *)start, n * page, vec), 0);
	size_t r = 0;
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

static void test_pages_only_where_written(void **state)
{
	(void)state;
	assert_int_equal(rxbuf_init(1), 0);
	uint8_t *a = lws_realloc(NULL, RX_ASK, "rx_ubuf");
	uint8_t *b = lws_realloc(NULL, RX_ASK, "rx_ubuf");
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal((uintptr_t)a % (uintptr_t)sysconf(_SC_PAGESIZE), 0);
	assert_true(b >= a + RX_ASK || a >= b + RX_ASK);
	/* Handed out, not yet written: nothing resident (from malloc, the header's page was). */
	assert_int_equal(resident_pages(a, RX_ASK), 0);
	assert_int_equal(resident_pages(b, RX_ASK), 0);
	/* A pong's payload: one page. */
	memset(a + LWS_PRE, 0x5a, 125);
	assert_int_equal(resident_pages(a, RX_ASK), 1);
	assert_int_equal(resident_pages(b, RX_ASK), 0);
	/* The connection closes: the page goes back, and the next connection starts clean. */
	lws_realloc(a, 0, "lws_free");
	assert_int_equal(resident_pages(a, RX_ASK), 0);
	uint8_t *c = lws_realloc(NULL, RX_ASK, "rx_ubuf");
	assert_ptr_equal(c, a);
	assert_int_equal(c[LWS_PRE], 0);
	lws_realloc(b, 0, "lws_free");
	lws_realloc(c, 0, "lws_free");
	rxbuf_free();
}

static void test_other_allocations_and_overflow(void **state)
{
	(void)state;
	assert_int_equal(rxbuf_init(1), 0);
	/* Every other allocation of lws is malloc's: it grows and keeps its bytes. */
	char *s = lws_realloc(NULL, 6, "header");
	assert_non_null(s);
	memcpy(s, "hello", 6);
	s = lws_realloc(s, 100000, "grown");
	assert_non_null(s);
	assert_string_equal(s, "hello");
	lws_realloc(s, 0, "lws_free");
	/* More connections than slots: malloc serves the rest, and all go back. */
	enum { MANY = 200 };
	static uint8_t *bufs[MANY];
	for (int i = 0; i < MANY; i++) {
		bufs[i] = lws_realloc(NULL, RX_ASK, "rx_ubuf");
		assert_non_null(bufs[i]);
		memset(bufs[i], i, RX_ASK);
	}
	for (int i = 0; i < MANY; i++) {
		assert_int_equal(bufs[i][RX_ASK - 1], (uint8_t)i);
		lws_realloc(bufs[i], 0, "lws_free");
	}
	/* A larger request than a slot is malloc's too. */
	uint8_t *big = lws_realloc(NULL, 2 * RX_ASK, "rx_ubuf");
	assert_non_null(big);
	memset(big, 1, 2 * RX_ASK);
	lws_realloc(big, 0, "lws_free");
	rxbuf_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pages_only_where_written),
	    cmocka_unit_test(test_other_allocations_and_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
