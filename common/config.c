/*
 * config.c — the settings table and its parsers (file, environment, command line).
 *
 * Values are kept as strings and converted on read; integer keys are validated when set, so a
 * program never starts with a setting it cannot use.
 */
#include "config.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum config_type { CONFIG_STR, CONFIG_INT };

struct config_key {
	const char *key;
	enum config_type type;
	const char *fallback;
	long long min, max;
	const char *help;
	char *value; /* owned; NULL means the default */
};

static struct config_key config_keys[] = {
    {"log.level", CONFIG_STR, "info", 0, 0, "error, warn, info or debug", NULL},
    {"hub.endpoint", CONFIG_STR, "tcp://127.0.0.1:5556", 0, 0,
     "ZeroMQ ROUTER endpoint of the hub: gateways and frontends connect here", NULL},
    {"hub.operator_endpoint", CONFIG_STR, "tcp://127.0.0.1:5557", 0, 0,
     "ZeroMQ REP endpoint where operators ask for stats, lookup, gateways", NULL},
    {"hub.heartbeat_ms", CONFIG_INT, "500", 50, 60000,
     "how often hub and gateways tell each other they are alive", NULL},
    {"hub.peer_expiry_ms", CONFIG_INT, "2000", 100, 600000,
     "silence after which the hub forgets a gateway, and a gateway re-joins the hub", NULL},
    {"hub.holder_timeout_ms", CONFIG_INT, "10000", 100, 600000,
     "how long a holder may take to answer a request before the next one is asked", NULL},
    {"hub.secret_key", CONFIG_STR, "", 0, 0,
     "the hub's CurveZMQ key pair file (ephemeral-ctl keygen); empty: no CurveZMQ, and the hub "
     "binds only to loopback",
     NULL},
    {"hub.allowed_keys", CONFIG_STR, "", 0, 0,
     "folder of the *.pub keys of the gateways, frontends and operators let in (with "
     "hub.secret_key)",
     NULL},
    {"hub.public_key", CONFIG_STR, "", 0, 0,
     "the hub's public key file: set, programs that connect to the hub use CurveZMQ with their "
     "own key pair",
     NULL},
    {"gateway.listen", CONFIG_STR, "127.0.0.1", 0, 0, "address the gateway listens on", NULL},
    {"gateway.port", CONFIG_INT, "8081", 1, 65535, "WebSocket port of the gateway", NULL},
    {"gateway.name", CONFIG_STR, "", 0, 0, "name shown to operators (default: gw-<port>)", NULL},
    {"gateway.peer_bind", CONFIG_STR, "tcp://127.0.0.1:*", 0, 0,
     "ZeroMQ endpoint the gateway binds for blobs from other gateways (port *: any free one); "
     "beyond loopback only with keys (gateway.secret_key), which make it CurveZMQ",
     NULL},
    {"gateway.peer_endpoint", CONFIG_STR, "", 0, 0,
     "the endpoint other gateways reach gateway.peer_bind at (empty: the one bound); set it "
     "when gateways run on several machines",
     NULL},
    {"gateway.max_blob", CONFIG_INT, "1048576", 1024, BLOB_MAX,
     "largest blob a client may send or receive, in bytes", NULL},
    {"gateway.want_timeout_ms", CONFIG_INT, "60000", 1000, 3600000,
     "a want still unanswered after this long gets not_found (a safety net)", NULL},
    {"gateway.max_lies", CONFIG_INT, "3", 1, 1000,
     "wrong blobs after which a connection is closed with 1008", NULL},
    {"gateway.max_holds", CONFIG_INT, "100000", 1, 100000000,
     "hashes one connection may hold at once (too_large past it)", NULL},
    {"gateway.max_wants", CONFIG_INT, "64", 1, 100000,
     "wants one connection may have open at once (rate_limited past it)", NULL},
    {"gateway.msg_rate", CONFIG_INT, "2000", 1, 10000000,
     "tokens a connection earns per second: a text message costs 1 + 1 per 8 hashes it lists",
     NULL},
    {"gateway.msg_burst", CONFIG_INT, "4000", 1, 10000000,
     "tokens a connection may spend at once, above the average", NULL},
    {"gateway.byte_rate", CONFIG_INT, "268435456", 1024, 1099511627776LL,
     "bytes per second read from one connection; faster senders are slowed, not cut", NULL},
    {"gateway.max_violations", CONFIG_INT, "100", 1, 1000000,
     "rate_limited and bad_request answers (one forgiven a second) before a close with 1008", NULL},
    {"gateway.hub_queue", CONFIG_INT, "100000", 10, 10000000,
     "messages queued for the hub at most (a re-announcement past it resumes as the hub reads)",
     NULL},
    {"gateway.max_conns_per_addr", CONFIG_INT, "256", 1, 1000000,
     "WebSocket connections at once from one client address", NULL},
    {"gateway.max_conns", CONFIG_INT, "9000", 1, 10000000,
     "WebSocket connections this gateway holds at most; past it a handshake gets HTTP 503", NULL},
    {"gateway.idle_ping_s", CONFIG_INT, "30", 1, 86400,
     "seconds without a frame from a connection before it gets a ping", NULL},
    {"gateway.idle_close_s", CONFIG_INT, "75", 2, 86400,
     "seconds without a frame from a connection (its pong included) before it is closed", NULL},
    {"gateway.trusted_proxies", CONFIG_STR, "127.0.0.1", 0, 0,
     "comma-separated peer addresses whose X-Forwarded-For names the client", NULL},
    {"gateway.allowed_origins", CONFIG_STR, "", 0, 0,
     "comma-separated Origins allowed to open WebSockets besides the site's own "
     "(clients sending no Origin are always allowed)",
     NULL},
    {"gateway.direct_port", CONFIG_INT, "0", 0, 65535,
     "public port every gateway also accepts WebSockets on (shared, SO_REUSEPORT); 0: none", NULL},
    {"gateway.direct_listen", CONFIG_STR, "127.0.0.1", 0, 0,
     "address of gateway.direct_port (0.0.0.0 to publish it)", NULL},
    {"gateway.tls_cert", CONFIG_STR, "", 0, 0,
     "PEM certificate (chain) for wss:// on gateway.direct_port; empty: plain ws://", NULL},
    {"gateway.tls_key", CONFIG_STR, "", 0, 0, "PEM private key of gateway.tls_cert", NULL},
    {"frontend.ws_url", CONFIG_STR, "", 0, 0,
     "WebSocket URL GET /api/v1/ws gives the pages (wss://host:port/ws); empty: the web server's "
     "/ws",
     NULL},
    {"gateway.secret_key", CONFIG_STR, "", 0, 0,
     "the gateway's CurveZMQ key pair file, used with hub.public_key", NULL},
    {"frontend.hub_timeout_ms", CONFIG_INT, "1000", 10, 60000,
     "how long the frontend waits for the hub before answering 503", NULL},
    {"frontend.lookup_cache_ms", CONFIG_INT, "250", 0, 10000,
     "how long a frontend reuses the hub's answer about a hash (the hub tells it at once when "
     "the hash comes or goes meanwhile); 0: ask the hub on every request",
     NULL},
    {"frontend.web_dir", CONFIG_STR, "web", 0, 0,
     "folder holding templates/ (the pages) and static/", NULL},
    {"frontend.secret_key", CONFIG_STR, "", 0, 0,
     "the frontend's CurveZMQ key pair file, used with hub.public_key", NULL},
    {"ctl.secret_key", CONFIG_STR, "", 0, 0,
     "the operator's CurveZMQ key pair file for ephemeral-ctl, used with hub.public_key", NULL},
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static struct config_key *config_find(const char *key, size_t len)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strlen(config_keys[i].key) == len && memcmp(config_keys[i].key, key, len) == 0)
			return &config_keys[i];
	return NULL;
}

void config_reset(void)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		free(config_keys[i].value);
		config_keys[i].value = NULL;
	}
}

static int config_assign(struct config_key *k, const char *value, size_t len, char *err,
			 size_t errlen)
{
	char *copy = strndup(value, len);
	if (copy == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (k->type == CONFIG_INT) {
		char *end;
		errno = 0;
		long long v = strtoll(copy, &end, 10);
		if (errno != 0 || end == copy || *end != '\0' || v < k->min || v > k->max) {
			snprintf(err, errlen, "%s: \"%s\" is not a whole number from %lld to %lld",
				 k->key, copy, k->min, k->max);
			free(copy);
			return -1;
		}
	}
	free(k->value);
	k->value = copy;
	return 0;
}

int config_set(const char *key, const char *value, char *err, size_t errlen)
{
	struct config_key *k = config_find(key, strlen(key));
	if (k == NULL) {
		snprintf(err, errlen, "unknown setting \"%s\"", key);
		return -1;
	}
	return config_assign(k, value, strlen(value), err, errlen);
}

int config_set_pair(const char *pair, char *err, size_t errlen)
{
	const char *eq = strchr(pair, '=');
	if (eq == NULL) {
		snprintf(err, errlen, "\"%s\" is not key=value", pair);
		return -1;
	}
	struct config_key *k = config_find(pair, (size_t)(eq - pair));
	if (k == NULL) {
		snprintf(err, errlen, "unknown setting \"%.*s\"", (int)(eq - pair), pair);
		return -1;
	}
	return config_assign(k, eq + 1, strlen(eq + 1), err, errlen);
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

int config_load_text(const char *text, size_t len, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	int lineno = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *s = p, *e = le;
		lineno++;
		p = nl ? nl + 1 : end;
		const char *hash = memchr(s, '#', (size_t)(e - s));
		if (hash)
			e = hash;
		trim(&s, &e);
		if (s == e)
			continue;
		const char *eq = memchr(s, '=', (size_t)(e - s));
		if (eq == NULL) {
			snprintf(err, errlen, "line %d: expected key = value", lineno);
			return -1;
		}
		const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
		trim(&ks, &ke);
		trim(&vs, &ve);
		struct config_key *k = config_find(ks, (size_t)(ke - ks));
		if (k == NULL) {
			snprintf(err, errlen, "line %d: unknown setting \"%.*s\"", lineno,
				 (int)(ke - ks > 64 ? 64 : ke - ks), ks);
			return -1;
		}
		char sub[256];
		if (config_assign(k, vs, (size_t)(ve - vs), sub, sizeof(sub)) < 0) {
			snprintf(err, errlen, "line %d: %s", lineno, sub);
			return -1;
		}
	}
	return 0;
}

int config_load_file(const char *path, char *err, size_t errlen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = fd < 0 ? -1 : read_all(fd, SIZE_MAX, &buf, &len);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		return -1;
	char sub[256];
	rc = config_load_text((const char *)buf, len, sub, sizeof(sub));
	free(buf);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, sub);
	return rc;
}

int config_load_env(char *err, size_t errlen)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		char name[96] = "EPHEMERAL_";
		size_t o = strlen(name);
		for (const char *c = config_keys[i].key; *c && o + 1 < sizeof(name); c++)
			name[o++] = *c == '.' ? '_' : (char)toupper((unsigned char)*c);
		name[o] = '\0';
		const char *v = getenv(name);
		if (v && config_assign(&config_keys[i], v, strlen(v), err, errlen) < 0)
			return -1;
	}
	return 0;
}

const char *config_str(const char *key)
{
	struct config_key *k = config_find(key, strlen(key));
	if (k == NULL)
		fatalx("%s: no such setting \"%s\"", __func__, key);
	return k->value ? k->value : k->fallback;
}

long long config_int(const char *key)
{
	return strtoll(config_str(key), NULL, 10);
}

void config_dump(void *stream)
{
	FILE *f = stream;
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const char *v = config_str(config_keys[i].key);
		fprintf(f, "# %s\n%s =%s%s\n\n", config_keys[i].help, config_keys[i].key,
			*v ? " " : "", v); /* no trailing blank after an empty value */
	}
}

int config_from_args(int argc, char **argv, const char *program, const char *summary)
{
	char err[512];
	int opt;
	/* The file comes first so that -o always wins, whatever the order on the line. */
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 &&
		    config_load_file(argv[i + 1], err, sizeof(err)) < 0)
			goto fail;
	}
	if (config_load_env(err, sizeof(err)) < 0)
		goto fail;
	while ((opt = getopt(argc, argv, "+c:o:hd")) != -1) {
		switch (opt) {
		case 'c':
			break;
		case 'o':
			if (config_set_pair(optarg, err, sizeof(err)) < 0)
				goto fail;
			break;
		case 'd':
			config_dump(stdout);
			exit(0);
		case 'h':
		default:
			fprintf(
			    opt == 'h' ? stdout : stderr,
			    "usage: %s [-c FILE] [-o KEY=VALUE]... [-d]\n%s\n\n"
			    "  -c FILE       read settings from FILE (see conf/ephemeral.conf)\n"
			    "  -o KEY=VALUE  set one setting (wins over the file and the "
			    "environment)\n"
			    "  -d            print every setting with its value, then exit\n",
			    program, summary);
			exit(opt == 'h' ? 0 : 2);
		}
	}
	enum log_level level;
	if (log_level_parse(config_str("log.level"), &level) < 0) {
		snprintf(err, sizeof(err), "log.level: \"%s\" is not error, warn, info or debug",
			 config_str("log.level"));
		goto fail;
	}
	log_init(program, level);
	return optind;
fail:
	fprintf(stderr, "%s: %s\n", program, err);
	exit(2);
}
