/*
 * config.h — the settings of every Ephemeral program, in one table.
 *
 * Owns the list of known keys, their defaults and their documentation (conf/ephemeral.conf mirrors
 * it). A value comes from, lowest first: the built-in default, the file given with -c, the
 * environment (EPHEMERAL_ + the key upper-cased with dots as underscores, e.g.
 * EPHEMERAL_HUB_ENDPOINT), then -o key=value on the command line. Unknown keys are errors, so a
 * typo in a config file is reported instead of silently ignored.
 */
#ifndef EPH_CONFIG_H
#define EPH_CONFIG_H

#include <stddef.h>

/* Resets every key to its default. */
void config_reset(void);
/* Parses "key = value" lines ('#' comments, blank lines). On error returns -1 and writes a
 * message naming the line into err. */
int config_load_text(const char *text, size_t len, char *err, size_t errlen);
int config_load_file(const char *path, char *err, size_t errlen);
/* Applies EPHEMERAL_* environment variables. */
int config_load_env(char *err, size_t errlen);
/* Sets one key from "key=value". */
int config_set_pair(const char *pair, char *err, size_t errlen);
int config_set(const char *key, const char *value, char *err, size_t errlen);

const char *config_str(const char *key);
long long config_int(const char *key);

/*
 * Parses the options every program takes: -c FILE, -o KEY=VALUE (repeatable), -h. Prints usage
 * (with the program's own summary line) and exits on -h or on an error. Returns the index of the
 * first argument that is not an option. Sets the log level from log.level.
 */
int config_from_args(int argc, char **argv, const char *program, const char *summary);

/* Writes every key with its current value and description, as a config file would hold it. */
void config_dump(void *stream);

#endif
