/*
 * main.c — `ephemeral`: the command line, and nothing else.
 *
 * Owns argv: the command (share, get, help), each command's options and --help, the choice of
 * server (--url, else the link's own server, else $EPHEMERAL_URL, else http://127.0.0.1:8080)
 * and the usage errors (exit 64). The work is done by share_run() and get_run(), which never
 * call back into this file (they are linked into unit tests without it).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAIN_VERSION "1.0"

static const char main_usage[] =
    "usage: ephemeral share [options] FILE...   share a file (\"-\" is standard input)\n"
    "       ephemeral share [options] DIR | FILE FILE...   share a collection\n"
    "       ephemeral get [options] LINK|HASH   fetch a page or a file\n"
    "       ephemeral get [options] -o DIR LINK   fetch a collection into DIR\n"
    "       ephemeral get [options] URL/sha256/HASH | sha256:HASH   a file by its sha256sum\n"
    "       ephemeral help [share|get]          more about a command\n"
    "       ephemeral --version\n"
    "\n"
    "Content lives only as long as someone holds it: a sharer keeps running until Ctrl-C.\n"
    "The server is --url, else the link's own, else $EPHEMERAL_URL, else " CLI_DEFAULT_URL ".\n"
    "Exit status: 0 done, 1 error, 2 the content is gone, 3 the server cannot be reached,\n"
    "4 the file does not match its SHA-256, 64 bad usage, 130 interrupted.\n"
    "See ephemeral(1) and docs/CLI.md.\n";

static const char main_common_help[] =
    "  -u, --url URL          the server (http:// or https://); default $EPHEMERAL_URL or\n"
    "                         " CLI_DEFAULT_URL "; the WebSocket is URL's path + \"ws\"\n"
    "  -k, --insecure         accept any TLS certificate (self-signed test servers)\n"
    "      --cacert FILE      also trust the certificate authorities in FILE\n"
    "  -r, --limit-rate RATE  send others at most RATE bytes a second (suffixes K, M, G)\n"
    "  -q, --quiet            print errors only\n"
    "  -v, --verbose          print notes even when standard error is not a terminal\n"
    "                         (twice: libwebsockets' own warnings too)\n"
    "  -h, --help             this help\n";

static const char main_share_help[] =
    "usage: ephemeral share [options] FILE...\n"
    "\n"
    "       ephemeral share [options] DIR | FILE FILE...\n"
    "\n"
    "Shares FILE (\"-\" for standard input) as a file: SHA-256 pieces listed in a manifest,\n"
    "read from disk only when someone asks for them. Several FILEs, or a folder, are one\n"
    "collection: each file its own manifest, listed under one link (symbolic links inside a\n"
    "folder are skipped, never followed). Prints the link on standard output, then keeps\n"
    "serving, with a live viewer count on a terminal, until Ctrl-C (exit status 0). The\n"
    "content is gone when the last holder stops.\n"
    "\n"
    "  -p, --page             share the single FILE's bytes as a page (one blob: HTML that\n"
    "                         viewers see in their browser), the same address the home page\n"
    "                         gives for the same text\n"
    "  -n, --name NAME        the name in the manifest (default: the file's name; \"stdin\");\n"
    "                         of a collection: its name (default: the folder's, or \"N files\")\n"
    "  -t, --type TYPE        the MIME type in the manifest (default: from the name)\n";

static const char main_get_help[] =
    "usage: ephemeral get [options] LINK|HASH\n"
    "       ephemeral get [options] URL/sha256/HASH | sha256:HASH\n"
    "       ephemeral get [options] -o DIR [--only PATH] LINK   a collection\n"
    "\n"
    "Fetches a page (its bytes go to standard output, or to -o FILE) or a file (saved under\n"
    "its name in the current directory, or -o FILE). A file's pieces come from every holder\n"
    "at once, each checked against its SHA-256; they are written to FILE.part, which is\n"
    "renamed when complete. Run the same command again after an interruption: the pieces in\n"
    "FILE.part are checked and kept, only the missing ones are fetched. While it runs, it\n"
    "serves the pieces it has to others. Progress is shown on a terminal only.\n"
    "A file whose manifest names its SHA-256 is checked whole before it is saved: on a\n"
    "mismatch nothing is saved and the exit status is 4. With URL/sha256/HASH (sha256:HASH:\n"
    "the default server) the file whose plain SHA-256 (what sha256sum prints) is HASH is\n"
    "fetched from whichever manifest declares it, most viewed first, trying the next on a\n"
    "mismatch.\n"
    "A collection (several files or a folder under one link) needs -o DIR: the whole list is\n"
    "checked first (no path may leave DIR, nor follow a symbolic link inside it), then each\n"
    "file's manifest against it, before anything is written; each file is saved verified.\n"
    "\n"
    "  -o, --output FILE      where to save: a file, a directory, or \"-\" for standard output;\n"
    "                         for a collection, the folder to recreate it in\n"
    "      --only PATH        of a collection, fetch only the file at PATH\n"
    "  -f, --force            overwrite a file of the same name (only needed without -o;\n"
    "                         for a collection, files in DIR that differ from its own)\n"
    "  -s, --seed             keep serving after the download, until Ctrl-C\n";

enum main_opt { OPT_CACERT = 256, OPT_ONLY };

struct main_common {
	const char *url;
	int insecure;
	const char *cacert;
	const char *rate;
	int quiet, verbose;
};

/* "512K", "4M", "1000000": bytes a second (K, M and G are powers of 1024); 0 if malformed. */
static uint64_t main_parse_rate(const char *text)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(text, &end, 10);
	if (end == text || errno || *text == '-')
		return 0;
	uint64_t scale = 1;
	switch (*end) {
	case 'k':
	case 'K':
		scale = 1024;
		end++;
		break;
	case 'm':
	case 'M':
		scale = 1024 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		scale = 1024 * 1024 * 1024;
		end++;
		break;
	default:
		break;
	}
	if (*end != '\0' || n > UINT64_MAX / scale)
		return 0;
	return (uint64_t)n * scale;
}

static int main_usage_error(const char *command, const char *fmt, const char *arg)
{
	fprintf(stderr, "ephemeral%s%s: ", command ? " " : "", command ? command : "");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'ephemeral %s--help'.\n",
		command ? (strcmp(command, "get") == 0 ? "get " : "share ") : "");
	return CLI_EXIT_USAGE;
}

static int main_help(const char *command)
{
	if (command && strcmp(command, "share") == 0)
		printf("%s\n%s", main_share_help, main_common_help);
	else if (command && strcmp(command, "get") == 0)
		printf("%s\n%s", main_get_help, main_common_help);
	else if (command)
		return main_usage_error(NULL, "no command named \"%s\"", command);
	else
		printf("ephemeral — share and fetch with Ephemeral from a terminal\n\n%s",
		       main_usage);
	return CLI_EXIT_OK;
}

/* Handles an option every command takes; 1 if it was one, 0 if not. */
static int main_common_opt(int ch, struct main_common *mc)
{
	switch (ch) {
	case 'u':
		mc->url = optarg;
		return 1;
	case 'k':
		mc->insecure = 1;
		return 1;
	case OPT_CACERT:
		mc->cacert = optarg;
		return 1;
	case 'r':
		mc->rate = optarg;
		return 1;
	case 'q':
		mc->quiet = 1;
		return 1;
	case 'v':
		mc->verbose++;
		return 1;
	default:
		return 0;
	}
}

#define MAIN_COMMON_LONG                                                                           \
	{"url", required_argument, NULL, 'u'}, {"insecure", no_argument, NULL, 'k'},               \
	    {"cacert", required_argument, NULL, OPT_CACERT}, {"quiet", no_argument, NULL, 'q'},    \
	    {"limit-rate", required_argument, NULL, 'r'}, {"verbose", no_argument, NULL, 'v'},     \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

/* Fills the client's settings; the link's server (if any) is used when --url is not given. */
static int main_client(const char *command, const struct main_common *mc,
		       const struct url_server *link_server, struct client_config *cfg)
{
	char err[512];
	memset(cfg, 0, sizeof(*cfg));
	cfg->insecure = mc->insecure;
	cfg->cacert = mc->cacert;
	cfg->lws_logs = mc->verbose > 1;
	if (mc->rate) {
		cfg->rate_limit = main_parse_rate(mc->rate);
		if (cfg->rate_limit == 0)
			return main_usage_error(command,
						"--limit-rate needs bytes a second, such as "
						"4M, not \"%s\"",
						mc->rate);
	}
	if (mc->url == NULL && link_server) {
		cfg->server = *link_server;
		return 0;
	}
	const char *url = mc->url;
	if (url == NULL)
		url = getenv("EPHEMERAL_URL");
	if (url == NULL || *url == '\0')
		url = CLI_DEFAULT_URL;
	if (url_parse_server(url, &cfg->server, err, sizeof(err)) < 0)
		return main_usage_error(command, "bad server address: %s", err);
	return 0;
}

static int main_share(int argc, char **argv)
{
	static const struct option longopts[] = {
	    MAIN_COMMON_LONG,
	    {"page", no_argument, NULL, 'p'},
	    {"name", required_argument, NULL, 'n'},
	    {"type", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	struct main_common mc = {0};
	struct share_options o;
	int ch;
	memset(&o, 0, sizeof(o));
	while ((ch = getopt_long(argc, argv, ":u:kr:qvhpn:t:", longopts, NULL)) != -1) {
		if (main_common_opt(ch, &mc))
			continue;
		switch (ch) {
		case 'h':
			return main_help("share");
		case 'p':
			o.page = 1;
			break;
		case 'n':
			o.name = optarg;
			break;
		case 't':
			o.type = optarg;
			break;
		case ':':
			return main_usage_error("share", "%s needs a value", argv[optind - 1]);
		default:
			return main_usage_error("share", "unknown option %s", argv[optind - 1]);
		}
	}
	o.files = argv + optind;
	o.nfiles = (size_t)(argc - optind);
	if (o.nfiles == 0)
		return main_usage_error("share", "%s",
					"name at least one FILE (\"-\" for standard "
					"input)");
	if (o.page && o.nfiles > 1)
		return main_usage_error("share", "%s", "--page shares exactly one FILE");
	size_t stdin_uses = 0;
	for (size_t i = 0; i < o.nfiles; i++)
		stdin_uses += strcmp(o.files[i], "-") == 0;
	if (stdin_uses > 1)
		return main_usage_error("share", "%s", "standard input (\"-\") can be shared once");
	if (o.type && (*o.type == '\0' || strlen(o.type) > 255))
		return main_usage_error("share", "%s",
					"--type needs a MIME type such as text/plain");
	int rc = main_client("share", &mc, NULL, &o.client);
	if (rc)
		return rc;
	o.quiet = mc.quiet;
	o.verbose = mc.verbose;
	return share_run(&o);
}

static int main_get(int argc, char **argv)
{
	static const struct option longopts[] = {
	    MAIN_COMMON_LONG,
	    {"output", required_argument, NULL, 'o'},
	    {"force", no_argument, NULL, 'f'},
	    {"seed", no_argument, NULL, 's'},
	    {"only", required_argument, NULL, OPT_ONLY},
	    {NULL, 0, NULL, 0},
	};
	struct main_common mc = {0};
	struct get_options o;
	struct url_server link_server;
	char err[512];
	int ch, has_server;
	memset(&o, 0, sizeof(o));
	while ((ch = getopt_long(argc, argv, ":u:kr:qvho:fs", longopts, NULL)) != -1) {
		if (main_common_opt(ch, &mc))
			continue;
		switch (ch) {
		case 'h':
			return main_help("get");
		case 'o':
			o.output = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 's':
			o.seed = 1;
			break;
		case OPT_ONLY:
			o.only = optarg;
			break;
		case ':':
			return main_usage_error("get", "%s needs a value", argv[optind - 1]);
		default:
			return main_usage_error("get", "unknown option %s", argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return main_usage_error("get", "%s", "name exactly one LINK or HASH");
	if (o.output && *o.output == '\0')
		return main_usage_error("get", "%s", "-o needs a file name");
	if (o.only && (!o.output || strcmp(o.output, "-") == 0))
		return main_usage_error("get", "%s", "--only needs -o DIR, the folder to save in");
	int by_sha =
	    url_parse_sha256(argv[optind], o.hash, &link_server, &has_server, err, sizeof(err));
	if (by_sha < 0 || (by_sha == 0 && url_parse_link(argv[optind], o.hash, &link_server,
							 &has_server, err, sizeof(err)) < 0))
		return main_usage_error("get", "%s", err);
	o.by_sha256 = by_sha;
	int rc = main_client("get", &mc, has_server ? &link_server : NULL, &o.client);
	if (rc)
		return rc;
	o.quiet = mc.quiet;
	o.verbose = mc.verbose;
	return get_run(&o);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	opterr = 0; /* our own messages, naming the command */
	if (argc < 2)
		return main_usage_error(NULL, "%s", "name a command: share, get or help");
	const char *command = argv[1];
	if (strcmp(command, "share") == 0)
		return main_share(argc - 1, argv + 1);
	if (strcmp(command, "get") == 0)
		return main_get(argc - 1, argv + 1);
	if (strcmp(command, "help") == 0 || strcmp(command, "--help") == 0 ||
	    strcmp(command, "-h") == 0)
		return main_help(argc > 2 ? argv[2] : NULL);
	if (strcmp(command, "--version") == 0 || strcmp(command, "version") == 0) {
		printf("ephemeral %s (libwebsockets %s)\n", MAIN_VERSION,
		       lws_get_library_version());
		return CLI_EXIT_OK;
	}
	return main_usage_error(NULL, "no command named \"%s\" (share, get or help)", command);
}
