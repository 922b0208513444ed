/*
 * cli.h — the map of `ephemeral`, the terminal client: a WebSocket client of ephemeral.v1
 * (PROTOCOL.md "WebSocket"), exactly like the browser pages.
 *
 * One heading per module, in the order a reader meets them: url.c (addresses), progress.c (what
 * a person sees), manifest.c (the file format), store.c (the blobs we hold and serve),
 * worker.c (slow work on a thread), client.c (the lws client loop), then the two commands,
 * share.c and get.c. main.c parses the command line and is the only module that knows about
 * argv; nothing here calls into it, so the other modules link into unit tests on their own.
 */
#ifndef EPH_CLI_H
#define EPH_CLI_H

#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "map.h"
#include "util.h"
#include "wsmsg.h"

/* Exit statuses, the same for every command (docs/CLI.md, docs/ephemeral.1). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_ERROR = 1,	  /* I/O error, malformed manifest, the server misbehaved */
	CLI_EXIT_GONE = 2,	  /* nobody holds the content any more (not_found) */
	CLI_EXIT_UNREACHABLE = 3, /* the server cannot be reached, or was lost for good */
	CLI_EXIT_MISMATCH = 4,	  /* the file assembled does not have the SHA-256 it should */
	CLI_EXIT_USAGE = 64,	  /* bad command line, bad link (EX_USAGE) */
	CLI_EXIT_INTERRUPTED = 130,
};

#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

/* url.c — the server's address, links and the WebSocket endpoint derived from them */

struct url_server {
	int tls;	/* https:// (wss://) */
	char host[256]; /* name or address, IPv6 without brackets */
	int port;
	char authority[300]; /* host[:port] as the Host header carries it */
	char origin[320];    /* scheme://authority */
	char base[1024];     /* http(s)://authority/prefix/ — a link is base + hash */
	char ws_path[1024];  /* /prefix/ws */
};

/* Parses http(s)://host[:port][/prefix]. 0, or -1 with a reason in err. */
int url_parse_server(const char *url, struct url_server *out, char *err, size_t errlen);
/*
 * Parses a link (http://host/<hash>, any case) or a bare hash into the lowercase address. For a
 * link, *server is filled and *has_server set. 0, or -1 with a reason in err.
 */
int url_parse_link(const char *link, uint8_t hash[HASH_LEN], struct url_server *server,
		   int *has_server, char *err, size_t errlen);
/*
 * A file named by its plain SHA-256: sha256:<hash>, or a link http://host/sha256/<hash> (any
 * case; *server filled and *has_server set). 1 with hash set, 0 when arg is neither (a link or
 * an address, for url_parse_link), -1 with a reason in err.
 */
int url_parse_sha256(const char *arg, uint8_t hash[HASH_LEN], struct url_server *server,
		     int *has_server, char *err, size_t errlen);
/* Writes base + hex hash into out. */
void url_link(const struct url_server *s, const uint8_t hash[HASH_LEN], char *out, size_t len);
/* Writes ws(s)://authority/prefix/ws into out, for messages. */
void url_ws(const struct url_server *s, char *out, size_t len);

/* progress.c — messages and the live line on standard error */

#define PROGRESS_SAMPLES 64

struct progress {
	int tty;	/* standard error is a terminal: live lines and notes */
	int verbose;	/* notes even when not a terminal */
	int quiet;	/* errors only */
	int shown;	/* a live line is on screen */
	char last[512]; /* what it says, so an unchanged line is not drawn again */
	int64_t sample_ms[PROGRESS_SAMPLES];
	uint64_t sample_bytes[PROGRESS_SAMPLES];
	int nsamples;
};

void progress_init(struct progress *p, int quiet, int verbose);
/* "ephemeral: ..." on standard error, always. */
void progress_error(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A note for a person: on a terminal or with --verbose, never with --quiet. */
void progress_note(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Replaces the live line (terminal only, never with --quiet). */
void progress_live(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_clear(struct progress *p);
/* Records that `bytes` have arrived so far: the live line shows bytes/s over the last 5 s. */
void progress_sample(struct progress *p, uint64_t bytes);
/* "12.5 MiB", "3 min 4 s": the same wording as the pages (files.js). */
void progress_format_bytes(uint64_t n, char *out, size_t len);
void progress_format_duration(double seconds, char *out, size_t len);
/* The download line: name, percent, bar, bytes, speed, time left, viewers. */
void progress_transfer(struct progress *p, const char *name, uint64_t done, uint64_t total,
		       uint64_t viewers);
/* The seeding line: verb and name of what is shared, its viewers, the blobs and bytes sent, how
 * to stop. */
void progress_seeding(struct progress *p, const char *verb, const char *name, uint64_t viewers,
		      uint64_t blobs, uint64_t bytes);

/* manifest.c — the manifest format (PROTOCOL.md "Content model"), as files.js has it */

#define MANIFEST_MIN_PIECE     (16 * 1024)
#define MANIFEST_DEFAULT_PIECE (256 * 1024)
#define MANIFEST_MAX_PIECE     (1u << 30)
#define MANIFEST_MAX_PIECES    100000

struct manifest {
	char *name;
	char *type;
	uint64_t size;
	uint64_t piece_size;
	size_t npieces;
	uint8_t (*pieces)[HASH_LEN];
	uint8_t sha256[HASH_LEN]; /* the whole file's plain SHA-256 ("sha256"), if has_sha256 */
	int has_sha256;
};

/* Piece size for a file: 256 KiB, or the smallest larger power of two for which the manifest
 * fits in max_blob. 0, or -1 with a reason (the file is too large to share here). */
int manifest_piece_size(uint64_t size, const char *name, const char *type, uint64_t max_blob,
			uint64_t *out, char *err, size_t errlen);
/* Hashes fd's pieces into m (name, type, size and piece_size set by the caller), and the whole
 * file into m->sha256 in the same pass. on_piece is
 * called after each piece (may be NULL); returning non-zero stops. 0, or -1 with a reason. */
int manifest_hash_file(int fd, struct manifest *m, int (*on_piece)(void *arg, uint64_t done),
		       void *arg, char *err, size_t errlen);
/* The manifest's JSON text, malloc'd; *len its length. NULL on out of memory. */
char *manifest_build(const struct manifest *m, size_t *len);
/* 1: a valid manifest, m filled (manifest_free it); 0: not a manifest, so a page; -1: it says it
 * is a manifest but is malformed, with a reason in err. */
int manifest_parse(const uint8_t *data, size_t len, uint64_t max_blob, struct manifest *m,
		   char *err, size_t errlen);
void manifest_free(struct manifest *m);
/* Length of piece i (the last may be shorter). */
uint64_t manifest_piece_len(const struct manifest *m, size_t i);
/* A name that is safe to create in a directory: no separators, no control characters, not
 * hidden, never "." or "..", at most 255 bytes; "download" when nothing is left. */
void manifest_safe_name(const char *name, char *out, size_t len);
/* A MIME type from a file name's extension; application/octet-stream when unknown. */
const char *manifest_guess_type(const char *name);

/* store.c — the blobs this client holds and serves: pieces of files on disk, or bytes */

struct store_entry {
	uint8_t hash[HASH_LEN]; /* the map's key */
	int fd;			/* -1 for bytes in memory */
	uint64_t off;
	size_t len;
	uint8_t *mem; /* owned */
};

struct store {
	struct map map;
};

void store_init(struct store *s);
void store_free(struct store *s);
/* 1 added, 0 already held, -1 out of memory. The store never closes fd. */
int store_add_file(struct store *s, const uint8_t hash[HASH_LEN], int fd, uint64_t off, size_t len);
int store_add_mem(struct store *s, const uint8_t hash[HASH_LEN], const void *data, size_t len);
const struct store_entry *store_get(const struct store *s, const uint8_t hash[HASH_LEN]);
void store_remove(struct store *s, const uint8_t hash[HASH_LEN]);
/* Reads a held blob into buf (e->len bytes) and checks its hash. 0, or -1 with a reason. */
int store_read(const struct store_entry *e, uint8_t *buf, char *err, size_t errlen);
/* Writes all len bytes of buf to fd at offset off (pwrite), or where fd is when off < 0,
 * retrying on EINTR. 0, or -1 with errno set. */
int store_write_all(int fd, const void *buf, size_t len, int64_t off);

/* worker.c — a job on its own thread, so that hashing never stalls the event loop */

struct worker {
	pthread_t thread;
	int running; /* started and not yet joined */
	atomic_int finished;
	atomic_int stop;		   /* the owner asks the job to give up */
	atomic_uint_least64_t done;	   /* progress, in the job's own unit (bytes hashed) */
	atomic_size_t posted;		   /* results ready so far, in the job's own unit (items) */
	void (*run)(struct worker *w);	   /* on the thread */
	void (*done_fn)(struct worker *w); /* on the loop, once, from worker_reap() */
	void *arg;
	struct lws_context *ctx;
};

/* Starts run(w) on a new thread. 0, or -1 if no thread could be made. */
int worker_start(struct worker *w, struct lws_context *ctx, void (*run)(struct worker *),
		 void (*done)(struct worker *), void *arg);
/* From the job: results are ready (w->posted says how many); wakes the loop. */
void worker_post(struct worker *w);
/* On the loop: if the job has finished, joins it and runs its done. 1 if it did. */
int worker_reap(struct worker *w);
/* Asks the job to stop (it sees w->stop) and waits for it. */
void worker_stop(struct worker *w);

/* client.c — one WebSocket to the server, through libwebsockets, with reconnection */

#define CLIENT_TICK_MS	  100
#define CLIENT_TX_CHUNK	  (64 * 1024)
#define CLIENT_HAVE_MAX	  WSMSG_MAX_HASHES
#define CLIENT_GIVE_UP_MS 60000
/* The budgets a server names in its welcome (PROTOCOL.md); these, its documented defaults
 * (docs/LIMITS.md), stand in for a server that names none. */
#define CLIENT_DEFAULT_MSG_RATE	 2000
#define CLIENT_DEFAULT_MSG_BURST 4000
#define CLIENT_DEFAULT_MAX_WANTS 64
#define CLIENT_DEFAULT_MAX_HOLDS 100000
/* Every text message is paid for from a token bucket like the server's, at CLIENT_RATE_MARGIN
 * of its rate (the server's clock and ours need not agree). `have` lists leave the bucket at
 * least half full, as the pages pace theirs at half the budget, so that wants and declines
 * always find tokens. */
#define CLIENT_RATE_MARGIN 0.9
#define CLIENT_LIST_SHARE  2

struct client;

/* What a command does with the connection. Every member may be NULL. */
struct client_ops {
	/* After every welcome, once everything held has been announced again: wants do not
	 * outlive a connection, so this is where a command asks again. */
	void (*welcome)(struct client *c, int first);
	/* A blob we wanted arrived and hashed to its address. */
	void (*blob)(struct client *c, const uint8_t hash[HASH_LEN], const uint8_t *data,
		     size_t len);
	void (*count)(struct client *c, const uint8_t hash[HASH_LEN], uint64_t viewers);
	/* An error naming a hash, or "hash_mismatch" for a blob that did not hash right. */
	void (*error)(struct client *c, const struct wsmsg *m);
	void (*tick)(struct client *c);
	/* The loop was woken from another thread (a worker posted results), or a tick passed. */
	void (*wake)(struct client *c);
};

struct client_config {
	struct url_server server;
	int insecure;	     /* accept any certificate */
	const char *cacert;  /* extra CA file, or NULL */
	int persistent;	     /* reconnect for ever (share); otherwise give up after a minute */
	int lws_logs;	     /* pass libwebsockets' own warnings through */
	uint64_t rate_limit; /* bytes per second we send to others, 0 for no limit */
};

struct client_out {
	STAILQ_ENTRY(client_out) entry;
	char *text; /* a text message, or NULL for the answer to a request of `hash` */
	uint8_t hash[HASH_LEN];
};

enum client_state { CLIENT_IDLE, CLIENT_CONNECTING, CLIENT_OPEN };

struct client {
	struct client_config cfg;
	const struct client_ops *ops;
	void *user;
	struct progress *out;
	struct lws_context *ctx;
	struct lws *wsi;
	enum client_state state;
	int welcomed; /* a welcome arrived on the current connection */
	int ever_welcomed;
	int attempts;		     /* reconnections since the last welcome */
	int64_t lost_at;	     /* when the connection was lost, for giving up */
	uint64_t max_blob;	     /* from welcome */
	struct wsmsg_welcome budget; /* from welcome, defaults for what it does not name */
	int done;
	int exit_code;
	int interrupt_code; /* exit status on SIGINT/SIGTERM */
	struct store store;
	/* outgoing: a queue of messages; a blob answer is read when it reaches the head */
	STAILQ_HEAD(, client_out) outq;
	uint8_t *tx;   /* LWS_PRE + one chunk or one text message */
	uint8_t *blob; /* [hash][bytes] being written */
	size_t blob_cap, blob_total, blob_off;
	/* hashes held but not yet announced: sent as `have` lists when the budget allows,
	 * never more than max_holds in all */
	uint8_t (*lists)[HASH_LEN];
	size_t lists_head, lists_len, lists_cap;
	double msg_tokens;     /* the budget of text messages, from the welcome's msg_rate/burst */
	int64_t msg_tokens_at; /* microseconds */
	uint64_t announced;    /* hashes said `have` on this connection */
	/* `file` announcements (manifest, file SHA-256): sent after every `have`, again after
	 * every welcome */
	uint8_t (*files)[2 * HASH_LEN];
	size_t nfiles, files_cap, files_sent;
	int holds_noted;
	/* incoming: one message reassembled from its fragments */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	int rx_binary;
	struct wsmsg msg;
	lws_sorted_usec_list_t tick_sul, retry_sul, rate_sul, msg_sul;
	double tokens; /* --limit-rate's bucket, in bytes */
	int64_t tokens_at;
	uint64_t served_blobs, served_bytes;
};

/* 0, or -1 (the reason is printed). The client does not connect until client_run(). */
int client_init(struct client *c, const struct client_config *cfg, const struct client_ops *ops,
		void *user, struct progress *out);
/* Connects and serves until a command calls client_finish() or a signal arrives. Returns the
 * exit status. */
int client_run(struct client *c);
void client_finish(struct client *c, int exit_code);
void client_destroy(struct client *c);
/* 1 once SIGINT or SIGTERM arrived: long loops outside lws check it. */
int client_interrupted(void);

void client_want(struct client *c, const uint8_t hash[HASH_LEN]);
/* Holds a blob and announces it: `have` lists go out as the welcome's budgets allow, started by
 * client_flush_haves() (and by the tick). 0 or -1. */
int client_hold_file(struct client *c, const uint8_t hash[HASH_LEN], int fd, uint64_t off,
		     size_t len);
int client_hold_mem(struct client *c, const uint8_t hash[HASH_LEN], const void *data, size_t len);
void client_flush_haves(struct client *c);
/* Announces that the held manifest declares this whole-file SHA-256 (`file`), once its `have`
 * is out, and again on every new connection. 0 or -1. */
int client_announce_file(struct client *c, const uint8_t sha256[HASH_LEN],
			 const uint8_t manifest[HASH_LEN]);

/* api.c — one GET of the site's JSON API (before the WebSocket opens) */

/* GETs path (no leading '/') under the server's base URL. 0 with *status and *body (malloc'd,
 * NUL-terminated), or -1 with a reason in err. */
int api_get(const struct client_config *cfg, const char *path, int *status, char **body, char *err,
	    size_t errlen);

/* share.c — `ephemeral share FILE…`: one file, or a collection of several files or folders */

struct share_options {
	struct client_config client;
	char **files; /* "-" is standard input; several, or a folder: a collection */
	size_t nfiles;
	int page;	  /* share the single file's bytes as a page */
	const char *name; /* manifest name instead of the file's; a collection's name */
	const char *type;
	int quiet, verbose;
};

int share_run(const struct share_options *o);

/* get.c — `ephemeral get LINK|HASH|sha256:HASH`, and `get -o DIR LINK` for a collection */

struct get_options {
	struct client_config client;
	uint8_t hash[HASH_LEN];
	int by_sha256; /* hash is a file's plain SHA-256: try the manifests that declare it */
	int expect;    /* the file must have this plain SHA-256 (else CLI_EXIT_MISMATCH) */
	uint8_t expect_sha256[HASH_LEN];
	const char *output; /* NULL: the manifest's name (a page goes to standard output); "-";
			     * for a collection, the folder to recreate it in (required) */
	const char *only;   /* a collection's one file to fetch (its path), or NULL for all */
	int seed;
	int force;
	int quiet, verbose;
};

int get_run(const struct get_options *o);

#endif
