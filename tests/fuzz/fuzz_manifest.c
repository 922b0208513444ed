/*
 * fuzz_manifest.c — libFuzzer target for untrusted manifests (cli/manifest.c), as the terminal
 * client receives them from any holder on the network.
 *
 * The bytes go to manifest_parse() under three blob limits a server may announce (the smallest
 * gateway.max_blob, below the smallest piece; the default; BLOB_MAX). A refusal (-1) must be a
 * terminated, non-empty reason and leave the manifest empty, as must "not a manifest" (0). An
 * accepted manifest must hold what `get` trusts before writing anything: a power-of-two piece
 * size within the limits, as many pieces as the size needs, piece lengths that add up to the
 * size, a name whose safe form (manifest_safe_name) cannot leave or hide in its folder; and it
 * must build (manifest_build) into text that parses back as the same manifest and builds to the
 * same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t fuzz_max_blobs[] = {1024, 1024 * 1024, BLOB_MAX};

static int manifest_empty(const struct manifest *m)
{
	static const struct manifest zero;
	return memcmp(m, &zero, sizeof(zero)) == 0;
}

/* What get_paths() makes of the name: a file name of at most 255 bytes, in the folder. */
static void check_safe_name(const char *name)
{
	char safe[256];
	manifest_safe_name(name, safe, sizeof(safe));
	size_t n = strlen(safe);
	if (n == 0 || n > 255 || safe[0] == '.' || safe[0] == ' ' || safe[n - 1] == ' ' ||
	    strchr(safe, '/') || strchr(safe, '\\'))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)safe[i] < 0x20 || safe[i] == 0x7f)
			abort();
}

static void check_accepted(const struct manifest *m, uint64_t max_blob)
{
	uint64_t ps = m->piece_size;
	if (m->name == NULL || m->type == NULL || m->type[0] == '\0' || m->pieces == NULL)
		abort();
	if (ps < MANIFEST_MIN_PIECE || ps > MANIFEST_MAX_PIECE || ps > max_blob || (ps & (ps - 1)))
		abort();
	if (m->npieces > MANIFEST_MAX_PIECES || (uint64_t)m->npieces * ps < m->size ||
	    (m->npieces && (uint64_t)(m->npieces - 1) * ps >= m->size))
		abort();
	uint64_t total = 0;
	for (size_t i = 0; i < m->npieces; i++) {
		uint64_t len = manifest_piece_len(m, i);
		if (len == 0 || len > ps)
			abort();
		total += len;
	}
	if (total != m->size)
		abort();
	check_safe_name(m->name);
	manifest_guess_type(m->name);
}

static void check_round_trip(const struct manifest *m, uint64_t max_blob)
{
	struct manifest back;
	char err[512];
	size_t len;
	char *text = manifest_build(m, &len);
	if (text == NULL)
		abort();
	if (manifest_parse((const uint8_t *)text, len, max_blob, &back, err, sizeof(err)) != 1)
		abort();
	if (strcmp(back.name, m->name) != 0 || strcmp(back.type, m->type) != 0 ||
	    back.size != m->size || back.piece_size != m->piece_size ||
	    back.npieces != m->npieces || back.has_sha256 != m->has_sha256 ||
	    (m->has_sha256 && memcmp(back.sha256, m->sha256, HASH_LEN) != 0) ||
	    memcmp(back.pieces, m->pieces, m->npieces * HASH_LEN) != 0)
		abort();
	size_t again_len;
	char *again = manifest_build(&back, &again_len);
	if (again == NULL || again_len != len || memcmp(again, text, len) != 0)
		abort();
	free(again);
	free(text);
	manifest_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < sizeof(fuzz_max_blobs) / sizeof(fuzz_max_blobs[0]); i++) {
		struct manifest m;
		char err[512];
		memset(err, 'x', sizeof(err));
		int rc = manifest_parse(data, size, fuzz_max_blobs[i], &m, err, sizeof(err));
		if (rc < 0) {
			if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0' ||
			    !manifest_empty(&m))
				abort();
			continue;
		}
		if (rc == 0) {
			if (!manifest_empty(&m))
				abort();
			continue;
		}
		if (rc != 1)
			abort();
		check_accepted(&m, fuzz_max_blobs[i]);
		check_round_trip(&m, fuzz_max_blobs[i]);
		manifest_free(&m);
	}
	return 0;
}
