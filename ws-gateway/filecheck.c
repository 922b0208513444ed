/*
 * filecheck.c — `file` announcements: a manifest's plain file SHA-256, checked against the
 * manifest.
 *
 * The hub lists a manifest under a file hash only on this gateway's word (HUB_FILE), so the
 * word is given only after reading the manifest itself. A connection announces `file` for a
 * manifest it holds; the gateway then asks that connection for the manifest with an ordinary
 * `request` (the message a hub REQUEST becomes, so every client already answers it), checks the
 * answer's SHA-256 as it checks every blob (session.c), parses it, and only when it is a
 * manifest whose "sha256" is the announced hash sends the hub FILE. Anything else — a manifest
 * the connection does not hold, one that declares another hash or none, a decline, wrong bytes
 * — gets `error` bad_request and lists nothing. While the connection's answer is awaited the
 * interest is `verifying`; a hub REQUEST for the same hash meanwhile is served by that one answer
 * (hub_link.c). Owns struct file_claim: one per (connection, manifest) announced, at most
 * gateway.max_holds per connection; a listed claim is re-announced to a new hub instance with
 * the connection's holdings (hub_link.c). Called by session.c and hub_link.c.
 */
#include "gateway.h"
#include "log.h"

#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void filecheck_init(struct gateway *gw)
{
	map_init(&gw->file_claims, offsetof(struct file_claim, key),
		 sizeof(((struct file_claim *)0)->key));
}

void filecheck_free(struct gateway *gw)
{
	map_free(&gw->file_claims);
}

static struct file_claim *filecheck_claim(struct gateway *gw, struct session *s,
					  const uint8_t manifest[HASH_LEN])
{
	uint8_t key[8 + HASH_LEN];
	memcpy(key, &s->id, 8);
	memcpy(key + 8, manifest, HASH_LEN);
	return map_get(&gw->file_claims, key);
}

static void filecheck_remove(struct gateway *gw, struct session *s, struct file_claim *fc)
{
	map_del(&gw->file_claims, fc->key);
	LIST_REMOVE(fc, entry);
	s->nclaims--;
	free(fc);
}

static void filecheck_refuse(struct session *s, const uint8_t manifest[HASH_LEN], const char *why)
{
	session_send_error(s, "bad_request", manifest, why);
	limits_bad_message(s->gw, s);
}

/* Makes room for one more claim: those whose manifest is no longer held go first. */
static int filecheck_room(struct gateway *gw, struct session *s)
{
	struct file_claim *fc, *next;
	if (s->nclaims < (uint32_t)gw->max_holds)
		return 0;
	for (fc = LIST_FIRST(&s->claims); fc; fc = next) {
		next = LIST_NEXT(fc, entry);
		struct interest *in = interest_get(gw, s, fc->key + 8, 0);
		if (in == NULL || !in->holds)
			filecheck_remove(gw, s, fc);
	}
	return s->nclaims < (uint32_t)gw->max_holds ? 0 : -1;
}

void filecheck_announce(struct gateway *gw, struct session *s, const uint8_t manifest[HASH_LEN],
			const uint8_t sha256[HASH_LEN])
{
	struct interest *in = interest_get(gw, s, manifest, 0);
	if (in == NULL || !in->holds) {
		filecheck_refuse(s, manifest,
				 "announce a file only for a manifest you hold (say have first)");
		return;
	}
	struct file_claim *fc = filecheck_claim(gw, s, manifest);
	if (fc && fc->listed) {
		if (memcmp(fc->sha256, sha256, HASH_LEN) != 0)
			filecheck_refuse(s, manifest, "this manifest declares another sha256");
		return; /* listed already: nothing changes */
	}
	if (fc == NULL) {
		if (filecheck_room(gw, s) < 0) {
			filecheck_refuse(s, manifest,
					 "too many files announced on this connection");
			return;
		}
		fc = calloc(1, sizeof(*fc));
		if (fc == NULL)
			return;
		memcpy(fc->key, &s->id, 8);
		memcpy(fc->key + 8, manifest, HASH_LEN);
		if (map_put(&gw->file_claims, fc) < 0) {
			free(fc);
			return;
		}
		LIST_INSERT_HEAD(&s->claims, fc, entry);
		s->nclaims++;
	}
	memcpy(fc->sha256, sha256, HASH_LEN); /* pending: the latest announcement is checked */
	if (in->verifying)
		return; /* its bytes are on their way */
	in->verifying = 1;
	if (!in->requested) /* else the hub asked for it already: that answer serves both */
		session_send_text(s, wsmsg_request(manifest));
}

/* The file hash a verified manifest blob declares: 0, or -1 if it is no manifest or names none. */
static int filecheck_declared(const uint8_t *blob, size_t len, uint8_t out[HASH_LEN])
{
	json_t *root = json_loadb((const char *)blob, len, JSON_REJECT_DUPLICATES, NULL);
	int rc = -1;
	json_t *kind = json_object_get(root, "ephemeral");
	json_t *version = json_object_get(root, "version");
	json_t *sha = json_object_get(root, "sha256");
	if (json_is_object(root) && json_is_string(kind) &&
	    strcmp(json_string_value(kind), "manifest") == 0 && json_is_integer(version) &&
	    json_integer_value(version) == 1 && json_is_string(sha))
		rc = hash_from_hex(json_string_value(sha), json_string_length(sha), out);
	json_decref(root);
	return rc;
}

void filecheck_answered(struct gateway *gw, struct session *s, struct interest *in,
			const uint8_t *blob, size_t len)
{
	const uint8_t *manifest = in->key + 8;
	struct file_claim *fc = filecheck_claim(gw, s, manifest);
	uint8_t declared[HASH_LEN];
	in->verifying = 0;
	if (fc == NULL || fc->listed)
		return;
	if (blob == NULL) {
		filecheck_remove(gw, s, fc);
		filecheck_refuse(s, manifest, "the manifest was not sent: nothing listed");
		return;
	}
	if (filecheck_declared(blob, len, declared) < 0) {
		filecheck_remove(gw, s, fc);
		filecheck_refuse(s, manifest, "this blob is not a manifest that declares a sha256");
		return;
	}
	if (memcmp(declared, fc->sha256, HASH_LEN) != 0) {
		filecheck_remove(gw, s, fc);
		filecheck_refuse(s, manifest, "this manifest declares another sha256");
		return;
	}
	fc->listed = 1;
	uint8_t entry[HUBPROTO_FILE_ENTRY];
	memcpy(entry, manifest, HASH_LEN);
	memcpy(entry + HASH_LEN, declared, HASH_LEN);
	struct hubproto_out o = {.cmd = HUB_FILE, .id = s->id, .list = entry, .list_count = 1};
	hub_link_send(gw, &o);
}

void filecheck_forget(struct gateway *gw, struct session *s, const uint8_t manifest[HASH_LEN])
{
	struct file_claim *fc = filecheck_claim(gw, s, manifest);
	if (fc)
		filecheck_remove(gw, s, fc);
}

void filecheck_session_closed(struct gateway *gw, struct session *s)
{
	while (!LIST_EMPTY(&s->claims))
		filecheck_remove(gw, s, LIST_FIRST(&s->claims));
}

int filecheck_entry(struct gateway *gw, struct session *s, const struct file_claim *fc,
		    uint8_t out[HUBPROTO_FILE_ENTRY])
{
	struct interest *in = interest_get(gw, s, fc->key + 8, 0);
	if (!fc->listed || in == NULL || !in->holds)
		return 0;
	memcpy(out, fc->key + 8, HASH_LEN);
	memcpy(out + HASH_LEN, fc->sha256, HASH_LEN);
	return 1;
}
