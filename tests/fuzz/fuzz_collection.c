/*
 * fuzz_collection.c — libFuzzer target for untrusted collections (common/collection.c).
 *
 * The bytes go to collection_parse(). A refusal must be a terminated sentence starting with
 * "refused:"; an accepted collection must pass every rule again, and its canonical form must
 * read back as the same collection and build to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "collection.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct collection c, back;
	char err[1024];
	memset(err, 'x', sizeof(err));
	int rc = collection_parse(data, size, &c, err, sizeof(err));
	if (rc < 0) {
		if (memchr(err, '\0', sizeof(err)) == NULL ||
		    (strncmp(err, "refused:", 8) != 0 && strcmp(err, "out of memory") != 0))
			abort();
		return 0;
	}
	if (rc == 0)
		return 0;
	if (c.nfiles == 0 || collection_check(&c, err, sizeof(err)) < 0)
		abort();
	size_t len;
	char *text = collection_build(&c, &len);
	if (text == NULL)
		abort();
	if (collection_parse((const uint8_t *)text, len, &back, err, sizeof(err)) != 1 ||
	    back.nfiles != c.nfiles || strcmp(back.name, c.name) != 0)
		abort();
	for (size_t i = 0; i < c.nfiles; i++)
		if (strcmp(back.files[i].path, c.files[i].path) != 0 ||
		    back.files[i].size != c.files[i].size)
			abort();
	char *again = collection_build(&back, NULL);
	if (again == NULL || strcmp(again, text) != 0)
		abort();
	free(again);
	free(text);
	collection_free(&back);
	collection_free(&c);
	return 0;
}
