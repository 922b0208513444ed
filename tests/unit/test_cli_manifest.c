/*
 * test_cli_manifest.c — the terminal client's manifest rules (cli/manifest.c), as files.js has
 * them: piece sizes, telling a manifest from a page, validation of untrusted manifests, safe
 * names to save under, and hashing a file piece by piece.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../cli/cli.h"

#define H   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define MIB (1024 * 1024)

struct size_case {
	uint64_t size;
	uint64_t max_blob;
	uint64_t piece; /* 0: too large */
};

static const struct size_case size_cases[] = {
    {0, MIB, 256 * 1024},
    {1, MIB, 256 * 1024},
    {700 * MIB, MIB, 256 * 1024},     /* 2800 pieces: the manifest still fits */
    {5000ULL * MIB, MIB, 512 * 1024}, /* 20000 pieces of 256 KiB would not */
    {1 * MIB, 64 * 1024, 64 * 1024},  /* max_blob below 256 KiB: halve down to it */
    {100 * MIB, 64 * 1024, 0},	      /* 1600 pieces of 64 KiB: a manifest of 107 KB */
    {10 * MIB, 16 * 1024, 0},	      /* 640 pieces of 16 KiB: a manifest of 43 KB */
    {1000, 8 * 1024, 0},	      /* max_blob below the smallest piece */
    {200000ULL * MIB, MIB, 0},	      /* too many pieces at any size */
};

static void test_piece_size(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		const struct size_case *c = &size_cases[i];
		uint64_t got = 0;
		char err[256];
		int rc = manifest_piece_size(c->size, "movie.mp4", "video/mp4", c->max_blob, &got,
					     err, sizeof(err));
		if (c->piece == 0) {
			assert_int_equal(rc, -1);
			assert_true(strlen(err) > 0);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(got, c->piece);
		}
	}
}

struct parse_case {
	const char *text;
	int kind; /* 1 manifest, 0 page, -1 malformed */
};

#define M(rest) "{\"ephemeral\":\"manifest\",\"version\":1," rest "}"

static const struct parse_case parse_cases[] = {
    {M("\"name\":\"a\",\"type\":\"text/plain\",\"size\":3,\"piece_size\":16384,\"pieces\":[\"" H
       "\"]"),
     1},
    {" \n" M("\"name\":\"a\",\"size\":0,\"piece_size\":262144,\"pieces\":[]"), 1},
    {M("\"name\":\"a\",\"size\":3.0,\"piece_size\":16384,\"pieces\":[\"" H "\"]"), 1},
    /* pages: anything that does not say it is a manifest */
    {"<!doctype html><p>hi</p>", 0},
    {"{not json", 0},
    {"[1,2]", 0},
    {"{\"ephemeral\":\"manifest\",\"version\":2,\"name\":\"a\"}", 0},
    {"{\"ephemeral\":\"page\",\"version\":1}", 0},
    {"{\"ephemeral\":\"manifest\"}", 0},
    /* malformed manifests */
    {M("\"size\":3,\"piece_size\":16384,\"pieces\":[\"" H "\"]"), -1},
    {M("\"name\":7,\"size\":3,\"piece_size\":16384,\"pieces\":[\"" H "\"]"), -1},
    {M("\"name\":\"a\",\"type\":5,\"size\":3,\"piece_size\":16384,\"pieces\":[\"" H "\"]"), -1},
    {M("\"name\":\"a\",\"size\":-1,\"piece_size\":16384,\"pieces\":[]"), -1},
    {M("\"name\":\"a\",\"size\":3.5,\"piece_size\":16384,\"pieces\":[\"" H "\"]"), -1},
    {M("\"name\":\"a\",\"size\":3,\"piece_size\":20000,\"pieces\":[\"" H "\"]"), -1},
    {M("\"name\":\"a\",\"size\":3,\"piece_size\":8192,\"pieces\":[\"" H "\"]"), -1},
    {M("\"name\":\"a\",\"size\":3,\"piece_size\":2097152,\"pieces\":[\"" H "\"]"), -1},
    {M("\"name\":\"a\",\"size\":3,\"piece_size\":16384"), -1},
    {M("\"name\":\"a\",\"size\":40000,\"piece_size\":16384,\"pieces\":[\"" H "\"]"), -1},
    {M("\"name\":\"a\",\"size\":3,\"piece_size\":16384,\"pieces\":[\"" H "\",\"" H "\"]"), -1},
    {M("\"name\":\"a\",\"size\":3,\"piece_size\":16384,\"pieces\":[\"XYZ\"]"), -1},
    {M("\"name\":\"a\",\"size\":3,\"piece_size\":16384,\"pieces\":[7]"), -1},
};

static void test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct manifest m;
		char err[256] = "";
		int kind = manifest_parse((const uint8_t *)c->text, strlen(c->text), MIB, &m, err,
					  sizeof(err));
		if (kind != c->kind)
			fail_msg("case %zu (%s): kind %d, expected %d (%s)", i, c->text, kind,
				 c->kind, err);
		if (kind == 1) {
			assert_string_equal(m.name, "a");
			assert_non_null(m.type);
			manifest_free(&m);
		}
		if (kind < 0)
			assert_true(strlen(err) > 0);
	}
}

/* "sha256" is optional; when present it must be a SHA-256, and it is read back. */
static void test_sha256_field(void **state)
{
	(void)state;
	static const char with[] = M("\"name\":\"a\",\"size\":3,\"sha256\":\"" H
				     "\",\"piece_size\":16384,\"pieces\":[\"" H "\"]");
	static const char without[] =
	    M("\"name\":\"a\",\"size\":3,\"piece_size\":16384,\"pieces\":[\"" H "\"]");
	static const char *const bad[] = {
	    M("\"name\":\"a\",\"size\":3,\"sha256\":\"XYZ\",\"piece_size\":16384,\"pieces\":[\"" H
	      "\"]"),
	    M("\"name\":\"a\",\"size\":3,\"sha256\":7,\"piece_size\":16384,\"pieces\":[\"" H "\"]"),
	    M("\"name\":\"a\",\"size\":3,\"sha256\":"
	      "\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\","
	      "\"piece_size\":16384,\"pieces\":[\"" H "\"]"),
	};
	uint8_t want[HASH_LEN];
	struct manifest m;
	char err[256];
	assert_int_equal(hash_from_hex(H, HASH_HEX_LEN, want), 0);
	assert_int_equal(
	    manifest_parse((const uint8_t *)with, strlen(with), MIB, &m, err, sizeof(err)), 1);
	assert_true(m.has_sha256);
	assert_memory_equal(m.sha256, want, HASH_LEN);
	manifest_free(&m);
	assert_int_equal(
	    manifest_parse((const uint8_t *)without, strlen(without), MIB, &m, err, sizeof(err)),
	    1);
	assert_false(m.has_sha256);
	manifest_free(&m);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(manifest_parse((const uint8_t *)bad[i], strlen(bad[i]), MIB, &m,
						err, sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "sha256"));
	}
	/* Built with it: after "size", before "piece_size", as the pages write it. */
	uint8_t piece[1][HASH_LEN];
	memcpy(piece[0], want, HASH_LEN);
	struct manifest b = {.name = "a",
			     .type = "text/plain",
			     .size = 3,
			     .piece_size = 16384,
			     .npieces = 1,
			     .pieces = piece,
			     .has_sha256 = 1};
	memcpy(b.sha256, want, HASH_LEN);
	size_t len;
	char *text = manifest_build(&b, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"size\":3,\"sha256\":\"" H "\",\"piece_size\":16384,"));
	free(text);
	b.has_sha256 = 0;
	text = manifest_build(&b, &len);
	assert_non_null(text);
	assert_null(strstr(text, "sha256"));
	free(text);
}

static void test_build_reads_back(void **state)
{
	(void)state;
	uint8_t pieces[2][HASH_LEN];
	memset(pieces[0], 0xab, HASH_LEN);
	memset(pieces[1], 0x01, HASH_LEN);
	struct manifest m = {.name = "héllo \"x\".txt",
			     .type = "text/plain",
			     .size = 20000,
			     .piece_size = 16384,
			     .npieces = 2,
			     .pieces = pieces};
	size_t len;
	char *text = manifest_build(&m, &len);
	assert_non_null(text);
	/* Key order and compact form as the pages write them (JSON.stringify). */
	assert_memory_equal(text, "{\"ephemeral\":\"manifest\",\"version\":1,\"name\":\"héllo ",
			    strlen("{\"ephemeral\":\"manifest\",\"version\":1,\"name\":\"héllo "));
	struct manifest back;
	char err[256];
	assert_int_equal(manifest_parse((uint8_t *)text, len, MIB, &back, err, sizeof(err)), 1);
	assert_string_equal(back.name, m.name);
	assert_string_equal(back.type, "text/plain");
	assert_int_equal(back.size, 20000);
	assert_int_equal(back.npieces, 2);
	assert_memory_equal(back.pieces, pieces, sizeof(pieces));
	assert_int_equal(manifest_piece_len(&back, 0), 16384);
	assert_int_equal(manifest_piece_len(&back, 1), 20000 - 16384);
	manifest_free(&back);
	free(text);
}

struct name_case {
	const char *name;
	const char *safe;
};

static const struct name_case name_cases[] = {
    {"report.pdf", "report.pdf"}, {"../../etc/passwd", "_._.._etc_passwd"},
    {"/abs/path", "_abs_path"},	  {"a\\b", "a_b"},
    {".bashrc", "_bashrc"},	  {".", "download"},
    {"..", "download"},		  {"", "download"},
    {"   ", "download"},	  {"  spaced  ", "spaced"},
    {"tab\there\n", "tabhere"},	  {"ünï ✓.txt", "ünï ✓.txt"},
};

static void test_safe_name(void **state)
{
	(void)state;
	char out[256];
	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		manifest_safe_name(name_cases[i].name, out, sizeof(out));
		assert_string_equal(out, name_cases[i].safe);
	}
	/* Long names are cut at 255 bytes, never inside a UTF-8 sequence. */
	char longname[1000] = "";
	for (int i = 0; i < 200; i++)
		strcat(longname, "é");
	manifest_safe_name(longname, out, sizeof(out));
	assert_int_equal(strlen(out), 254);
	assert_string_equal(manifest_guess_type("x.HTML"), "text/html");
	assert_string_equal(manifest_guess_type("noext"), "application/octet-stream");
	assert_string_equal(manifest_guess_type(".png"), "application/octet-stream");
}

static void test_hash_file(void **state)
{
	(void)state;
	char path[] = "/tmp/test_cli_manifest_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	static uint8_t data[16384 * 2 + 100];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	struct manifest m = {.size = sizeof(data), .piece_size = 16384};
	char err[128];
	assert_int_equal(manifest_hash_file(fd, &m, NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(m.npieces, 3);
	uint8_t want[HASH_LEN];
	hash_compute(data + 32768, 100, want);
	assert_memory_equal(m.pieces[2], want, HASH_LEN);
	/* The whole file's plain SHA-256, from the same pass (what sha256sum prints). */
	assert_true(m.has_sha256);
	hash_compute(data, sizeof(data), want);
	assert_memory_equal(m.sha256, want, HASH_LEN);
	free(m.pieces);
	/* A file that shrank under us is an error, not a short piece. */
	struct manifest big = {.size = sizeof(data) + 1, .piece_size = 16384};
	assert_int_equal(manifest_hash_file(fd, &big, NULL, NULL, err, sizeof(err)), -1);
	free(big.pieces);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_piece_size),	     cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_build_reads_back), cmocka_unit_test(test_safe_name),
	    cmocka_unit_test(test_hash_file),	     cmocka_unit_test(test_sha256_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
