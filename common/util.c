/*
 * util.c — blob address conversion, SHA-256 through OpenSSL EVP, clocks and randomness.
 */
#include "util.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The value of each lowercase hex digit, -1 for every other byte: one lookup a character. */
/* clang-format off */
#define X (-1)
static const int8_t hex_values[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, 10, 11, 12, 13, 14, 15, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
#undef X
/* clang-format on */

static int hex_value(char c)
{
	return hex_values[(unsigned char)c];
}

int hash_hex_valid(const char *s, size_t len)
{
	if (s == NULL || len != HASH_HEX_LEN)
		return 0;
	int bad = 0;
	for (size_t i = 0; i < len; i++)
		bad |= hex_value(s[i]);
	return bad >= 0;
}

int hash_hex_valid_anycase(const char *s, size_t len)
{
	if (s == NULL || len != HASH_HEX_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (hex_value(c) < 0)
			return 0;
	}
	return 1;
}

/* Decodes and checks in one pass: any invalid digit makes `bad` negative (its sign bit). */
int hash_from_hex(const char *s, size_t len, uint8_t out[HASH_LEN])
{
	if (s == NULL || len != HASH_HEX_LEN)
		return -1;
	int bad = 0;
	for (size_t i = 0; i < HASH_LEN; i++) {
		int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
		bad |= hi | lo;
		out[i] = (uint8_t)((hi & 0xf) << 4 | (lo & 0xf));
	}
	return bad < 0 ? -1 : 0;
}

void hash_to_hex(const uint8_t hash[HASH_LEN], char out[HASH_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < HASH_LEN; i++) {
		out[2 * i] = digits[hash[i] >> 4];
		out[2 * i + 1] = digits[hash[i] & 0xf];
	}
	out[HASH_HEX_LEN] = '\0';
}

int hash_compute(const void *data, size_t len, uint8_t out[HASH_LEN])
{
	unsigned int n = 0;
	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == HASH_LEN ? 0 : -1;
}

/* A hash_stream is OpenSSL's digest context under a name of ours. */
struct hash_stream *hash_stream_new(void)
{
	return (struct hash_stream *)EVP_MD_CTX_new();
}

int hash_stream_begin(struct hash_stream *h)
{
	return EVP_DigestInit_ex((EVP_MD_CTX *)h, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

int hash_stream_update(struct hash_stream *h, const void *data, size_t len)
{
	return EVP_DigestUpdate((EVP_MD_CTX *)h, data, len) == 1 ? 0 : -1;
}

int hash_stream_end(struct hash_stream *h, uint8_t out[HASH_LEN])
{
	unsigned int n = 0;
	return EVP_DigestFinal_ex((EVP_MD_CTX *)h, out, &n) == 1 && n == HASH_LEN ? 0 : -1;
}

void hash_stream_free(struct hash_stream *h)
{
	EVP_MD_CTX_free((EVP_MD_CTX *)h);
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t random_u64(void)
{
	uint64_t v = 0;
	while (v == 0) {
		if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
			v = (uint64_t)now_ms() ^ (uint64_t)time(NULL) << 20;
	}
	return v;
}

void on_stop_signals(void (*handler)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void tune_allocator_for_blobs(void)
{
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

int buf_append(uint8_t **buf, size_t *len, size_t *cap, const void *in, size_t n, size_t more,
	       size_t limit)
{
	size_t need = *len + n + more + 1;
	if (need > *cap) {
		size_t ncap = *cap * 2 > need ? *cap * 2 : need;
		if (ncap > limit + 1)
			ncap = limit + 1;
		uint8_t *grown = realloc(*buf, ncap);
		if (grown == NULL)
			return -1;
		*buf = grown;
		*cap = ncap;
	}
	memcpy(*buf + *len, in, n);
	*len += n;
	return 0;
}

void hash_hex_lower(const char *s, char out[HASH_HEX_LEN + 1])
{
	for (size_t i = 0; i < HASH_HEX_LEN; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a') : s[i];
	out[HASH_HEX_LEN] = '\0';
}

int read_all(int fd, size_t max, uint8_t **out, size_t *len)
{
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 1 >= cap) { /* room for one byte past max, and the NUL */
			size_t ncap = cap ? cap * 2 : 16384;
			if (n > max) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			if (max < SIZE_MAX - 2 && ncap > max + 2)
				ncap = max + 2;
			uint8_t *grown = realloc(buf, ncap);
			if (grown == NULL) {
				free(buf);
				errno = ENOMEM;
				return -1;
			}
			buf = grown;
			cap = ncap;
		}
		ssize_t got = read(fd, buf + n, cap - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int saved = errno;
			free(buf);
			errno = saved;
			return -1;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int error_vset(char *err, size_t errlen, const char *fmt, va_list ap)
{
	vsnprintf(err, errlen, fmt, ap);
	return -1;
}

int error_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_vset(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}
