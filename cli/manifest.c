/*
 * manifest.c — files as manifests of SHA-256 pieces (PROTOCOL.md "Content model").
 *
 * Owns the manifest format on the terminal side, with the same rules as the pages (files.js):
 * the piece size (256 KiB, or a larger power of two when the manifest would not fit in one
 * blob), hashing a file piece by piece with pread (never the whole file in memory), building
 * the JSON with jansson, telling a manifest from a page, and validating an untrusted manifest
 * before anything is written. Also the two small policies that come with a manifest's fields:
 * a safe name to save under and a type guessed from a name. No network, no terminal here.
 */
#include "cli.h"
#include "collection.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static uint64_t manifest_count(uint64_t size, uint64_t piece_size)
{
	return size / piece_size + (size % piece_size ? 1 : 0);
}

uint64_t manifest_piece_len(const struct manifest *m, size_t i)
{
	uint64_t off = (uint64_t)i * m->piece_size;
	return m->size - off < m->piece_size ? m->size - off : m->piece_size;
}

static json_t *manifest_json(const struct manifest *m, size_t npieces)
{
	json_t *pieces = json_array();
	for (size_t i = 0; pieces && i < npieces; i++) {
		char hex[HASH_HEX_LEN + 1];
		hash_to_hex(m->pieces[i], hex);
		json_array_append_new(pieces, json_string(hex));
	}
	/* Keys in the order the pages write them (jansson keeps insertion order). */
	json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:I}", "ephemeral", "manifest", "version", 1,
			      "name", m->name, "type", m->type, "size", (json_int_t)m->size);
	if (o && m->has_sha256) {
		char hex[HASH_HEX_LEN + 1];
		hash_to_hex(m->sha256, hex);
		json_object_set_new(o, "sha256", json_string(hex));
	}
	int failed = o == NULL ||
		     json_object_set_new(o, "piece_size", json_integer((json_int_t)m->piece_size));
	/* set_new takes pieces whatever happens; on an earlier failure it is let go here. */
	if (failed ? (json_decref(pieces), 1) : json_object_set_new(o, "pieces", pieces) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *manifest_build(const struct manifest *m, size_t *len)
{
	json_t *o = manifest_json(m, m->npieces);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (text && len)
		*len = strlen(text);
	return text;
}

/* Bytes of the manifest for count pieces without hashing anything: each piece adds a quoted
 * 64-digit hash, and every piece but the first a comma. */
static int64_t manifest_length(const char *name, const char *type, uint64_t size,
			       uint64_t piece_size, uint64_t count)
{
	struct manifest empty = {.name = (char *)name,
				 .type = (char *)type,
				 .size = size,
				 .piece_size = piece_size,
				 .has_sha256 = 1};
	size_t n;
	char *text = manifest_build(&empty, &n);
	if (text == NULL)
		return -1;
	free(text);
	return (int64_t)(n + 66 * count + (count ? count - 1 : 0));
}

int manifest_piece_size(uint64_t size, const char *name, const char *type, uint64_t max_blob,
			uint64_t *out, char *err, size_t errlen)
{
	uint64_t ps = MANIFEST_DEFAULT_PIECE;
	while (ps > max_blob && ps > MANIFEST_MIN_PIECE)
		ps /= 2;
	if (ps > max_blob)
		return error_set(err, errlen,
				 "the server's blob limit (%llu bytes) is below the smallest "
				 "piece",
				 (unsigned long long)max_blob);
	for (; ps <= max_blob && ps <= MANIFEST_MAX_PIECE; ps *= 2) {
		uint64_t count = manifest_count(size, ps);
		if (count > MANIFEST_MAX_PIECES)
			continue;
		int64_t len = manifest_length(name, type, size, ps, count);
		if (len < 0)
			return error_set(err, errlen, "out of memory");
		if ((uint64_t)len <= max_blob) {
			*out = ps;
			return 0;
		}
	}
	return error_set(err, errlen,
			 "too large to share here (%llu bytes for a server whose blobs are at "
			 "most %llu bytes)",
			 (unsigned long long)size, (unsigned long long)max_blob);
}

int manifest_hash_file(int fd, struct manifest *m, int (*on_piece)(void *arg, uint64_t done),
		       void *arg, char *err, size_t errlen)
{
	uint64_t count = manifest_count(m->size, m->piece_size);
	m->npieces = (size_t)count;
	m->pieces = calloc(count ? count : 1, HASH_LEN);
	uint8_t *buf = malloc(m->piece_size);
	/* The whole file's plain SHA-256, in the same pass as the pieces' (what sha256sum says). */
	struct hash_stream *whole = hash_stream_new();
	if (m->pieces == NULL || buf == NULL || whole == NULL || hash_stream_begin(whole) < 0) {
		free(buf);
		hash_stream_free(whole);
		return error_set(err, errlen, "out of memory");
	}
	for (size_t i = 0; i < m->npieces; i++) {
		uint64_t off = (uint64_t)i * m->piece_size;
		size_t len = (size_t)manifest_piece_len(m, i);
		if (pread_full(fd, buf, len, off) < 0) {
			free(buf);
			hash_stream_free(whole);
			return error_set(err, errlen, "%s",
					 errno ? strerror(errno)
					       : "the file shrank while it was read");
		}
		hash_compute(buf, len, m->pieces[i]);
		if (hash_stream_update(whole, buf, len) < 0) {
			free(buf);
			hash_stream_free(whole);
			return error_set(err, errlen, "hashing failed");
		}
		if (on_piece && on_piece(arg, off + len)) {
			free(buf);
			hash_stream_free(whole);
			return error_set(err, errlen, "interrupted");
		}
	}
	free(buf);
	int rc = hash_stream_end(whole, m->sha256);
	hash_stream_free(whole);
	if (rc < 0)
		return error_set(err, errlen, "hashing failed");
	m->has_sha256 = 1;
	return 0;
}

void manifest_free(struct manifest *m)
{
	free(m->name);
	free(m->type);
	free(m->pieces);
	memset(m, 0, sizeof(*m));
}

static int manifest_is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int manifest_parse(const uint8_t *data, size_t len, uint64_t max_blob, struct manifest *m,
		   char *err, size_t errlen)
{
	size_t i = 0;
	int rc = -1;
	memset(m, 0, sizeof(*m));
	while (i < len && manifest_is_ws(data[i]))
		i++;
	if (i == len || data[i] != '{')
		return 0;
	json_t *root = json_loadb((const char *)data, len, 0, NULL);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return 0; /* not JSON (or not UTF-8): a page that happens to start with "{" */
	}
	json_t *kind = json_object_get(root, "ephemeral");
	json_t *version = json_object_get(root, "version");
	if (!json_is_string(kind) || strcmp(json_string_value(kind), "manifest") != 0 ||
	    !json_is_number(version) || json_number_value(version) != 1.0) {
		json_decref(root);
		return 0;
	}

	json_t *name = json_object_get(root, "name");
	json_t *type = json_object_get(root, "type");
	json_t *pieces = json_object_get(root, "pieces");
	json_t *sha256 = json_object_get(root, "sha256");
	uint64_t size, ps;
	if (!json_is_string(name)) {
		error_set(err, errlen, "the file has no name");
		goto out;
	}
	if (type && !json_is_string(type)) {
		error_set(err, errlen, "the file type is not text");
		goto out;
	}
	if (collection_json_size(json_object_get(root, "size"), &size) < 0) {
		error_set(err, errlen, "the file size is not a valid number of bytes");
		goto out;
	}
	if (collection_json_size(json_object_get(root, "piece_size"), &ps) < 0 || ps == 0 ||
	    (ps & (ps - 1)) != 0 || ps < MANIFEST_MIN_PIECE || ps > max_blob ||
	    ps > MANIFEST_MAX_PIECE) {
		error_set(err, errlen, "the piece size is not a power of two from %d to %llu bytes",
			  MANIFEST_MIN_PIECE, (unsigned long long)max_blob);
		goto out;
	}
	if (!json_is_array(pieces)) {
		error_set(err, errlen, "the list of pieces is missing");
		goto out;
	}
	size_t n = json_array_size(pieces);
	if (n > MANIFEST_MAX_PIECES) {
		error_set(err, errlen, "the file has more than %d pieces", MANIFEST_MAX_PIECES);
		goto out;
	}
	if (n != manifest_count(size, ps)) {
		error_set(err, errlen,
			  "the number of pieces (%zu) does not match the size (%llu bytes in "
			  "pieces of %llu)",
			  n, (unsigned long long)size, (unsigned long long)ps);
		goto out;
	}
	m->pieces = calloc(n ? n : 1, HASH_LEN);
	m->name = strdup(json_string_value(name));
	m->type = strdup(type && json_string_length(type) ? json_string_value(type)
							  : "application/octet-stream");
	if (m->pieces == NULL || m->name == NULL || m->type == NULL) {
		error_set(err, errlen, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		json_t *h = json_array_get(pieces, k);
		if (!json_is_string(h) ||
		    hash_from_hex(json_string_value(h), json_string_length(h), m->pieces[k]) < 0) {
			error_set(err, errlen, "piece %zu's address is not a SHA-256 hash", k + 1);
			goto out;
		}
	}
	if (sha256) {
		/* Optional (older manifests lack it); when present, the whole file is checked. */
		if (!json_is_string(sha256) ||
		    hash_from_hex(json_string_value(sha256), json_string_length(sha256),
				  m->sha256) < 0) {
			error_set(err, errlen, "the file's sha256 is not a SHA-256 hash");
			goto out;
		}
		m->has_sha256 = 1;
	}
	m->size = size;
	m->piece_size = ps;
	m->npieces = n;
	rc = 1;
out:
	if (rc < 0)
		manifest_free(m);
	json_decref(root);
	return rc;
}

void manifest_safe_name(const char *name, char *out, size_t len)
{
	size_t n = 0;
	if (len == 0)
		return;
	size_t cap = len - 1 < 255 ? len - 1 : 255;
	for (const unsigned char *p = (const unsigned char *)name; *p && n < cap; p++) {
		if (*p < 0x20 || *p == 0x7f)
			continue;
		out[n++] = (*p == '/' || *p == '\\') ? '_' : (char)*p;
	}
	out[n] = '\0';
	/* Never split a UTF-8 sequence at the cut. */
	if (n == cap) {
		size_t k = n;
		while (k > 0 && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)out[k - 1] & 0x80)) {
			unsigned char lead = (unsigned char)out[k - 1];
			size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
			if (n - (k - 1) < want) {
				n = k - 1;
				out[n] = '\0';
			}
		}
	}
	/* Trim spaces at both ends. */
	size_t start = 0;
	while (out[start] == ' ')
		start++;
	while (n > start && out[n - 1] == ' ')
		out[--n] = '\0';
	memmove(out, out + start, n - start + 1);
	n -= start;
	if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
		snprintf(out, len, "download");
		return;
	}
	/* Not a hidden file: a manifest cannot slip a dotfile into a home directory. */
	if (out[0] == '.')
		out[0] = '_';
}

const char *manifest_guess_type(const char *name)
{
	static const struct {
		const char *ext;
		const char *type;
	} types[] = {
	    {"html", "text/html"},	{"htm", "text/html"},	      {"txt", "text/plain"},
	    {"md", "text/markdown"},	{"css", "text/css"},	      {"csv", "text/csv"},
	    {"js", "text/javascript"},	{"mjs", "text/javascript"},   {"json", "application/json"},
	    {"xml", "application/xml"}, {"pdf", "application/pdf"},   {"zip", "application/zip"},
	    {"gz", "application/gzip"}, {"tar", "application/x-tar"}, {"png", "image/png"},
	    {"jpg", "image/jpeg"},	{"jpeg", "image/jpeg"},	      {"gif", "image/gif"},
	    {"webp", "image/webp"},	{"svg", "image/svg+xml"},     {"mp3", "audio/mpeg"},
	    {"ogg", "audio/ogg"},	{"wav", "audio/wav"},	      {"mp4", "video/mp4"},
	    {"webm", "video/webm"},	{"wasm", "application/wasm"},
	};
	const char *dot = strrchr(name, '.');
	if (dot && dot != name && !strchr(dot, '/'))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}
