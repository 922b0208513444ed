/*
 * files.c — files findable by their plain SHA-256: file hash -> the manifests that declare it.
 *
 * A gateway sends FILE only after reading, in a manifest blob it verified itself, a "sha256"
 * equal to what its connection announced (ws-gateway/files.c); this module lists the manifest
 * under that file hash if the connection still holds the manifest here too. A manifest is
 * content-addressed, so what it declares never changes: the entry belongs to the manifest, not to
 * the connection that announced it, and lasts while anyone holds the manifest. counts_flush()
 * hands every hash whose count changed to files_changed(), which forgets a manifest with its last
 * holder. Answers are ranked by the manifests' viewers at the time of asking. Owns struct fileent
 * and struct filelink; called by link.c (FILE, FILES), operator.c (lookup) and counts.c.
 */
#include "hub.h"
#include "log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct fileent {
	uint8_t sha256[HASH_LEN];
	LIST_HEAD(, filelink) manifests;
};

struct filelink {
	uint8_t manifest[HASH_LEN];
	struct fileent *f;
	LIST_ENTRY(filelink) entry;
};

void files_init(struct hub *hub)
{
	map_init(&hub->files, offsetof(struct fileent, sha256), HASH_LEN);
	map_init(&hub->file_manifests, offsetof(struct filelink, manifest), HASH_LEN);
}

static void files_unlink(struct hub *hub, struct filelink *l)
{
	struct fileent *f = l->f;
	map_del(&hub->file_manifests, l->manifest);
	LIST_REMOVE(l, entry);
	free(l);
	if (LIST_EMPTY(&f->manifests)) {
		map_del(&hub->files, f->sha256);
		free(f);
	}
}

void files_free(struct hub *hub)
{
	struct filelink *l;
	size_t it = 0;
	while ((l = map_next(&hub->file_manifests, &it))) {
		files_unlink(hub, l);
		it = 0; /* the map changed under the iterator */
	}
	map_free(&hub->files);
	map_free(&hub->file_manifests);
}

int files_confirm(struct hub *hub, struct conn *c, const uint8_t manifest[HASH_LEN],
		  const uint8_t sha256[HASH_LEN])
{
	if (!registry_holds(hub, c, manifest))
		return 0; /* dropped meanwhile: its gateway announces it again if it comes back */
	struct filelink *l = map_get(&hub->file_manifests, manifest);
	if (l) {
		if (memcmp(l->f->sha256, sha256, HASH_LEN) != 0)
			log_warnx("%s: gateway %s: manifest already listed under another file hash",
				  __func__, c->gw->name);
		return 0;
	}
	struct fileent *f = map_get(&hub->files, sha256);
	int fresh = f == NULL;
	if (fresh) {
		f = calloc(1, sizeof(*f));
		if (f == NULL)
			return -1;
		memcpy(f->sha256, sha256, HASH_LEN);
		LIST_INIT(&f->manifests);
		if (map_put(&hub->files, f) < 0) {
			free(f);
			return -1;
		}
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL ||
	    (memcpy(l->manifest, manifest, HASH_LEN), map_put(&hub->file_manifests, l)) < 0) {
		free(l);
		if (fresh) {
			map_del(&hub->files, sha256);
			free(f);
		}
		return -1;
	}
	l->f = f;
	LIST_INSERT_HEAD(&f->manifests, l, entry);
	return 1;
}

void files_changed(struct hub *hub, const struct hashent *h)
{
	if (h->viewers > 0)
		return;
	struct filelink *l = map_get(&hub->file_manifests, h->hash);
	if (l)
		files_unlink(hub, l);
}

static int files_by_viewers(const void *a, const void *b)
{
	uint32_t va = get_u32((const uint8_t *)a + HASH_LEN),
		 vb = get_u32((const uint8_t *)b + HASH_LEN);
	if (va != vb)
		return va < vb ? 1 : -1;
	return memcmp(a, b, HASH_LEN);
}

size_t files_lookup(struct hub *hub, const uint8_t sha256[HASH_LEN],
		    uint8_t out[HUBPROTO_MAX_MANIFESTS][HUBPROTO_COUNT_ENTRY])
{
	struct fileent *f = map_get(&hub->files, sha256);
	uint8_t *all = NULL;
	size_t n = 0, cap = 0;
	if (f == NULL)
		return 0;
	struct filelink *l;
	LIST_FOREACH(l, &f->manifests, entry)
	{
		uint32_t viewers = registry_viewers(hub, l->manifest);
		if (viewers == 0)
			continue; /* its last holder left this turn: forgotten at the next flush */
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : HUBPROTO_MAX_MANIFESTS;
			uint8_t *grown = realloc(all, ncap * HUBPROTO_COUNT_ENTRY);
			if (grown == NULL)
				break; /* out of memory: answer with what fits */
			all = grown;
			cap = ncap;
		}
		memcpy(all + n * HUBPROTO_COUNT_ENTRY, l->manifest, HASH_LEN);
		put_u32(all + n * HUBPROTO_COUNT_ENTRY + HASH_LEN, viewers);
		n++;
	}
	if (n > 1)
		qsort(all, n, HUBPROTO_COUNT_ENTRY, files_by_viewers);
	if (n > HUBPROTO_MAX_MANIFESTS)
		n = HUBPROTO_MAX_MANIFESTS;
	if (n)
		memcpy(out, all, n * HUBPROTO_COUNT_ENTRY);
	free(all);
	return n;
}
