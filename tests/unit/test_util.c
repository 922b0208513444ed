/*
 * test_util.c — the shared helpers that replaced per-module copies (common/util.c): reading a
 * whole input with a ceiling, reading exactly a range, lowercasing an address, and the error
 * buffer every parser fills.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util.h"

/* A temporary file holding n bytes 0, 1, 2, ... (mod 251); its descriptor, unlinked already. */
static int temp_file(size_t n)
{
	char path[] = "/tmp/test_util_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	for (size_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)(i % 251);
		assert_int_equal(write(fd, &b, 1), 1);
	}
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static void test_read_all(void **state)
{
	(void)state;
	/* larger than one growth step, exactly at the ceiling: read whole, NUL after it */
	int fd = temp_file(40000);
	uint8_t *buf = NULL;
	size_t len = 0;
	assert_int_equal(read_all(fd, 40000, &buf, &len), 0);
	assert_int_equal(len, 40000);
	assert_int_equal(buf[39999], 39999 % 251);
	assert_int_equal(buf[40000], 0);
	free(buf);

	/* one byte past the ceiling: EFBIG, nothing returned */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	buf = NULL;
	assert_int_equal(read_all(fd, 39999, &buf, &len), -1);
	assert_int_equal(errno, EFBIG);
	assert_null(buf);
	close(fd);

	/* empty input, no ceiling: an empty string */
	fd = temp_file(0);
	assert_int_equal(read_all(fd, SIZE_MAX, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(buf[0], 0);
	free(buf);
	close(fd);

	/* not readable: read's own errno */
	assert_int_equal(read_all(-1, 10, &buf, &len), -1);
	assert_int_equal(errno, EBADF);
}

static void test_pread_full(void **state)
{
	(void)state;
	int fd = temp_file(1000);
	uint8_t buf[300];
	assert_int_equal(pread_full(fd, buf, sizeof(buf), 600), 0);
	assert_int_equal(buf[0], 600 % 251);
	assert_int_equal(buf[299], 899 % 251);
	/* the file ends first: -1 with errno 0, which callers tell from a read error */
	errno = EINTR;
	assert_int_equal(pread_full(fd, buf, sizeof(buf), 800), -1);
	assert_int_equal(errno, 0);
	close(fd);
	assert_int_equal(pread_full(-1, buf, 1, 0), -1);
	assert_int_equal(errno, EBADF);
}

static void test_hash_hex_lower(void **state)
{
	(void)state;
	const char *mixed = "0123456789ABCDEFabcdef0123456789abcdefABCDEF0123456789abcdef0123XYZ";
	char out[HASH_HEX_LEN + 1];
	memset(out, '!', sizeof(out));
	hash_hex_lower(mixed, out);
	assert_string_equal(out,
			    "0123456789abcdefabcdef0123456789abcdefabcdef0123456789abcdef0123");
	assert_true(hash_hex_valid(out, strlen(out)));
}

static void test_error_set(void **state)
{
	(void)state;
	char err[16];
	assert_int_equal(error_set(err, sizeof(err), "piece %d of %s", 7, "file.bin"), -1);
	assert_string_equal(err, "piece 7 of file"); /* cut to the buffer, always terminated */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_all),
	    cmocka_unit_test(test_pread_full),
	    cmocka_unit_test(test_hash_hex_lower),
	    cmocka_unit_test(test_error_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
