/*
 * collection.h — several files under one address (PROTOCOL.md "Content model", docs/FILES.md
 * "Collections"): the canonical JSON both clients write, and the rules a reader checks before it
 * writes anything.
 *
 * Lives in common/ (not cli/) only so that the fuzz target links it with the rest of common/;
 * the hub and the gateways never read collections (to them a collection is one more blob).
 */
#ifndef EPH_COLLECTION_H
#define EPH_COLLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define COLLECTION_VERSION 1
/* A file's size must be exact in a JavaScript number, as the pages read it. */
#define COLLECTION_MAX_SIZE 9007199254740991ULL
/* A whole number of bytes a JavaScript number holds exactly (1e3 and 5.0 are; 1.5, -1 and more
 * than COLLECTION_MAX_SIZE not): a file's size, as the pages read it, in a collection and in a
 * manifest (cli/manifest.c) alike. 0 with *out, or -1. */
struct json_t;
int collection_json_size(const struct json_t *v, uint64_t *out);
/* How much of an untrusted path an error message quotes. */
#define COLLECTION_QUOTE_MAX 200

struct collection_file {
	char *path; /* relative, '/'-separated, UTF-8 */
	uint8_t manifest[HASH_LEN];
	uint64_t size;
	uint8_t sha256[HASH_LEN];
};

struct collection {
	char *name;
	struct collection_file *files;
	size_t nfiles;
};

/*
 * One path against PROTOCOL.md's rules (len bytes, which may hold NUL): relative, no empty
 * component, no "." or "..", no backslash, NUL or control character (U+0000–U+001F, U+007F,
 * U+0080–U+009F). 0, or -1 with a reason such as `refused: path "../x" leaves the folder`.
 */
int collection_check_path(const char *path, size_t len, char *err, size_t errlen);
/* A collection's name, at share time: text without control characters. 0 or -1. */
int collection_check_name(const char *name, char *err, size_t errlen);
/* Sorts the files by path (as UTF-8 bytes), then refuses a path listed twice or a file that is
 * also a folder of another ("a" and "a/b"). 0 or -1 with a reason. */
int collection_check_tree(struct collection *c, char *err, size_t errlen);
/* Every rule: at least one file, each path, the tree. Sorts c->files. 0 or -1. */
int collection_check(struct collection *c, char *err, size_t errlen);
/* The canonical JSON (compact, fixed key order, files sorted by path): malloc'd, *len its
 * length. c must pass collection_check(). NULL on out of memory. */
char *collection_build(struct collection *c, size_t *len);
/*
 * An untrusted blob. 1: a valid collection, c filled and sorted (collection_free it); 0: not a
 * collection (a page or a manifest); -1: it says it is a collection but breaks a rule (an
 * unknown version included), with the reason in err. Nothing is kept on -1.
 */
int collection_parse(const uint8_t *data, size_t len, struct collection *c, char *err,
		     size_t errlen);
/* A fetched manifest against its entry: its size and its sha256 (NULL if it names none) must be
 * the entry's. 0, or -1 with a reason. */
int collection_check_manifest(const struct collection_file *f, uint64_t size, const uint8_t *sha256,
			      char *err, size_t errlen);
/* The file with this path, or NULL. */
const struct collection_file *collection_find(const struct collection *c, const char *path);
/* Sum of the files' sizes. */
uint64_t collection_total(const struct collection *c);
void collection_free(struct collection *c);
/* Untrusted text fit for a message: `"` `\` and control characters escaped (\u001b), cut at
 * COLLECTION_QUOTE_MAX bytes. Always NUL-terminated. */
void collection_quote(const char *s, size_t len, char *out, size_t outlen);

#endif
