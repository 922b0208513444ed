/*
 * test_config.c — settings: defaults, the file format, -o pairs, the environment, and reset.
 *
 * The settings live in one process-wide table, so every test starts and ends with
 * config_reset(). Errors must name the line and refuse the value, leaving the old one in place.
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

#include "config.h"

static int reset(void **state)
{
	(void)state;
	config_reset();
	unsetenv("EPHEMERAL_HUB_HEARTBEAT_MS");
	unsetenv("EPHEMERAL_GATEWAY_NAME");
	unsetenv("EPHEMERAL_GATEWAY_PORT");
	return 0;
}

static int load(const char *text, char *err, size_t errlen)
{
	return config_load_text(text, strlen(text), err, errlen);
}

static void test_defaults(void **state)
{
	(void)state;
	assert_string_equal(config_str("log.level"), "info");
	assert_string_equal(config_str("hub.endpoint"), "tcp://127.0.0.1:5556");
	assert_string_equal(config_str("hub.operator_endpoint"), "tcp://127.0.0.1:5557");
	assert_int_equal(config_int("hub.heartbeat_ms"), 500);
	assert_int_equal(config_int("hub.peer_expiry_ms"), 2000);
	assert_int_equal(config_int("hub.holder_timeout_ms"), 10000);
	assert_int_equal(config_int("gateway.port"), 8081);
	assert_string_equal(config_str("gateway.name"), "");
	assert_int_equal(config_int("gateway.max_blob"), 1048576);
	assert_int_equal(config_int("frontend.hub_timeout_ms"), 1000);
	assert_string_equal(config_str("frontend.web_dir"), "web");
}

static void test_file_text(void **state)
{
	(void)state;
	char err[256] = "";
	const char *text = "# Ephemeral settings\n"
			   "\n"
			   "   \t\n"
			   "hub.heartbeat_ms = 750   # faster than the default\n"
			   "log.level=debug\n"
			   "  gateway.name   =   my gateway  \r\n"
			   "\tgateway.port\t=\t9000\t\n"
			   "hub.endpoint = tcp://10.0.0.1:6000\n"
			   "# gateway.port = 1\n"
			   "frontend.web_dir = /srv/web"; /* no newline at the end */
	if (load(text, err, sizeof(err)) != 0)
		fail_msg("rejected: %s", err);
	assert_int_equal(config_int("hub.heartbeat_ms"), 750);
	assert_string_equal(config_str("log.level"), "debug");
	assert_string_equal(config_str("gateway.name"), "my gateway");
	assert_int_equal(config_int("gateway.port"), 9000);
	assert_string_equal(config_str("hub.endpoint"), "tcp://10.0.0.1:6000");
	assert_string_equal(config_str("frontend.web_dir"), "/srv/web");
	/* untouched keys keep their defaults */
	assert_int_equal(config_int("hub.peer_expiry_ms"), 2000);

	/* a later value wins; an empty string value is allowed for a string key */
	assert_int_equal(
	    load("gateway.port = 9001\ngateway.port = 9002\ngateway.name =\n", err, sizeof(err)),
	    0);
	assert_int_equal(config_int("gateway.port"), 9002);
	assert_string_equal(config_str("gateway.name"), "");

	/* '#' starts a comment anywhere on the line, also inside a value */
	assert_int_equal(load("gateway.name = a#b\n", err, sizeof(err)), 0);
	assert_string_equal(config_str("gateway.name"), "a");

	/* an empty text and a text of comments only change nothing */
	assert_int_equal(load("", err, sizeof(err)), 0);
	assert_int_equal(load("#\n#\n\n", err, sizeof(err)), 0);
	assert_int_equal(config_int("gateway.port"), 9002);

	/* the length bounds the text: what follows is not read */
	const char *cut = "gateway.port = 9100\ngateway.port = 1\n";
	assert_int_equal(config_load_text(cut, 20, err, sizeof(err)), 0);
	assert_int_equal(config_int("gateway.port"), 9100);
}

struct bad_case {
	const char *text;
	const char *needles[3]; /* all must appear in the error */
};

static const struct bad_case bad_cases[] = {
    {"log.level = info\n\nbogus.key = 1\n", {"line 3", "unknown setting", "bogus.key"}},
    {"hub.heartbeat_ms = 49\n", {"line 1", "hub.heartbeat_ms", "50 to 60000"}},
    {"# ok\nhub.heartbeat_ms = 60001\n", {"line 2", "hub.heartbeat_ms", NULL}},
    {"gateway.port = 0\n", {"line 1", "gateway.port", "1 to 65535"}},
    {"gateway.port = 65536\n", {"line 1", "gateway.port", NULL}},
    {"gateway.port = -1\n", {"line 1", "gateway.port", NULL}},
    {"gateway.port = 80 80\n", {"line 1", "gateway.port", NULL}},
    {"gateway.port = 12abc\n", {"line 1", "not a whole number", NULL}},
    {"gateway.port = 0x50\n", {"line 1", "gateway.port", NULL}},
    {"gateway.port =\n", {"line 1", "gateway.port", NULL}},
    {"gateway.port = 99999999999999999999999\n", {"line 1", "gateway.port", NULL}},
    {"\n\n\n\ngateway.port\n", {"line 5", "expected key = value", NULL}},
    {"= 5\n", {"line 1", "unknown setting", NULL}},
    {"Gateway.Port = 80\n", {"line 1", "unknown setting", "Gateway.Port"}},
    {"gateway.port.x = 80\n", {"line 1", "unknown setting", NULL}},
};

static void test_file_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char err[256] = "";
		config_reset();
		if (load(bad_cases[i].text, err, sizeof(err)) != -1)
			fail_msg("case %zu accepted: %s", i, bad_cases[i].text);
		for (int k = 0; k < 3 && bad_cases[i].needles[k]; k++)
			if (strstr(err, bad_cases[i].needles[k]) == NULL)
				fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err,
					 bad_cases[i].needles[k]);
		/* a refused value leaves the old one */
		assert_int_equal(config_int("gateway.port"), 8081);
		assert_int_equal(config_int("hub.heartbeat_ms"), 500);
	}

	/* an error message never overruns the caller's buffer */
	char small[16];
	memset(small, 'z', sizeof(small));
	assert_int_equal(load("a.very.long.unknown.key.name = 1\n", small, 12), -1);
	assert_int_equal(strlen(small), 11);
	assert_int_equal(small[12], 'z');

	/* a long unknown key is quoted shortened, not whole */
	char longkey[600], err[512];
	memset(longkey, 'k', 500);
	strcpy(longkey + 500, " = 1\n");
	assert_int_equal(load(longkey, err, sizeof(err)), -1);
	assert_true(strlen(err) < 120);
}

static void test_set_pair(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(config_set_pair("gateway.port=9000", err, sizeof(err)), 0);
	assert_int_equal(config_int("gateway.port"), 9000);
	assert_int_equal(config_set_pair("gateway.name=a=b c", err, sizeof(err)), 0);
	assert_string_equal(config_str("gateway.name"), "a=b c");
	assert_int_equal(config_set_pair("gateway.name=", err, sizeof(err)), 0);
	assert_string_equal(config_str("gateway.name"), "");

	assert_int_equal(config_set_pair("gateway.port", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "key=value"));
	assert_int_equal(config_set_pair("nope=1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown setting \"nope\""));
	assert_int_equal(config_set_pair("=1", err, sizeof(err)), -1);
	assert_int_equal(config_set_pair("gateway.port=abc", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "gateway.port"));
	assert_int_equal(config_set_pair("gateway.port=70000", err, sizeof(err)), -1);
	assert_int_equal(config_int("gateway.port"), 9000);

	assert_int_equal(config_set("hub.heartbeat_ms", "60000", err, sizeof(err)), 0);
	assert_int_equal(config_int("hub.heartbeat_ms"), 60000);
	assert_int_equal(config_set("hub.heartbeats", "1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "hub.heartbeats"));
}

static void test_environment(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(setenv("EPHEMERAL_HUB_HEARTBEAT_MS", "1234", 1), 0);
	assert_int_equal(setenv("EPHEMERAL_GATEWAY_NAME", "from env", 1), 0);
	assert_int_equal(config_int("hub.heartbeat_ms"), 500); /* not read until asked */
	assert_int_equal(config_load_env(err, sizeof(err)), 0);
	assert_int_equal(config_int("hub.heartbeat_ms"), 1234);
	assert_string_equal(config_str("gateway.name"), "from env");

	/* the order every program uses: file, then environment, then -o */
	config_reset();
	assert_int_equal(load("hub.heartbeat_ms = 800\ngateway.port = 9000\n", err, sizeof(err)),
			 0);
	assert_int_equal(config_load_env(err, sizeof(err)), 0);
	assert_int_equal(config_int("hub.heartbeat_ms"), 1234);
	assert_int_equal(config_int("gateway.port"), 9000);
	assert_int_equal(config_set_pair("hub.heartbeat_ms=999", err, sizeof(err)), 0);
	assert_int_equal(config_int("hub.heartbeat_ms"), 999);

	/* a bad value in the environment is an error naming the key */
	assert_int_equal(setenv("EPHEMERAL_GATEWAY_PORT", "http", 1), 0);
	assert_int_equal(config_load_env(err, sizeof(err)), -1);
	assert_non_null(strstr(err, "gateway.port"));
	assert_int_equal(config_int("gateway.port"), 9000);
}

static void test_file(void **state)
{
	(void)state;
	char path[] = "/tmp/test_config.XXXXXX", err[512];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	/* bigger than the reader's 4 KiB chunks */
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	for (int i = 0; i < 500; i++)
		fprintf(f, "# comment line %d\n", i);
	fprintf(f, "gateway.max_blob = 2097152\nbad line\n");
	fclose(f);
	assert_int_equal(config_load_file(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "line 502"));
	assert_int_equal(config_int("gateway.max_blob"), 2097152);
	unlink(path);

	assert_int_equal(config_load_file(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
}

static void test_reset(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(
	    load("log.level = warn\ngateway.port = 1\ngateway.name = x\n", err, sizeof(err)), 0);
	assert_string_equal(config_str("log.level"), "warn");
	config_reset();
	assert_string_equal(config_str("log.level"), "info");
	assert_int_equal(config_int("gateway.port"), 8081);
	assert_string_equal(config_str("gateway.name"), "");
	config_reset(); /* twice is harmless */
	assert_int_equal(config_int("gateway.port"), 8081);
}

/* conf/ephemeral.conf is the table's defaults and descriptions, word for word, after its header. */
static void test_conf_file_mirrors_table(void **state)
{
	(void)state;
	char *dump = NULL, *file = NULL;
	size_t dump_len = 0, file_len = 0;
	FILE *out = open_memstream(&dump, &dump_len);
	assert_non_null(out);
	config_dump(out);
	fclose(out);
	FILE *in = fopen("conf/ephemeral.conf", "r"); /* scripts/test.sh runs from the top */
	assert_non_null(in);
	out = open_memstream(&file, &file_len);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
	assert_true(file_len > dump_len);
	if (strcmp(file + file_len - dump_len, dump) != 0)
		fail_msg("conf/ephemeral.conf does not end with `ephemeral-hub -d` (the table in "
			 "common/config.c): regenerate its body from it");
	free(dump);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_defaults, reset, reset),
	    cmocka_unit_test_setup_teardown(test_file_text, reset, reset),
	    cmocka_unit_test_setup_teardown(test_file_errors, reset, reset),
	    cmocka_unit_test_setup_teardown(test_set_pair, reset, reset),
	    cmocka_unit_test_setup_teardown(test_environment, reset, reset),
	    cmocka_unit_test_setup_teardown(test_file, reset, reset),
	    cmocka_unit_test_setup_teardown(test_reset, reset, reset),
	    cmocka_unit_test_setup_teardown(test_conf_file_mirrors_table, reset, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
