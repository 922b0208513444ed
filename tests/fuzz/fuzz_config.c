/*
 * fuzz_config.c — libFuzzer target for the settings file parser.
 *
 * Any text either loads or is refused with a terminated message naming a line; what loads must
 * leave every integer setting within its range (they are validated when set). The same bytes,
 * NUL-terminated, also go through config_set_pair as an -o argument would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
	const char *key;
	long long min, max;
} fuzz_ints[] = {
    {"hub.heartbeat_ms", 50, 60000},	    {"hub.peer_expiry_ms", 100, 600000},
    {"hub.holder_timeout_ms", 100, 600000}, {"gateway.port", 1, 65535},
    {"gateway.max_blob", 1024, BLOB_MAX},   {"gateway.want_timeout_ms", 1000, 3600000},
    {"gateway.max_lies", 1, 1000},	    {"frontend.hub_timeout_ms", 10, 60000},
};

static void check_ranges(void)
{
	for (size_t i = 0; i < sizeof(fuzz_ints) / sizeof(fuzz_ints[0]); i++) {
		long long v = config_int(fuzz_ints[i].key);
		if (v < fuzz_ints[i].min || v > fuzz_ints[i].max)
			abort();
	}
	/* string settings never come back NULL */
	if (config_str("log.level") == NULL || config_str("gateway.name") == NULL)
		abort();
}

static void check_error(int rc, const char *err, size_t errlen, int want_line)
{
	if (rc == 0)
		return;
	if (rc != -1 || memchr(err, '\0', errlen) == NULL || err[0] == '\0')
		abort();
	if (want_line && strncmp(err, "line ", 5) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[160];

	memset(err, 0x7f, sizeof(err));
	int rc = config_load_text((const char *)data, size, err, sizeof(err));
	check_error(rc, err, sizeof(err), 1);
	check_ranges();
	config_reset();

	char *pair = malloc(size + 1);
	if (pair == NULL)
		return 0;
	memcpy(pair, data, size);
	pair[size] = '\0';
	memset(err, 0x7f, sizeof(err));
	rc = config_set_pair(pair, err, sizeof(err));
	check_error(rc, err, sizeof(err), 0);
	check_ranges();
	config_reset();
	free(pair);
	return 0;
}
