/*
 * store.c — the blobs this client holds, so that it can answer `request`.
 *
 * Owns a table from address to where the bytes are: a range of an open file (a piece of a
 * shared file, or of a download in progress) or a small buffer (a manifest, a page). File
 * pieces are read with pread only when someone asks, and checked against their address before
 * they are sent: a file that changed on disk is declined rather than served wrong (the server
 * would drop our claim, and close a connection that keeps sending wrong bytes). The store never
 * opens or closes files: the commands own their descriptors. Called by client.c.
 *
 * Also the commands' one write loop (store_write_all): a downloaded piece into its file, a page
 * or a file to standard output, a pipe spooled to a temporary file.
 */
#include "cli.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void store_init(struct store *s)
{
	map_init(&s->map, offsetof(struct store_entry, hash), HASH_LEN);
}

void store_free(struct store *s)
{
	struct store_entry *e;
	for (size_t i = 0; (e = map_next(&s->map, &i));) {
		free(e->mem);
		free(e);
	}
	map_free(&s->map);
}

static int store_put(struct store *s, struct store_entry *e)
{
	if (map_put(&s->map, e) < 0) {
		free(e->mem);
		free(e);
		return -1;
	}
	return 1;
}

int store_add_file(struct store *s, const uint8_t hash[HASH_LEN], int fd, uint64_t off, size_t len)
{
	if (map_get(&s->map, hash))
		return 0;
	struct store_entry *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	memcpy(e->hash, hash, HASH_LEN);
	e->fd = fd;
	e->off = off;
	e->len = len;
	return store_put(s, e);
}

int store_add_mem(struct store *s, const uint8_t hash[HASH_LEN], const void *data, size_t len)
{
	if (map_get(&s->map, hash))
		return 0;
	struct store_entry *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	e->mem = malloc(len ? len : 1);
	if (e->mem == NULL) {
		free(e);
		return -1;
	}
	memcpy(e->mem, data, len);
	memcpy(e->hash, hash, HASH_LEN);
	e->fd = -1;
	e->len = len;
	return store_put(s, e);
}

const struct store_entry *store_get(const struct store *s, const uint8_t hash[HASH_LEN])
{
	return map_get(&s->map, hash);
}

void store_remove(struct store *s, const uint8_t hash[HASH_LEN])
{
	struct store_entry *e = map_del(&s->map, hash);
	if (e) {
		free(e->mem);
		free(e);
	}
}

int store_read(const struct store_entry *e, uint8_t *buf, char *err, size_t errlen)
{
	uint8_t got[HASH_LEN];
	if (e->fd < 0) {
		memcpy(buf, e->mem, e->len);
		return 0;
	}
	if (pread_full(e->fd, buf, e->len, e->off) < 0)
		return error_set(err, errlen, "%s",
				 errno ? strerror(errno) : "the file is shorter than it was");
	if (hash_compute(buf, e->len, got) < 0 || memcmp(got, e->hash, HASH_LEN) != 0) {
		snprintf(err, errlen, "the file changed on disk");
		return -1;
	}
	return 0;
}

int store_write_all(int fd, const void *buf, size_t len, int64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}
