/*
 * wsmsg.c — parse and build ephemeral.v1 text messages with jansson.
 *
 * Parsing is table-driven: each message type names the fields it requires. One bad hash in a
 * list rejects the whole message (PROTOCOL.md), and a list longer than WSMSG_MAX_HASHES is
 * too_large rather than bad_request.
 */
#include "wsmsg.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define WSMSG_FIXED_MAX 160 /* the longest request or count, with room to spare */

enum wsmsg_shape { SHAPE_HASHES, SHAPE_HASH, SHAPE_FILE, SHAPE_WELCOME, SHAPE_COUNT, SHAPE_ERROR };

struct wsmsg_kind {
	const char *name;
	enum wsmsg_type type;
	enum wsmsg_shape shape;
};

static const struct wsmsg_kind wsmsg_client_kinds[] = {
    {"have", WSMSG_HAVE, SHAPE_HASHES}, {"drop", WSMSG_DROP, SHAPE_HASHES},
    {"want", WSMSG_WANT, SHAPE_HASH},	{"decline", WSMSG_DECLINE, SHAPE_HASH},
    {"file", WSMSG_FILE, SHAPE_FILE},
};

static const struct wsmsg_kind wsmsg_server_kinds[] = {
    {"welcome", WSMSG_WELCOME, SHAPE_WELCOME},
    {"request", WSMSG_REQUEST, SHAPE_HASH},
    {"count", WSMSG_COUNT, SHAPE_COUNT},
    {"error", WSMSG_ERROR, SHAPE_ERROR},
};

/* The budgets a welcome names besides max_blob, in the order it names them. */
static const struct {
	const char *name;
	size_t off;
} wsmsg_budgets[] = {
    {"msg_rate", offsetof(struct wsmsg_welcome, msg_rate)},
    {"msg_burst", offsetof(struct wsmsg_welcome, msg_burst)},
    {"max_wants", offsetof(struct wsmsg_welcome, max_wants)},
    {"max_holds", offsetof(struct wsmsg_welcome, max_holds)},
};

static int fail(struct wsmsg_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct wsmsg_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;
	err->code = code;
	va_start(ap, fmt);
	error_vset(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* Copies a string, cut if it must be at a character boundary so the copy stays valid UTF-8. */
static void copy_utf8(char *dst, size_t cap, json_t *v)
{
	const char *src = json_is_string(v) ? json_string_value(v) : "";
	size_t n = strlen(src);
	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int hash_field(json_t *v, uint8_t out[HASH_LEN])
{
	if (!json_is_string(v))
		return -1;
	return hash_from_hex(json_string_value(v), json_string_length(v), out);
}

static int wsmsg_parse(const char *text, size_t len, struct wsmsg *m, struct wsmsg_error *err,
		       const struct wsmsg_kind *kinds, size_t nkinds)
{
	json_error_t jerr;
	json_t *root;
	const struct wsmsg_kind *kind = NULL;
	int rc = -1;

	memset(err, 0, sizeof(*err));
	m->nhashes = 0;
	m->has_hash = 0;
	if (len > WSMSG_MAX_TEXT)
		return fail(err, "too_large", "text messages are limited to 64 KiB");
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return fail(err, "bad_request", "malformed JSON: %s", jerr.text);
	if (!json_is_object(root)) {
		fail(err, "bad_request", "a message must be a JSON object");
		goto out;
	}
	json_t *type = json_object_get(root, "type");
	if (!json_is_string(type)) {
		fail(err, "bad_request", "a message needs a string \"type\"");
		goto out;
	}
	for (size_t i = 0; i < nkinds; i++)
		if (strcmp(kinds[i].name, json_string_value(type)) == 0)
			kind = &kinds[i];
	if (kind == NULL) {
		fail(err, "bad_request", "unknown message type");
		goto out;
	}
	m->type = kind->type;
	switch (kind->shape) {
	case SHAPE_HASHES: {
		json_t *list = json_object_get(root, "hashes");
		if (!json_is_array(list)) {
			fail(err, "bad_request", "\"%s\" needs an array \"hashes\"", kind->name);
			goto out;
		}
		size_t n = json_array_size(list);
		if (n > WSMSG_MAX_HASHES) {
			fail(err, "too_large", "at most %d hashes in one message",
			     WSMSG_MAX_HASHES);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			if (hash_field(json_array_get(list, i), m->hashes[i]) < 0) {
				fail(err, "bad_request",
				     "hashes[%zu] is not 64 lowercase hex digits", i);
				goto out;
			}
		}
		m->nhashes = n;
		break;
	}
	case SHAPE_HASH:
	case SHAPE_COUNT:
		if (hash_field(json_object_get(root, "hash"), m->hash) < 0) {
			fail(err, "bad_request", "\"hash\" must be 64 lowercase hex digits");
			goto out;
		}
		m->has_hash = 1;
		if (kind->shape == SHAPE_COUNT) {
			json_t *v = json_object_get(root, "viewers");
			if (!json_is_integer(v) || json_integer_value(v) < 0) {
				fail(err, "bad_request", "\"viewers\" must be a whole number");
				goto out;
			}
			m->number = (uint64_t)json_integer_value(v);
		}
		break;
	case SHAPE_FILE:
		if (hash_field(json_object_get(root, "manifest"), m->hash) < 0) {
			fail(err, "bad_request", "\"manifest\" must be 64 lowercase hex digits");
			goto out;
		}
		m->has_hash = 1;
		if (hash_field(json_object_get(root, "sha256"), m->sha256) < 0) {
			fail(err, "bad_request", "\"sha256\" must be 64 lowercase hex digits");
			goto out;
		}
		break;
	case SHAPE_WELCOME: {
		json_t *v = json_object_get(root, "max_blob");
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			fail(err, "bad_request", "\"max_blob\" must be a positive number");
			goto out;
		}
		m->number = (uint64_t)json_integer_value(v);
		memset(&m->welcome, 0, sizeof(m->welcome));
		m->welcome.max_blob = m->number;
		for (size_t i = 0; i < sizeof(wsmsg_budgets) / sizeof(wsmsg_budgets[0]); i++) {
			v = json_object_get(root, wsmsg_budgets[i].name);
			if (v == NULL)
				continue; /* a server that does not name it: the client guesses */
			if (!json_is_integer(v) || json_integer_value(v) <= 0) {
				fail(err, "bad_request", "\"%s\" must be a positive number",
				     wsmsg_budgets[i].name);
				goto out;
			}
			*(uint64_t *)((char *)&m->welcome + wsmsg_budgets[i].off) =
			    (uint64_t)json_integer_value(v);
		}
		break;
	}
	case SHAPE_ERROR: {
		copy_utf8(m->code, sizeof(m->code), json_object_get(root, "code"));
		copy_utf8(m->message, sizeof(m->message), json_object_get(root, "message"));
		m->has_hash = hash_field(json_object_get(root, "hash"), m->hash) == 0;
		break;
	}
	}
	rc = 0;
out:
	/* A list or single hash that was read before the error names the message's hash. */
	if (rc < 0 && kind && kind->shape == SHAPE_HASH &&
	    hash_field(json_object_get(root, "hash"), err->hash) == 0)
		err->has_hash = 1;
	if (rc < 0 && kind && kind->shape == SHAPE_FILE &&
	    hash_field(json_object_get(root, "manifest"), err->hash) == 0)
		err->has_hash = 1;
	json_decref(root);
	return rc;
}

int wsmsg_parse_client(const char *text, size_t len, struct wsmsg *m, struct wsmsg_error *err)
{
	return wsmsg_parse(text, len, m, err, wsmsg_client_kinds,
			   sizeof(wsmsg_client_kinds) / sizeof(wsmsg_client_kinds[0]));
}

int wsmsg_parse_server(const char *text, size_t len, struct wsmsg *m, struct wsmsg_error *err)
{
	return wsmsg_parse(text, len, m, err, wsmsg_server_kinds,
			   sizeof(wsmsg_server_kinds) / sizeof(wsmsg_server_kinds[0]));
}

static char *wsmsg_dump(json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

char *wsmsg_welcome(const struct wsmsg_welcome *w)
{
	json_t *o = json_pack("{s:s, s:i, s:I}", "type", "welcome", "version", 1, "max_blob",
			      (json_int_t)w->max_blob);
	for (size_t i = 0; o && i < sizeof(wsmsg_budgets) / sizeof(wsmsg_budgets[0]); i++) {
		uint64_t v = *(const uint64_t *)((const char *)w + wsmsg_budgets[i].off);
		if (v && json_object_set_new(o, wsmsg_budgets[i].name,
					     json_integer((json_int_t)v)) < 0) {
			json_decref(o);
			o = NULL;
		}
	}
	return wsmsg_dump(o);
}

/*
 * request and count go with every want and differ from one to the next only in the hash and the
 * number. Each is a jansson object built once per thread and kept: its values are replaced in
 * place and it is dumped (compact, keys in the order packed) into a buffer on the stack, so a
 * message costs one dump and no tree (a tree per message was a sixth of the gateway's CPU per
 * small want).
 */
struct wsmsg_kept {
	json_t *tree, *hash, *number; /* number: NULL for request */
};

static _Thread_local struct wsmsg_kept wsmsg_kept_request, wsmsg_kept_count;

static char *wsmsg_kept_dump(struct wsmsg_kept *k, const uint8_t hash[HASH_LEN], uint32_t number)
{
	char hex[HASH_HEX_LEN + 1], line[WSMSG_FIXED_MAX];
	hash_to_hex(hash, hex);
	if (json_string_setn_nocheck(k->hash, hex, HASH_HEX_LEN) < 0 ||
	    (k->number && json_integer_set(k->number, (json_int_t)number) < 0))
		return NULL;
	size_t n = json_dumpb(k->tree, line, sizeof(line), JSON_COMPACT);
	if (n == 0 || n >= sizeof(line))
		return NULL;
	char *text = malloc(n + 1);
	if (text) {
		memcpy(text, line, n);
		text[n] = '\0';
	}
	return text;
}

/* The kept object of a type: packed on first use, with a placeholder hash and number. */
static struct wsmsg_kept *wsmsg_kept(struct wsmsg_kept *k, const char *type, const char *number)
{
	if (k->tree)
		return k;
	k->tree = number ? json_pack("{s:s, s:s, s:i}", "type", type, "hash", "", number, 0)
			 : json_pack("{s:s, s:s}", "type", type, "hash", "");
	k->hash = json_object_get(k->tree, "hash");
	k->number = number ? json_object_get(k->tree, number) : NULL;
	if (k->tree && k->hash && (number == NULL || k->number))
		return k;
	json_decref(k->tree);
	k->tree = NULL;
	return NULL;
}

char *wsmsg_request(const uint8_t hash[HASH_LEN])
{
	struct wsmsg_kept *k = wsmsg_kept(&wsmsg_kept_request, "request", NULL);
	return k ? wsmsg_kept_dump(k, hash, 0) : NULL;
}

char *wsmsg_count(const uint8_t hash[HASH_LEN], uint32_t viewers)
{
	struct wsmsg_kept *k = wsmsg_kept(&wsmsg_kept_count, "count", "viewers");
	return k ? wsmsg_kept_dump(k, hash, viewers) : NULL;
}

char *wsmsg_error(const char *code, const uint8_t *hash, const char *message)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message",
			      message ? message : code);
	if (o && hash) {
		char hex[HASH_HEX_LEN + 1];
		hash_to_hex(hash, hex);
		json_object_set_new(o, "hash", json_string(hex));
	}
	return wsmsg_dump(o);
}

static const char *wsmsg_client_name(enum wsmsg_type type)
{
	for (size_t i = 0; i < sizeof(wsmsg_client_kinds) / sizeof(wsmsg_client_kinds[0]); i++)
		if (wsmsg_client_kinds[i].type == type)
			return wsmsg_client_kinds[i].name;
	return NULL;
}

char *wsmsg_client_hashes(enum wsmsg_type type, const uint8_t (*hashes)[HASH_LEN], size_t n)
{
	const char *name = wsmsg_client_name(type);
	if (name == NULL)
		return NULL;
	json_t *list = json_array();
	for (size_t i = 0; list && i < n; i++) {
		char hex[HASH_HEX_LEN + 1];
		hash_to_hex(hashes[i], hex);
		json_array_append_new(list, json_string(hex));
	}
	return wsmsg_dump(json_pack("{s:s, s:o}", "type", name, "hashes", list));
}

char *wsmsg_client_hash(enum wsmsg_type type, const uint8_t hash[HASH_LEN])
{
	const char *name = wsmsg_client_name(type);
	char hex[HASH_HEX_LEN + 1];
	hash_to_hex(hash, hex);
	return name ? wsmsg_dump(json_pack("{s:s, s:s}", "type", name, "hash", hex)) : NULL;
}

char *wsmsg_client_file(const uint8_t sha256[HASH_LEN], const uint8_t manifest[HASH_LEN])
{
	char file[HASH_HEX_LEN + 1], man[HASH_HEX_LEN + 1];
	hash_to_hex(sha256, file);
	hash_to_hex(manifest, man);
	return wsmsg_dump(
	    json_pack("{s:s, s:s, s:s}", "type", "file", "sha256", file, "manifest", man));
}
