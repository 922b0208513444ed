/*
 * ephemeral-ctl — asks the hub's operator endpoint (ZeroMQ REP) one question and prints the answer.
 *
 *   ephemeral-ctl [OPTIONS] stats|lookup HASH|gateways|keygen NAME   (options anywhere)
 *
 * Sends one text frame and reads one JSON frame back (PROTOCOL.md, "Operators"), within the
 * timeout: a REQ socket with ZMQ_LINGER 0, so a hub that is down never makes it hang, on the way
 * in or out. Prints tables for a person, or the JSON as is with --json. With hub.public_key and
 * ctl.secret_key it speaks CurveZMQ (common/zsec.c); keygen makes such key pairs.
 * Exit status: 0 answered, 1 the hub answered with an error, 2 bad usage, 3 no answer in time.
 */
#include "config.h"
#include "log.h"
#include "util.h"
#include "zsec.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define CTL_EXIT_HUB_ERROR 1
#define CTL_EXIT_USAGE	   2
#define CTL_EXIT_TIMEOUT   3

struct ctl {
	const char *endpoint;
	int timeout_ms;
	int json;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ephemeral-ctl [OPTION]... COMMAND [ARG]   (options go anywhere)\n"
	    "Asks the Ephemeral hub's operator endpoint and prints the answer.\n"
	    "\n"
	    "commands:\n"
	    "  stats          the hub's figures, as a table\n"
	    "  lookup HASH    how many viewers hold HASH (64 hex digits)\n"
	    "  gateways       the gateways the hub knows, as a table\n"
	    "  keygen NAME    make a CurveZMQ key pair: NAME.pub (give it to the hub's\n"
	    "                 hub.allowed_keys folder) and NAME.secret (keep it here)\n"
	    "\n"
	    "options:\n"
	    "  -e, --endpoint EP   ZeroMQ endpoint of the hub's operator socket\n"
	    "                      (default: the setting hub.operator_endpoint, %s)\n"
	    "  -j, --json          print the hub's JSON answer as is\n"
	    "  -t, --timeout MS    how long to wait for the answer (default 2000)\n"
	    "  -k, --key FILE      this operator's key pair (the setting ctl.secret_key); with\n"
	    "                      hub.public_key, the hub is asked over CurveZMQ\n"
	    "  -c FILE             read settings from FILE (conf/ephemeral.conf)\n"
	    "  -o KEY=VALUE        set one setting (e.g. -o hub.public_key=hub.pub)\n"
	    "  -h, --help          this help\n"
	    "\n"
	    "exit status: 0 answered, 1 the hub answered with an error, 2 bad usage,\n"
	    "3 the hub did not answer in time\n",
	    config_str("hub.operator_endpoint"));
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "ephemeral-ctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: ephemeral-ctl [-c FILE] [-o KEY=VALUE] [--endpoint EP] [--json] "
			"[--timeout MS] [--key FILE]\n"
			"       stats|lookup HASH|gateways|keygen NAME\n"
			"(ephemeral-ctl --help says more)\n");
	exit(CTL_EXIT_USAGE);
}

/* Sends request, returns the reply (malloc'd, NUL-terminated) or exits with the right status. */
static char *ctl_ask(const struct ctl *ctl, const char *request)
{
	void *ctx = zmq_ctx_new();
	void *sock = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
	int zero = 0;
	if (sock == NULL) {
		fprintf(stderr, "ephemeral-ctl: cannot create a ZeroMQ socket: %s\n",
			zmq_strerror(zmq_errno()));
		exit(CTL_EXIT_HUB_ERROR);
	}
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	if (zsec_client_from_config(sock, "ctl.secret_key") < 0) {
		zmq_close(sock);
		zmq_ctx_term(ctx);
		exit(CTL_EXIT_USAGE);
	}
	if (zmq_connect(sock, ctl->endpoint) < 0) {
		fprintf(stderr, "ephemeral-ctl: cannot use endpoint \"%s\": %s\n", ctl->endpoint,
			zmq_strerror(zmq_errno()));
		zmq_close(sock);
		zmq_ctx_term(ctx);
		exit(CTL_EXIT_USAGE);
	}

	char *reply = NULL;
	int64_t deadline = now_ms() + ctl->timeout_ms;
	int sent = zmq_send(sock, request, strlen(request), ZMQ_DONTWAIT) >= 0;
	while (sent && reply == NULL) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			break;
		zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
		int rc = zmq_poll(&item, 1, (long)left);
		if (rc < 0 && zmq_errno() == EINTR)
			continue;
		if (rc <= 0)
			break;
		zmq_msg_t msg;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0)
			reply = strndup(zmq_msg_data(&msg), zmq_msg_size(&msg));
		zmq_msg_close(&msg);
	}
	zmq_close(sock);
	zmq_ctx_term(ctx);
	if (reply == NULL) {
		fprintf(stderr, "ephemeral-ctl: the hub at %s did not answer within %d ms\n",
			ctl->endpoint, ctl->timeout_ms);
		/* Without keys a CurveZMQ hub looks exactly like one that is down. */
		if (*config_str("hub.public_key") == '\0')
			fprintf(stderr, "ephemeral-ctl: (a hub with CurveZMQ needs --key FILE and "
					"-o hub.public_key=FILE)\n");
		exit(CTL_EXIT_TIMEOUT);
	}
	return reply;
}

/* A JSON value as one table cell: numbers and strings plain, anything else as compact JSON.
 * Returns a malloc'd string, or NULL if out of memory. */
static char *cell(const json_t *v)
{
	char *s = NULL;
	if (json_is_string(v)) {
		s = strdup(json_string_value(v));
	} else if (json_is_integer(v)) {
		if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
			s = NULL;
	} else if (json_is_real(v)) {
		if (asprintf(&s, "%g", json_real_value(v)) < 0)
			s = NULL;
	} else {
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	}
	return s;
}

/* Names left-aligned, values right-aligned: the figures line up by their last digit. */
static int print_stats(const json_t *o)
{
	if (!json_is_object(o))
		return -1;
	size_t n = json_object_size(o), i = 0;
	char **values = calloc(n ? n : 1, sizeof(*values));
	int kwidth = 0, vwidth = 0;
	const char *key;
	json_t *value;
	if (values == NULL)
		return -1;
	json_object_foreach((json_t *)o, key, value)
	{
		values[i] = cell(value);
		int kn = (int)strlen(key), vn = values[i] ? (int)strlen(values[i]) : 1;
		kwidth = kn > kwidth ? kn : kwidth;
		vwidth = vn > vwidth ? vn : vwidth;
		i++;
	}
	i = 0;
	json_object_foreach((json_t *)o, key, value)
	{
		printf("%-*s  %*s\n", kwidth, key, vwidth, values[i] ? values[i] : "?");
		free(values[i]);
		i++;
	}
	free(values);
	return 0;
}

static int print_gateways(const json_t *a)
{
	static const char *const cols[] = {"id", "connections", "holdings", "last_seen_ms"};
	enum { NCOLS = sizeof(cols) / sizeof(cols[0]) };
	if (!json_is_array(a))
		return -1;
	size_t rows = json_array_size(a);
	if (rows == 0) {
		printf("no gateways\n");
		return 0;
	}
	char **cells = calloc(rows * NCOLS, sizeof(*cells));
	int width[NCOLS];
	if (cells == NULL)
		return -1;
	for (int c = 0; c < NCOLS; c++)
		width[c] = (int)strlen(cols[c]);
	for (size_t r = 0; r < rows; r++) {
		const json_t *gw = json_array_get(a, r);
		for (int c = 0; c < NCOLS; c++) {
			const json_t *v = json_is_object(gw) ? json_object_get(gw, cols[c]) : NULL;
			cells[r * NCOLS + (size_t)c] = v ? cell(v) : strdup("-");
			const char *s = cells[r * NCOLS + (size_t)c];
			int n = s ? (int)strlen(s) : 1;
			width[c] = n > width[c] ? n : width[c];
		}
	}
	/* The id is text (left-aligned); the figures are numbers (right-aligned). */
	printf("%-*s", width[0], cols[0]);
	for (int c = 1; c < NCOLS; c++)
		printf("  %*s", width[c], cols[c]);
	printf("\n");
	for (size_t r = 0; r < rows; r++) {
		for (int c = 0; c < NCOLS; c++) {
			const char *s = cells[r * NCOLS + (size_t)c];
			printf(c == 0 ? "%-*s" : "  %*s", width[c], s ? s : "?");
			free(cells[r * NCOLS + (size_t)c]);
		}
		printf("\n");
	}
	free(cells);
	return 0;
}

static int print_lookup(const json_t *o)
{
	const json_t *hash = json_object_get(o, "hash"), *viewers = json_object_get(o, "viewers");
	if (!json_is_string(hash) || !json_is_integer(viewers))
		return -1;
	json_int_t n = json_integer_value(viewers);
	printf("%s %" JSON_INTEGER_FORMAT " viewer%s\n", json_string_value(hash), n,
	       n == 1 ? "" : "s");
	/* The confirmed manifests of a file with this plain SHA-256, most viewers first. */
	const json_t *manifests = json_object_get(o, "manifests");
	size_t i;
	const json_t *m;
	json_array_foreach(manifests, i, m)
	{
		const json_t *mh = json_object_get(m, "hash"), *mv = json_object_get(m, "viewers");
		if (!json_is_string(mh) || !json_is_integer(mv))
			continue;
		json_int_t v = json_integer_value(mv);
		printf("  file of manifest %s %" JSON_INTEGER_FORMAT " viewer%s\n",
		       json_string_value(mh), v, v == 1 ? "" : "s");
	}
	return 0;
}

/* keygen NAME: writes NAME.pub and NAME.secret, says what each is for. */
static int ctl_keygen(const struct ctl *ctl, const char *base)
{
	struct zsec_keys k;
	char err[512];
	if (!zsec_available()) {
		fprintf(stderr, "ephemeral-ctl: this libzmq has no CURVE support\n");
		return CTL_EXIT_HUB_ERROR;
	}
	if (zsec_keygen(base, &k, err, sizeof(err)) < 0) {
		fprintf(stderr, "ephemeral-ctl: keygen: %s\n", err);
		return CTL_EXIT_HUB_ERROR;
	}
	if (ctl->json) {
		json_t *o =
		    json_pack("{s:s+, s:s+, s:s}", "public", base, ZSEC_PUBLIC_SUFFIX, "secret",
			      base, ZSEC_SECRET_SUFFIX, "public_key", k.public_z85);
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		printf("%s\n", text ? text : "{}");
		free(text);
		json_decref(o);
		return 0;
	}
	printf("%s" ZSEC_PUBLIC_SUFFIX
	       "     public key %s: copy it into the hub's hub.allowed_keys "
	       "folder\n"
	       "%s" ZSEC_SECRET_SUFFIX "  key pair, mode 0600: keep it on this machine and name it "
	       "in\n"
	       "%*s  gateway.secret_key, frontend.secret_key, ctl.secret_key or hub.secret_key\n",
	       base, k.public_z85, base, (int)(strlen(base) + strlen(ZSEC_SECRET_SUFFIX)), "");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"endpoint", required_argument, NULL, 'e'}, {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},	{"key", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},		{NULL, 0, NULL, 0},
	};
	struct ctl ctl = {NULL, 2000, 0};
	char err[512];
	int opt;

	log_init("ephemeral-ctl", LOG_LEVEL_WARN);
	/* The file first, then the environment, then -o and --key, whatever their order on the
	 * line, as in every program. */
	for (int i = 1; i + 1 < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-c") == 0 &&
		    config_load_file(argv[i + 1], err, sizeof(err)) < 0)
			usage_error("%s", err);
	}
	if (config_load_env(err, sizeof(err)) < 0)
		usage_error("%s", err);
	/* No '+': options are taken anywhere on the line (`stats --json`), as git and kubectl
	 * do; `--` ends them. */
	while ((opt = getopt_long(argc, argv, "c:e:jt:k:o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			break;
		case 'o':
			if (config_set_pair(optarg, err, sizeof(err)) < 0)
				usage_error("%s", err);
			break;
		case 'k':
			if (config_set("ctl.secret_key", optarg, err, sizeof(err)) < 0)
				usage_error("%s", err);
			break;
		case 'e':
			ctl.endpoint = optarg;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 't': {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || v < 1 || v > 3600000)
				usage_error(
				    "--timeout takes milliseconds from 1 to 3600000, not \"%s\"",
				    optarg);
			ctl.timeout_ms = (int)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage_error("unknown option");
		}
	}
	if (ctl.endpoint == NULL)
		ctl.endpoint = config_str("hub.operator_endpoint");

	char request[8 + HASH_HEX_LEN];
	const char *command = optind < argc ? argv[optind] : NULL;
	int nargs = argc - optind - 1;
	if (command == NULL)
		usage_error("a command is needed: stats, lookup HASH, gateways or keygen NAME");
	if (strcmp(command, "keygen") == 0) {
		if (nargs != 1)
			usage_error("keygen takes one NAME (it writes NAME" ZSEC_PUBLIC_SUFFIX
				    " and NAME" ZSEC_SECRET_SUFFIX ")");
		return ctl_keygen(&ctl, argv[optind + 1]);
	}
	if (strcmp(command, "stats") == 0 || strcmp(command, "gateways") == 0) {
		if (nargs != 0)
			usage_error("%s takes no argument", command);
		snprintf(request, sizeof(request), "%s", command);
	} else if (strcmp(command, "lookup") == 0) {
		if (nargs != 1)
			usage_error("lookup takes one HASH");
		const char *hex = argv[optind + 1];
		if (!hash_hex_valid_anycase(hex, strlen(hex)))
			usage_error("\"%s\" is not a hash (64 hex digits)", hex);
		snprintf(request, sizeof(request), "lookup ");
		hash_hex_lower(hex, request + 7);
	} else {
		usage_error("unknown command \"%s\"", command);
	}

	char *reply = ctl_ask(&ctl, request);
	json_error_t jerr;
	json_t *doc = json_loads(reply, JSON_DECODE_ANY, &jerr);
	int status = 0;
	if (doc == NULL) {
		fprintf(stderr, "ephemeral-ctl: the hub's answer is not JSON (%s): %s\n", jerr.text,
			reply);
		status = CTL_EXIT_HUB_ERROR;
	} else if (json_is_object(doc) && json_object_get(doc, "error") != NULL) {
		const json_t *e = json_object_get(doc, "error");
		if (ctl.json)
			printf("%s\n", reply);
		else
			fprintf(stderr, "ephemeral-ctl: the hub says: %s\n",
				json_is_string(e) ? json_string_value(e) : reply);
		status = CTL_EXIT_HUB_ERROR;
	} else if (ctl.json) {
		printf("%s\n", reply);
	} else {
		int rc = strcmp(command, "stats") == 0	    ? print_stats(doc)
			 : strcmp(command, "gateways") == 0 ? print_gateways(doc)
							    : print_lookup(doc);
		if (rc < 0) {
			fprintf(stderr, "ephemeral-ctl: unexpected answer from the hub: %s\n",
				reply);
			status = CTL_EXIT_HUB_ERROR;
		}
	}
	json_decref(doc);
	free(reply);
	return status;
}
