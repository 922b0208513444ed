/*
 * collection.c — the collection format: canonical JSON and the reader's rules.
 *
 * Owns what makes the terminal client and the pages give the same folder the same address
 * (compact JSON with jansson, keys in a fixed order, files sorted by path as UTF-8 bytes) and
 * every check an untrusted collection goes through before a byte of it is written: one function
 * per family of rules — the header (kind, version, name, files), each entry's fields, each path,
 * the tree as a whole, and each file's manifest once fetched. Every refusal is a sentence that
 * starts with "refused:" and quotes the offending path with its control characters escaped.
 * Never touches the disk or the network; cli/share.c and cli/get.c do.
 */
#include "collection.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void collection_quote(const char *s, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	if (outlen == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		char esc[8];
		size_t k = 0;
		/* C1 controls are two bytes in UTF-8 (C2 80..C2 9F): a terminal obeys them too. */
		int c1 = ch == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
			 (unsigned char)s[i + 1] <= 0x9f;
		if (c1) {
			ch = (unsigned char)s[++i];
		}
		if (ch < 0x20 || ch == 0x7f || c1) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			k = 6;
		} else if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			k = 2;
		} else {
			esc[0] = (char)ch;
			k = 1;
		}
		if (n + k + 4 >= outlen || n + k > COLLECTION_QUOTE_MAX) {
			/* Cut before a UTF-8 continuation byte would be split, and say so. */
			while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
				n--;
			if (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0xc0)
				n--;
			if (n + 4 <= outlen - 1) {
				memcpy(out + n, "\xe2\x80\xa6", 3); /* … */
				n += 3;
			}
			break;
		}
		memcpy(out + n, esc, k);
		n += k;
	}
	out[n] = '\0';
}

/* ---- the rules for one path -------------------------------------------------------------- */

static int collection_path_error(const char *path, size_t len, char *err, size_t errlen,
				 const char *why)
{
	char q[COLLECTION_QUOTE_MAX * 6 + 8];
	collection_quote(path, len, q, sizeof(q));
	return error_set(err, errlen, "refused: path \"%s\" %s", q, why);
}

/* 1 if the byte at p[i] starts a control character (C0, DEL, or C1 as UTF-8). */
static int collection_is_control(const unsigned char *p, size_t len, size_t i)
{
	if (p[i] < 0x20 || p[i] == 0x7f)
		return 1;
	return p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f;
}

int collection_check_path(const char *path, size_t len, char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)path;
	if (len == 0)
		return error_set(err, errlen, "refused: a path is empty");
	/* Characters first: a NUL or a control character is named as such wherever it is. */
	for (size_t i = 0; i < len; i++) {
		if (p[i] == 0)
			return collection_path_error(path, len, err, errlen, "holds NUL");
		if (p[i] == '\\')
			return collection_path_error(path, len, err, errlen, "holds a backslash");
		if (collection_is_control(p, len, i))
			return collection_path_error(path, len, err, errlen,
						     "holds a control character");
	}
	if (p[0] == '/')
		return collection_path_error(path, len, err, errlen, "is absolute");
	if (p[len - 1] == '/')
		return collection_path_error(path, len, err, errlen, "ends with \"/\"");
	for (size_t start = 0; start <= len;) {
		const char *slash = memchr(path + start, '/', len - start);
		size_t end = slash ? (size_t)(slash - path) : len;
		size_t n = end - start;
		if (n == 0)
			return collection_path_error(path, len, err, errlen,
						     "has an empty component");
		if (n == 2 && memcmp(path + start, "..", 2) == 0)
			return collection_path_error(path, len, err, errlen, "leaves the folder");
		if (n == 1 && path[start] == '.')
			return collection_path_error(path, len, err, errlen,
						     "has a \".\" component");
		start = end + 1;
	}
	return 0;
}

int collection_check_name(const char *name, char *err, size_t errlen)
{
	size_t len = strlen(name);
	char q[COLLECTION_QUOTE_MAX * 6 + 8];
	if (len == 0)
		return error_set(err, errlen, "refused: the collection's name is empty");
	for (size_t i = 0; i < len; i++)
		if (collection_is_control((const unsigned char *)name, len, i)) {
			collection_quote(name, len, q, sizeof(q));
			return error_set(err, errlen,
					 "refused: the name \"%s\" holds a control character", q);
		}
	return 0;
}

/* ---- the tree ------------------------------------------------------------------------------ */

static int collection_cmp(const void *a, const void *b)
{
	const struct collection_file *x = a, *y = b;
	return strcmp(x->path, y->path); /* compares unsigned bytes: UTF-8 order */
}

static int collection_cmp_key(const void *key, const void *elem)
{
	const struct collection_file *y = elem;
	return strcmp(key, y->path);
}

int collection_check_tree(struct collection *c, char *err, size_t errlen)
{
	char q[COLLECTION_QUOTE_MAX * 6 + 8], q2[COLLECTION_QUOTE_MAX * 6 + 8];
	if (c->nfiles > 1)
		qsort(c->files, c->nfiles, sizeof(*c->files), collection_cmp);
	for (size_t i = 0; i + 1 < c->nfiles; i++)
		if (strcmp(c->files[i].path, c->files[i + 1].path) == 0) {
			collection_quote(c->files[i].path, strlen(c->files[i].path), q, sizeof(q));
			return error_set(err, errlen, "refused: path \"%s\" is listed twice", q);
		}
	/* A folder of one path is a prefix ending before a '/': is it some file's path? ("a",
	 * "a-b", "a/b" sort in that order, so the two need not be neighbours.) */
	for (size_t i = 0; i < c->nfiles; i++) {
		const char *path = c->files[i].path;
		for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
			char *folder = strndup(path, (size_t)(slash - path));
			if (folder == NULL)
				return error_set(err, errlen, "out of memory");
			const struct collection_file *f = bsearch(
			    folder, c->files, c->nfiles, sizeof(*c->files), collection_cmp_key);
			free(folder);
			if (f) {
				collection_quote(f->path, strlen(f->path), q, sizeof(q));
				collection_quote(path, strlen(path), q2, sizeof(q2));
				return error_set(err, errlen,
						 "refused: path \"%s\" is a file and also a folder "
						 "(of \"%s\")",
						 q, q2);
			}
		}
	}
	return 0;
}

int collection_check(struct collection *c, char *err, size_t errlen)
{
	if (c->nfiles == 0)
		return error_set(err, errlen, "refused: the collection lists no files");
	for (size_t i = 0; i < c->nfiles; i++)
		if (collection_check_path(c->files[i].path, strlen(c->files[i].path), err, errlen) <
		    0)
			return -1;
	return collection_check_tree(c, err, errlen);
}

/* ---- canonical JSON ----------------------------------------------------------------------- */

char *collection_build(struct collection *c, size_t *len)
{
	if (c->nfiles > 1)
		qsort(c->files, c->nfiles, sizeof(*c->files), collection_cmp);
	json_t *files = json_array();
	for (size_t i = 0; files && i < c->nfiles; i++) {
		const struct collection_file *f = &c->files[i];
		char m[HASH_HEX_LEN + 1], s[HASH_HEX_LEN + 1];
		hash_to_hex(f->manifest, m);
		hash_to_hex(f->sha256, s);
		/* Keys in the format's order (jansson keeps insertion order). */
		json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "path", f->path, "manifest", m,
				      "size", (json_int_t)f->size, "sha256", s);
		if (o == NULL || json_array_append_new(files, o) < 0) {
			json_decref(files);
			return NULL;
		}
	}
	if (files == NULL)
		return NULL;
	json_t *root = json_pack("{s:s, s:i, s:s, s:o}", "ephemeral", "collection", "version",
				 COLLECTION_VERSION, "name", c->name, "files", files);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	if (text && len)
		*len = strlen(text);
	return text;
}

/* ---- reading an untrusted collection ----------------------------------------------------- */

int collection_json_size(const json_t *v, uint64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 0 || (uint64_t)n > COLLECTION_MAX_SIZE)
			return -1;
		*out = (uint64_t)n;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!(d >= 0 && d <= (double)COLLECTION_MAX_SIZE) || d != (double)(uint64_t)d)
			return -1;
		*out = (uint64_t)d;
		return 0;
	}
	return -1;
}

static int collection_json_hash(json_t *v, uint8_t out[HASH_LEN])
{
	return json_is_string(v) &&
		       hash_from_hex(json_string_value(v), json_string_length(v), out) == 0
		   ? 0
		   : -1;
}

/* The header: a collection (version 1), with a name and files. 1, 0 (not a collection: a page)
 * or -1. */
static int collection_check_header(json_t *root, char *err, size_t errlen)
{
	json_t *kind = json_object_get(root, "ephemeral");
	json_t *version = json_object_get(root, "version");
	if (!json_is_string(kind) || strcmp(json_string_value(kind), "collection") != 0)
		return 0;
	/* PROTOCOL.md: "ephemeral": "collection" with "version": 1 is a collection, anything else
	 * a page (as a manifest of another version is). */
	if (!json_is_number(version) || json_number_value(version) != COLLECTION_VERSION)
		return 0;
	if (!json_is_string(json_object_get(root, "name")))
		return error_set(err, errlen, "refused: the collection has no name");
	json_t *files = json_object_get(root, "files");
	if (!json_is_array(files))
		return error_set(err, errlen, "refused: the collection has no list of files");
	if (json_array_size(files) == 0)
		return error_set(err, errlen, "refused: the collection lists no files");
	return 1;
}

/* One entry's fields: a path (checked whole by collection_check_path), a manifest address, a
 * size and a sha256. 0 with f filled (f->path malloc'd), or -1. */
static int collection_check_entry(json_t *e, size_t i, struct collection_file *f, char *err,
				  size_t errlen)
{
	char q[COLLECTION_QUOTE_MAX * 6 + 8];
	json_t *path = json_object_get(e, "path");
	if (!json_is_object(e))
		return error_set(err, errlen, "refused: file %zu of the list is not an object",
				 i + 1);
	if (!json_is_string(path))
		return error_set(err, errlen, "refused: file %zu of the list has no path", i + 1);
	const char *p = json_string_value(path);
	size_t len = json_string_length(path);
	if (collection_check_path(p, len, err, errlen) < 0)
		return -1;
	collection_quote(p, len, q, sizeof(q));
	if (collection_json_hash(json_object_get(e, "manifest"), f->manifest) < 0)
		return error_set(err, errlen,
				 "refused: \"%s\" has a manifest address that is not 64 lowercase "
				 "hex digits",
				 q);
	if (collection_json_size(json_object_get(e, "size"), &f->size) < 0)
		return error_set(err, errlen,
				 "refused: \"%s\" has a size that is not a whole number of bytes",
				 q);
	if (collection_json_hash(json_object_get(e, "sha256"), f->sha256) < 0)
		return error_set(err, errlen,
				 "refused: \"%s\" has a sha256 that is not 64 lowercase hex digits",
				 q);
	f->path = strdup(p);
	return f->path ? 0 : error_set(err, errlen, "out of memory");
}

int collection_parse(const uint8_t *data, size_t len, struct collection *c, char *err,
		     size_t errlen)
{
	memset(c, 0, sizeof(*c));
	/* NUL is allowed in strings here so that a path holding one is refused by name. */
	json_t *root = json_loadb((const char *)data, len, JSON_ALLOW_NUL, NULL);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return 0;
	}
	int rc = collection_check_header(root, err, errlen);
	if (rc <= 0) {
		json_decref(root);
		return rc;
	}
	json_t *files = json_object_get(root, "files");
	c->name = strdup(json_string_value(json_object_get(root, "name")));
	c->files = calloc(json_array_size(files), sizeof(*c->files));
	rc = c->name && c->files ? 0 : error_set(err, errlen, "out of memory");
	for (size_t i = 0; rc == 0 && i < json_array_size(files); i++) {
		rc = collection_check_entry(json_array_get(files, i), i, &c->files[i], err, errlen);
		if (c->files[i].path)
			c->nfiles = i + 1;
	}
	if (rc == 0)
		rc = collection_check_tree(c, err, errlen);
	json_decref(root);
	if (rc < 0) {
		collection_free(c);
		return -1;
	}
	return 1;
}

int collection_check_manifest(const struct collection_file *f, uint64_t size, const uint8_t *sha256,
			      char *err, size_t errlen)
{
	char q[COLLECTION_QUOTE_MAX * 6 + 8], a[HASH_HEX_LEN + 1], b[HASH_HEX_LEN + 1];
	collection_quote(f->path, strlen(f->path), q, sizeof(q));
	if (size != f->size)
		return error_set(err, errlen,
				 "refused: \"%s\" is %llu bytes in the collection but %llu in its "
				 "manifest",
				 q, (unsigned long long)f->size, (unsigned long long)size);
	if (sha256 == NULL)
		return error_set(err, errlen,
				 "refused: the manifest of \"%s\" names no sha256 to check against "
				 "the collection's",
				 q);
	if (memcmp(sha256, f->sha256, HASH_LEN) != 0) {
		hash_to_hex(f->sha256, a);
		hash_to_hex(sha256, b);
		return error_set(err, errlen,
				 "refused: \"%s\" has sha256 %s in the collection but %s in its "
				 "manifest",
				 q, a, b);
	}
	return 0;
}

const struct collection_file *collection_find(const struct collection *c, const char *path)
{
	for (size_t i = 0; i < c->nfiles; i++)
		if (strcmp(c->files[i].path, path) == 0)
			return &c->files[i];
	return NULL;
}

uint64_t collection_total(const struct collection *c)
{
	uint64_t n = 0;
	for (size_t i = 0; i < c->nfiles; i++)
		n += c->files[i].size;
	return n;
}

void collection_free(struct collection *c)
{
	for (size_t i = 0; i < c->nfiles; i++)
		free(c->files[i].path);
	free(c->files);
	free(c->name);
	memset(c, 0, sizeof(*c));
}
