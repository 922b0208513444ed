/*
 * util.h — small helpers every program shares: blob addresses (hex SHA-256), clocks, hashing.
 *
 * A blob address on every public surface is 64 lowercase hex digits; inside the programs and on
 * the hub protocol it is the 32 raw bytes. These helpers are the only place that converts
 * between the two and the only place that computes SHA-256 (through OpenSSL's EVP interface).
 */
#ifndef EPH_UTIL_H
#define EPH_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define HASH_LEN     32
#define HASH_HEX_LEN 64
#define BLOB_MAX     (64u * 1024 * 1024) /* gateway.max_blob's ceiling: no blob anywhere is larger */

/* 1 if s[0..len) is exactly 64 lowercase hex digits. */
int hash_hex_valid(const char *s, size_t len);
/* 1 if s[0..len) is 64 hex digits in any case. */
int hash_hex_valid_anycase(const char *s, size_t len);
/* Copies 64 hex digits of either case as lowercase, and a NUL. */
void hash_hex_lower(const char *s, char out[HASH_HEX_LEN + 1]);
/* Decodes 64 lowercase hex digits into 32 bytes; -1 if not a valid address. */
int hash_from_hex(const char *s, size_t len, uint8_t out[HASH_LEN]);
/* Writes 64 lowercase hex digits and a NUL into out (65 bytes). */
void hash_to_hex(const uint8_t hash[HASH_LEN], char out[HASH_HEX_LEN + 1]);
/* SHA-256 of data into out; -1 only if OpenSSL fails. */
int hash_compute(const void *data, size_t len, uint8_t out[HASH_LEN]);
/* SHA-256 of bytes that arrive in pieces: begin, update as each arrives, then end into out.
 * One hash_stream is reused for message after message; NULL from hash_stream_new: no memory. */
struct hash_stream;
struct hash_stream *hash_stream_new(void);
int hash_stream_begin(struct hash_stream *h);
int hash_stream_update(struct hash_stream *h, const void *data, size_t len);
int hash_stream_end(struct hash_stream *h, uint8_t out[HASH_LEN]);
void hash_stream_free(struct hash_stream *h);

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);
/* Runs handler on SIGINT and SIGTERM (without SA_RESTART, so blocking calls return EINTR) and
 * ignores SIGPIPE: how every long-running program here stops cleanly. */
void on_stop_signals(void (*handler)(int));

/* Keeps freed blob-sized buffers in the process instead of handing them back to the kernel,
 * which would fault their pages in again for the next blob (see docs/BENCHMARKS.md). */
void tune_allocator_for_blobs(void);

/* Appends n bytes to a growing buffer, reserving room for `more` still to come and never growing
 * past limit + 1 bytes (the caller has checked the limit). 0, or -1 when out of memory. */
int buf_append(uint8_t **buf, size_t *len, size_t *cap, const void *in, size_t n, size_t more,
	       size_t limit);

/* Reads fd to its end into a malloc'd buffer, with a NUL after the bytes. 0, or -1 with errno:
 * EFBIG when there are more than max bytes, ENOMEM, or read's own. */
int read_all(int fd, size_t max, uint8_t **out, size_t *len);
/* Reads exactly len bytes at off (again after EINTR). 0, or -1 with errno (0: the file ended). */
int pread_full(int fd, void *buf, size_t len, uint64_t off);

/* Writes a reason into err (errlen bytes) and returns -1: `return error_set(err, errlen, ...)`. */
int error_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int error_vset(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Random 64-bit value (OpenSSL's CSPRNG), never 0. */
uint64_t random_u64(void);

/* Little-endian fixed-width integers, for the hub protocol's binary headers. */
static inline void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif
