/*
 * test_collection.c — collections (common/collection.c): the canonical form both clients write,
 * and every hostile collection a reader must refuse before it writes anything, each with the
 * sentence a person sees. Cases are data: a JSON text and the words its refusal must hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collection.h"

#define H "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define S "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
/* One entry of a collection with the given path (a JSON string literal's inside) and size. */
#define E(path, size)                                                                              \
	"{\"path\":\"" path "\",\"manifest\":\"" H "\",\"size\":" size ",\"sha256\":\"" S "\"}"
#define C(files) "{\"ephemeral\":\"collection\",\"version\":1,\"name\":\"n\",\"files\":[" files "]}"

struct parse_case {
	const char *text;
	int rc;		  /* 1 a collection, 0 not one, -1 refused */
	const char *says; /* words the refusal holds */
};

static const struct parse_case parse_cases[] = {
    {C(E("a.txt", "1")), 1, NULL},
    {C(E("photos/beach.jpg", "2212345") "," E("notes.txt", "0")), 1, NULL},
    {C(E("caf\xc3\xa9/\xe2\x9c\x93.txt", "5")), 1, NULL}, /* UTF-8 is fine */
    {C(E("a", "5.0")), 1, NULL}, /* a whole number, as JavaScript reads it */
    {C(E("a", "1e3")), 1, NULL},
    {"<html>{}</html>", 0, NULL},
    {"{\"ephemeral\":\"manifest\",\"version\":1}", 0, NULL},
    {"{\"a\":1}", 0, NULL},
    {"[1,2]", 0, NULL},
    /* paths */
    {C(E("../x", "1")), -1, "refused: path \"../x\" leaves the folder"},
    {C(E("a/../../x", "1")), -1, "leaves the folder"},
    {C(E("..", "1")), -1, "leaves the folder"},
    {C(E("./a", "1")), -1, "has a \".\" component"},
    {C(E("a/./b", "1")), -1, "has a \".\" component"},
    {C(E("/etc/passwd", "1")), -1, "refused: path \"/etc/passwd\" is absolute"},
    {C(E("a\\\\b", "1")), -1, "refused: path \"a\\\\b\" holds a backslash"},
    {C(E("..\\\\x", "1")), -1, "holds a backslash"},
    {C(E("a\\u0000b", "1")), -1, "refused: path \"a\\u0000b\" holds NUL"},
    {C(E("a\\u001bb", "1")), -1, "refused: path \"a\\u001bb\" holds a control character"},
    {C(E("a\\nb", "1")), -1, "holds a control character"},
    {C(E("a\\u007f", "1")), -1, "holds a control character"},
    {C(E("a\\u009b", "1")), -1, "refused: path \"a\\u009b\" holds a control character"},
    {C(E("a//b", "1")), -1, "has an empty component"},
    {C(E("", "1")), -1, "refused: a path is empty"},
    {C(E("a/", "1")), -1, "refused: path \"a/\" ends with \"/\""},
    /* the tree */
    {C(E("a", "1") "," E("a", "2")), -1, "refused: path \"a\" is listed twice"},
    {C(E("a", "1") "," E("a-b", "1") "," E("a/b", "1")), -1,
     "refused: path \"a\" is a file and also a folder (of \"a/b\")"},
    {C(E("a/b/c", "1") "," E("a/b", "1")), -1, "path \"a/b\" is a file and also a folder"},
    {C(E("a/b", "1") "," E("a", "1")), -1, "path \"a\" is a file and also a folder"},
    {C(E("ab", "1") "," E("a/b", "1") "," E("a-b", "1")), 1, NULL},
    /* fields */
    {C(E("a", "-1")), -1, "refused: \"a\" has a size that is not a whole number of bytes"},
    {C(E("a", "1.5")), -1, "has a size that is not a whole number"},
    {C(E("a", "\"1\"")), -1, "has a size that is not a whole number"},
    {C(E("a", "9007199254740992")), -1, "has a size that is not a whole number"},
    {C("{\"path\":\"a\",\"manifest\":\"" H "\",\"sha256\":\"" S "\"}"), -1,
     "has a size that is not"},
    {C("{\"path\":\"a\",\"manifest\":\"0123\",\"size\":1,\"sha256\":\"" S "\"}"), -1,
     "refused: \"a\" has a manifest address that is not 64 lowercase hex digits"},
    {C("{\"path\":\"a\",\"manifest\":\"" S "\",\"size\":1,\"sha256\":\"" S "\"}"), 1, NULL},
    {C("{\"path\":\"a\",\"manifest\":\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789"
       "abcdef\",\"size\":1,\"sha256\":\"" S "\"}"),
     -1, "has a manifest address that is not 64 lowercase"},
    {C("{\"path\":\"a\",\"manifest\":\"" H "\",\"size\":1,\"sha256\":\"zz\"}"), -1,
     "refused: \"a\" has a sha256 that is not 64 lowercase hex digits"},
    {C("{\"path\":\"a\",\"manifest\":\"" H "\",\"size\":1}"), -1, "has a sha256 that is not"},
    {C("{\"manifest\":\"" H "\",\"size\":1,\"sha256\":\"" S "\"}"), -1,
     "refused: file 1 of the list has no path"},
    {C(E("a", "1") ",3"), -1, "refused: file 2 of the list is not an object"},
    {C(""), -1, "refused: the collection lists no files"},
    {"{\"ephemeral\":\"collection\",\"version\":1,\"name\":\"n\"}", -1,
     "refused: the collection has no list of files"},
    {"{\"ephemeral\":\"collection\",\"version\":1,\"name\":\"n\",\"files\":{}}", -1,
     "has no list of files"},
    {"{\"ephemeral\":\"collection\",\"version\":1,\"files\":[" E("a", "1") "]}", -1,
     "refused: the collection has no name"},
    /* another version, or none: a page (PROTOCOL.md), as a manifest of another version is */
    {"{\"ephemeral\":\"collection\",\"version\":2,\"name\":\"n\",\"files\":[" E("a", "1") "]}", 0,
     NULL},
    {"{\"ephemeral\":\"collection\",\"name\":\"n\",\"files\":[" E("a", "1") "]}", 0, NULL},
};

static void test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *pc = &parse_cases[i];
		struct collection c;
		char err[512] = "";
		int rc = collection_parse((const uint8_t *)pc->text, strlen(pc->text), &c, err,
					  sizeof(err));
		if (rc != pc->rc || (pc->says && strstr(err, pc->says) == NULL))
			fail_msg("case %zu (%s): rc %d, \"%s\"", i, pc->text, rc, err);
		if (rc == 1)
			assert_true(c.nfiles > 0);
		collection_free(&c);
	}
}

/* The canonical form, byte for byte: what files.js writes for the same folder. */
static void test_build_canonical(void **state)
{
	(void)state;
	struct collection_file files[] = {
	    {.path = "photos/beach.jpg", .size = 2212345},
	    {.path = "\xc3\xa9t\xc3\xa9.txt", .size = 3}, /* "été.txt": after every ASCII path */
	    {.path = "notes.txt", .size = 812},
	    {.path = "photos-2/a b.txt", .size = 0},
	};
	for (size_t i = 0; i < 4; i++) {
		hash_from_hex(H, HASH_HEX_LEN, files[i].manifest);
		hash_from_hex(S, HASH_HEX_LEN, files[i].sha256);
	}
	struct collection c = {.name = "holiday", .files = files, .nfiles = 4};
	char err[256];
	assert_int_equal(collection_check(&c, err, sizeof(err)), 0);
	size_t len;
	char *text = collection_build(&c, &len);
	assert_non_null(text);
	const char *want =
	    "{\"ephemeral\":\"collection\",\"version\":1,\"name\":\"holiday\","
	    "\"files\":[" E("notes.txt", "812") "," E("photos-2/a b.txt", "0") "," E(
		"photos/beach.jpg", "2212345") "," E("\xc3\xa9t\xc3\xa9.txt", "3") "]}";
	assert_string_equal(text, want);
	assert_int_equal(len, strlen(want));
	/* It reads back as itself. */
	struct collection back;
	assert_int_equal(collection_parse((uint8_t *)text, len, &back, err, sizeof(err)), 1);
	assert_string_equal(back.name, "holiday");
	assert_int_equal(back.nfiles, 4);
	assert_string_equal(back.files[3].path, "\xc3\xa9t\xc3\xa9.txt");
	assert_int_equal(back.files[2].size, 2212345);
	assert_int_equal(collection_total(&back), 812 + 2212345 + 3);
	assert_non_null(collection_find(&back, "notes.txt"));
	assert_null(collection_find(&back, "notes"));
	char *again = collection_build(&back, NULL);
	assert_string_equal(again, text);
	free(again);
	free(text);
	collection_free(&back);
}

static void test_check_share_side(void **state)
{
	(void)state;
	char err[256];
	struct collection_file none[1];
	struct collection empty = {.name = "n", .files = none, .nfiles = 0};
	assert_int_equal(collection_check(&empty, err, sizeof(err)), -1);
	assert_string_equal(err, "refused: the collection lists no files");
	struct collection_file bad[] = {{.path = "ok"}, {.path = "we\\ird"}};
	struct collection c = {.name = "n", .files = bad, .nfiles = 2};
	assert_int_equal(collection_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "holds a backslash"));
	assert_int_equal(collection_check_name("holiday", err, sizeof(err)), 0);
	assert_int_equal(collection_check_name("a\x1b[2J", err, sizeof(err)), -1);
	assert_string_equal(err, "refused: the name \"a\\u001b[2J\" holds a control character");
	assert_int_equal(collection_check_name("", err, sizeof(err)), -1);
}

static void test_manifest_agrees(void **state)
{
	(void)state;
	char err[512];
	struct collection_file f = {.path = "a/b.txt", .size = 10};
	hash_from_hex(S, HASH_HEX_LEN, f.sha256);
	uint8_t other[HASH_LEN];
	hash_from_hex(H, HASH_HEX_LEN, other);
	assert_int_equal(collection_check_manifest(&f, 10, f.sha256, err, sizeof(err)), 0);
	assert_int_equal(collection_check_manifest(&f, 12, f.sha256, err, sizeof(err)), -1);
	assert_string_equal(
	    err, "refused: \"a/b.txt\" is 10 bytes in the collection but 12 in its manifest");
	assert_int_equal(collection_check_manifest(&f, 10, other, err, sizeof(err)), -1);
	assert_non_null(
	    strstr(err, "has sha256 " S " in the collection but " H " in its manifest"));
	assert_int_equal(collection_check_manifest(&f, 10, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "names no sha256"));
}

static void test_quote(void **state)
{
	(void)state;
	char out[512];
	collection_quote("a\"b\\c\x01\xc2\x9b\xc3\xa9", 10, out, sizeof(out));
	assert_string_equal(out, "a\\\"b\\\\c\\u0001\\u009b\xc3\xa9");
	char longp[1000];
	memset(longp, 'x', sizeof(longp));
	collection_quote(longp, sizeof(longp), out, sizeof(out));
	assert_true(strlen(out) <= COLLECTION_QUOTE_MAX + 3);
	assert_non_null(strstr(out, "\xe2\x80\xa6"));
	collection_quote("abc", 3, out, 3); /* a tiny buffer still ends in NUL */
	assert_true(strlen(out) < 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_build_canonical),
	    cmocka_unit_test(test_check_share_side),
	    cmocka_unit_test(test_manifest_agrees),
	    cmocka_unit_test(test_quote),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
