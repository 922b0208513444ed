/*
 * get.c — `ephemeral get LINK|HASH`: fetch a page or a file, and help others while doing it.
 *
 * Owns the downloader's side: wanting the address, telling a manifest from a page, then for a
 * file a window of wants in flight (about 4 MiB worth, 4 to 16 pieces) that the hub spreads over
 * every holder. Each piece arrives already checked against its address by client.c, is written
 * at its offset with pwrite into NAME.part, and is offered to others at once (`have`). The
 * .part file is its own resume state: on a new run every piece range in it is hashed again (on a
 * worker thread: the event loop keeps answering the server meanwhile) and those that match are
 * kept, so nothing but the missing pieces is fetched, and a .part from something else can never
 * be mistaken for progress. When every piece is there the .part is
 * renamed. With --seed the client goes on serving until Ctrl-C.
 *
 * A collection (-o DIR) is checked whole before anything is written: its list against every
 * rule (common/collection.c), then each file's manifest (a window of wants, as pieces) against
 * its entry, then every place it would write (a symbolic link or a file where a folder should be
 * is refused; a file already there is kept if it has the right SHA-256, compared on a worker
 * thread, and needs --force otherwise). Then the files are fetched one after the other
 * as above, each into NAME.part beside it, renamed when verified; every folder and file is
 * opened relative to its parent with O_NOFOLLOW, so nothing inside DIR can redirect a write.
 */
#include "cli.h"
#include "collection.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GET_WINDOW_BYTES    (4 * 1024 * 1024)
#define GET_WINDOW_MIN	    4
#define GET_WINDOW_MAX	    16
#define GET_PIECE_RETRIES   5 /* not_found: 0.5 + 1 + 2 + 4 + 8 s of patience, then give up */
#define GET_RATE_RETRIES    8
#define GET_ROOT_MISMATCHES 3
enum get_present { GET_ABSENT, GET_THERE, GET_SAME };
#define GET_NAME_MAX 255 /* bytes of one name in a folder (NAME_MAX on Linux) */

enum get_phase { GET_ROOT, GET_MANIFESTS, GET_EXISTING, GET_CHECKING, GET_PIECES, GET_DONE };
enum get_state { PIECE_MISSING, PIECE_WANTED, PIECE_RETRY, PIECE_DONE };

/* One distinct piece address; identical pieces of a file are fetched once. */
struct get_piece {
	uint8_t hash[HASH_LEN]; /* the map's key */
	size_t first;		/* first index with this address; the others follow next_same */
	enum get_state state;
	int tries, rate_tries;
	int64_t retry_at;
};

struct get {
	const struct get_options *o;
	struct client c;
	struct progress out;
	enum get_phase phase;
	char hex[HASH_HEX_LEN + 1];
	int root_wanted, root_mismatches, root_rate_tries;
	int64_t root_retry_at;
	uint64_t viewers;
	/* a file */
	struct manifest m;
	struct get_piece *items;
	size_t nitems;
	size_t *next_same; /* per piece index: the next index with the same address, or SIZE_MAX */
	struct map by_hash;
	size_t next_new; /* items before this one have been wanted at least once */
	size_t nretry, in_flight, window, done_items;
	uint64_t bytes_done, bytes_resumed;
	int fd;
	int to_stdout;
	/* checking the .part of an earlier run, on the checker's thread */
	struct worker checker;
	uint8_t *part_ok; /* per piece index: 1 if its range hashed right */
	uint64_t part_size;
	int check_failed;
	uint8_t *root_data; /* the manifest, kept while the check runs */
	size_t root_len;
	char *path, *part; /* NULL when the file goes to standard output */
	int dirfd; /* what path and part are relative to: AT_FDCWD, or a collection's folder */
	/* the manifest being written: the link's, or a collection file's */
	uint8_t mhash[HASH_LEN];
	char display[256];
	/* a collection: the list, then each file's manifest, then each file in turn */
	int is_coll;
	struct collection coll;
	uint8_t *coll_data; /* the list's blob, held once writing starts */
	size_t coll_len;
	const struct collection_file **todo; /* the files to fetch (all, or --only's) */
	size_t ntodo, cur;
	/* their manifests, a window of wants at a time (GET_WINDOW_MAX, as pieces) */
	uint8_t *mstate; /* per todo file: enum get_state */
	int64_t *mretry_at;
	int *mtries;
	size_t mlow, mnext, mdone, mflight, mwindow; /* before mlow: all done; from mnext: not
							wanted yet; distinct wants in flight */
	struct manifest *mans;			     /* per todo file, once fetched and checked */
	uint8_t **man_data;
	size_t *man_len;
	int outdir; /* -o DIR, once opened */
	/* per todo file: GET_THERE a file of its size is in DIR already, GET_SAME and it has the
	 * file's SHA-256 (compared on the verifier's thread): kept, not fetched again */
	uint8_t *present;
	size_t nsame;
	struct worker verifier;
	int *kept; /* descriptors of the files done: their pieces are still served */
	size_t nkept;
	uint64_t coll_bytes;
	int advancing, advance_again;
};

static void get_fail(struct get *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void get_fail(struct get *g, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	progress_error(&g->out, "%s", msg);
	client_finish(&g->c, code);
}

/* ---- a page ------------------------------------------------------------------------------ */

static void get_page(struct get *g, const uint8_t *data, size_t len)
{
	const char *out = g->o->output;
	int fd = STDOUT_FILENO;
	char path[4096];
	struct stat st;
	if (out && strcmp(out, "-") != 0) {
		if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
			snprintf(path, sizeof(path), "%s/%s.html", out, g->hex);
		else
			snprintf(path, sizeof(path), "%s", out);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0) {
			get_fail(g, CLI_EXIT_ERROR, "cannot create %s: %s", path, strerror(errno));
			return;
		}
	}
	int rc = store_write_all(fd, data, len, -1);
	int saved = errno;
	if (fd != STDOUT_FILENO && close(fd) < 0 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	if (rc < 0) {
		get_fail(g, CLI_EXIT_ERROR, "cannot write the page: %s", strerror(saved));
		return;
	}
	if (fd != STDOUT_FILENO)
		progress_note(&g->out, "saved the page in %s", path);
	g->phase = GET_DONE;
	if (!g->o->seed) {
		client_finish(&g->c, CLI_EXIT_OK);
		return;
	}
	g->c.interrupt_code = CLI_EXIT_OK;
	g->c.cfg.persistent = 1;
	client_hold_mem(&g->c, g->o->hash, data, len);
	client_flush_haves(&g->c);
	progress_note(&g->out, "seeding the page; Ctrl-C stops");
}

/* ---- a file ------------------------------------------------------------------------------ */

/* Where the file goes: -o FILE, -o DIR (under the manifest's name), -o - or the safe name. */
static int get_paths(struct get *g)
{
	const char *out = g->o->output;
	char safe[256];
	struct stat st;
	manifest_safe_name(g->m.name, safe, sizeof(safe));
	snprintf(g->display, sizeof(g->display), "%s", safe);
	if (out && strcmp(out, "-") == 0) {
		const char *dir = getenv("TMPDIR");
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s/ephemeral-get-XXXXXX", dir && *dir ? dir : "/tmp");
		g->fd = mkstemp(tmp);
		if (g->fd < 0) {
			get_fail(g, CLI_EXIT_ERROR, "cannot make a temporary file: %s",
				 strerror(errno));
			return -1;
		}
		unlink(tmp);
		g->to_stdout = 1;
		return 0;
	}
	size_t n;
	if (out && stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
		n = strlen(out) + 1 + strlen(safe) + 1;
		g->path = malloc(n);
		if (g->path)
			snprintf(g->path, n, "%s/%s", out, safe);
	} else {
		g->path = strdup(out ? out : safe);
	}
	if (g->path == NULL)
		return -1;
	if (!out && !g->o->force && lstat(g->path, &st) == 0) {
		get_fail(
		    g, CLI_EXIT_ERROR,
		    "%s already exists here; choose another name with -o FILE, or overwrite it "
		    "with --force",
		    g->path);
		return -1;
	}
	n = strlen(g->path) + sizeof(".part");
	g->part = malloc(n);
	if (g->part == NULL)
		return -1;
	snprintf(g->part, n, "%s.part", g->path);
	g->fd = open(g->part, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (g->fd < 0) {
		get_fail(g, CLI_EXIT_ERROR, "cannot create %s: %s", g->part, strerror(errno));
		return -1;
	}
	return 0;
}

static int get_items(struct get *g)
{
	size_t n = g->m.npieces;
	g->items = calloc(n ? n : 1, sizeof(*g->items));
	g->next_same = malloc((n ? n : 1) * sizeof(size_t));
	if (g->items == NULL || g->next_same == NULL)
		return -1;
	map_init(&g->by_hash, offsetof(struct get_piece, hash), HASH_LEN);
	size_t *last = malloc((n ? n : 1) * sizeof(size_t)); /* per item: its last index so far */
	if (last == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		g->next_same[i] = SIZE_MAX;
		struct get_piece *it = map_get(&g->by_hash, g->m.pieces[i]);
		if (it) {
			size_t k = (size_t)(it - g->items);
			g->next_same[last[k]] = i;
			last[k] = i;
			continue;
		}
		it = &g->items[g->nitems];
		memcpy(it->hash, g->m.pieces[i], HASH_LEN);
		it->first = i;
		last[g->nitems] = i;
		if (map_put(&g->by_hash, it) < 0) {
			free(last);
			return -1;
		}
		g->nitems++;
	}
	free(last);
	return 0;
}

/* 1 if piece i is already in the .part file: its range holds data that hashes right. */
static int get_piece_present(struct get *g, uint64_t part_size, size_t i, uint8_t *buf)
{
	uint64_t off = (uint64_t)i * g->m.piece_size;
	size_t len = (size_t)manifest_piece_len(&g->m, i);
	uint8_t got[HASH_LEN];
	if (off + len > part_size)
		return 0;
	/* A hole where the piece should start: never written (pieces are written whole). */
	off_t data = lseek(g->fd, (off_t)off, SEEK_DATA);
	if (data < 0 ? errno == ENXIO : (uint64_t)data >= off + len)
		return 0;
	if (pread_full(g->fd, buf, len, off) < 0)
		return 0;
	return hash_compute(buf, len, got) == 0 && memcmp(got, g->m.pieces[i], HASH_LEN) == 0;
}

/* On the checker's thread: which pieces an earlier run left in the .part file. It reads the
 * file with pread only, and writes nothing the loop reads before worker_reap(). */
static void get_check_part(struct worker *w)
{
	struct get *g = w->arg;
	uint8_t *buf = malloc(g->m.piece_size);
	if (buf == NULL) {
		g->check_failed = 1;
		return;
	}
	for (size_t i = 0; i < g->m.npieces && !client_interrupted() && !atomic_load(&w->stop);
	     i++) {
		g->part_ok[i] = (uint8_t)get_piece_present(g, g->part_size, i, buf);
		atomic_store(&w->done, i + 1);
	}
	free(buf);
}

static void get_file_ready(struct get *g);

/* On the loop, once the check is over: keeps the pieces that hashed right, then fetches. */
static void get_check_done(struct worker *w)
{
	struct get *g = w->arg;
	progress_clear(&g->out);
	if (g->check_failed) {
		get_fail(g, CLI_EXIT_ERROR, "out of memory");
		return;
	}
	if (client_interrupted())
		return;
	for (size_t k = 0; k < g->nitems; k++) {
		struct get_piece *it = &g->items[k];
		int all = 1;
		uint64_t bytes = 0;
		for (size_t i = it->first; i != SIZE_MAX; i = g->next_same[i]) {
			all &= g->part_ok[i];
			bytes += manifest_piece_len(&g->m, i);
		}
		if (!all)
			continue;
		it->state = PIECE_DONE;
		g->done_items++;
		g->bytes_done += bytes;
	}
	g->bytes_resumed = g->bytes_done;
	get_file_ready(g);
}

/* Keeps what an earlier run left in the .part file: pieces that hash right. The hashing runs on
 * a worker thread; get_check_done() goes on. 1 if it started, 0 if there is nothing to check. */
static int get_resume(struct get *g)
{
	struct stat st;
	if (g->to_stdout || fstat(g->fd, &st) < 0 || st.st_size == 0)
		return 0;
	g->part_size = (uint64_t)st.st_size;
	g->part_ok = calloc(g->m.npieces ? g->m.npieces : 1, 1);
	if (g->part_ok == NULL)
		return -1;
	g->phase = GET_CHECKING;
	if (worker_start(&g->checker, g->c.ctx, get_check_part, get_check_done, g) < 0)
		return -1;
	return 1;
}

/* The whole file against the manifest's "sha256", one pass over what was written: 0 matches
 * (or the manifest names none), 1 differs, -1 unreadable. */
/* The plain SHA-256 of fd's first size bytes (pread: any thread). 0, or -1 (unreadable, or
 * shorter than size). */
static int get_hash_fd(int fd, uint64_t size, uint8_t out[HASH_LEN])
{
	const size_t chunk = 256 * 1024;
	uint8_t *buf = malloc(chunk);
	struct hash_stream *h = hash_stream_new();
	int rc = buf && h && hash_stream_begin(h) == 0 ? 0 : -1;
	for (uint64_t off = 0; rc == 0 && off < size; off += chunk) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
		if (pread_full(fd, buf, n, off) < 0 || hash_stream_update(h, buf, n) < 0)
			rc = -1;
	}
	if (rc == 0)
		rc = hash_stream_end(h, out);
	hash_stream_free(h);
	free(buf);
	return rc;
}

static int get_check_whole(struct get *g)
{
	uint8_t got[HASH_LEN];
	if (!g->m.has_sha256)
		return 0;
	if (get_hash_fd(g->fd, g->m.size, got) < 0)
		return -1;
	return memcmp(got, g->m.sha256, HASH_LEN) != 0;
}

static void get_coll_next(struct get *g);

static void get_complete(struct get *g)
{
	char sz[32];
	g->phase = GET_DONE;
	progress_clear(&g->out);
	int whole = get_check_whole(g);
	if (whole != 0) {
		/* Every piece matched its address, but the file is not the one the manifest says:
		 * nothing of it is kept. */
		char want[HASH_HEX_LEN + 1];
		hash_to_hex(g->m.sha256, want);
		if (g->part)
			unlinkat(g->dirfd, g->part, 0);
		if (whole < 0)
			get_fail(g, CLI_EXIT_ERROR, "cannot read %s back to check it", g->display);
		else
			get_fail(g, CLI_EXIT_MISMATCH,
				 "%s does not match the SHA-256 its manifest gives (%s): nothing "
				 "saved",
				 g->display, want);
		return;
	}
	if (g->m.has_sha256)
		progress_note(&g->out, "SHA-256 verified");
	if (g->to_stdout) {
		static uint8_t buf[64 * 1024];
		for (uint64_t off = 0; off < g->m.size;) {
			ssize_t n = pread(g->fd, buf, sizeof(buf), (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || store_write_all(STDOUT_FILENO, buf, (size_t)n, -1) < 0) {
				get_fail(g, CLI_EXIT_ERROR, "cannot write the file out: %s",
					 n == 0 ? "it is shorter than it should be"
						: strerror(errno));
				return;
			}
			off += (uint64_t)n;
		}
	} else if (renameat(g->dirfd, g->part, g->dirfd, g->path) < 0) {
		get_fail(g, CLI_EXIT_ERROR, "cannot rename %s to %s: %s", g->part, g->path,
			 strerror(errno));
		return;
	}
	progress_format_bytes(g->m.size, sz, sizeof(sz));
	if (g->is_coll) {
		g->coll_bytes += g->m.size;
		get_coll_next(g);
		return;
	}
	if (!g->to_stdout)
		progress_note(&g->out, "saved %s (%s)", g->path, sz);
	if (!g->o->seed) {
		client_finish(&g->c, CLI_EXIT_OK);
		return;
	}
	g->c.interrupt_code = CLI_EXIT_OK;
	g->c.cfg.persistent = 1;
	progress_note(&g->out, "seeding %s; Ctrl-C stops", g->display);
}

static void get_send_want(struct get *g, struct get_piece *it)
{
	it->state = PIECE_WANTED;
	g->in_flight++;
	client_want(&g->c, it->hash);
}

/* Keeps `window` wants in flight: retries that are due first, then pieces in file order. */
static void get_fill(struct get *g)
{
	if (g->phase != GET_PIECES || !g->c.welcomed)
		return;
	int64_t now = now_ms();
	for (size_t k = 0; g->nretry && k < g->nitems && g->in_flight < g->window; k++) {
		struct get_piece *it = &g->items[k];
		if (it->state == PIECE_RETRY && it->retry_at <= now) {
			g->nretry--;
			get_send_want(g, it);
		}
	}
	while (g->in_flight < g->window && g->next_new < g->nitems) {
		struct get_piece *it = &g->items[g->next_new++];
		if (it->state == PIECE_MISSING)
			get_send_want(g, it);
	}
}

/* The file's path is open (g->fd): its pieces, what an earlier run left, then fetching. */
static void get_file_start(struct get *g)
{
	int checking;
	if (get_items(g) < 0 || (checking = get_resume(g)) < 0) {
		if (!g->c.done)
			get_fail(g, CLI_EXIT_ERROR, "out of memory");
		return;
	}
	if (!checking)
		get_file_ready(g);
}

static void get_file(struct get *g, const uint8_t *data, size_t len)
{
	/* The manifest is held once the .part is checked: keep a copy (data is the receive
	 * buffer). */
	g->root_data = malloc(len ? len : 1);
	if (g->root_data)
		memcpy(g->root_data, data, len);
	g->root_len = len;
	if (g->root_data == NULL || get_paths(g) < 0) {
		if (!g->c.done)
			get_fail(g, CLI_EXIT_ERROR, "out of memory");
		return;
	}
	get_file_start(g);
}

/* The .part is checked (or there was none): make room, hold what is here, start fetching. */
static void get_file_ready(struct get *g)
{
	char have[32], all[32];
	if (client_interrupted() || g->c.done)
		return;
	if (ftruncate(g->fd, (off_t)g->m.size) < 0) {
		get_fail(g, CLI_EXIT_ERROR, "cannot make room for %s: %s", g->display,
			 strerror(errno));
		return;
	}
	g->phase = GET_PIECES;
	uint64_t w = GET_WINDOW_BYTES / g->m.piece_size;
	g->window = w < GET_WINDOW_MIN ? GET_WINDOW_MIN : w > GET_WINDOW_MAX ? GET_WINDOW_MAX : w;
	if (g->window > g->c.budget.max_wants)
		g->window = g->c.budget.max_wants; /* the server's welcome says how many it takes */
	/* We hold the manifest, and so count as a viewer, as a browser does. */
	client_hold_mem(&g->c, g->mhash, g->root_data, g->root_len);
	for (size_t k = 0; k < g->nitems; k++) {
		struct get_piece *it = &g->items[k];
		if (it->state == PIECE_DONE)
			client_hold_file(&g->c, it->hash, g->fd,
					 (uint64_t)it->first * g->m.piece_size,
					 (size_t)manifest_piece_len(&g->m, it->first));
	}
	if (g->bytes_resumed) {
		progress_format_bytes(g->bytes_resumed, have, sizeof(have));
		progress_format_bytes(g->m.size, all, sizeof(all));
		progress_note(&g->out, "resuming %s: %zu of %zu pieces already here (%s of %s)",
			      g->display, g->done_items, g->nitems, have, all);
	}
	progress_sample(&g->out, 0);
	if (g->done_items == g->nitems)
		get_complete(g);
	else
		get_fill(g);
}

static void get_piece_arrived(struct get *g, struct get_piece *it, const uint8_t *data, size_t len)
{
	/* Every place the manifest lists this address must have room for exactly these bytes. */
	for (size_t i = it->first; i != SIZE_MAX; i = g->next_same[i]) {
		uint64_t expect = manifest_piece_len(&g->m, i);
		if (len != expect) {
			get_fail(g, CLI_EXIT_ERROR,
				 "piece %zu has %zu bytes but the manifest says %llu: the manifest "
				 "is malformed",
				 i + 1, len, (unsigned long long)expect);
			return;
		}
	}
	for (size_t i = it->first; i != SIZE_MAX; i = g->next_same[i]) {
		if (store_write_all(g->fd, data, len, (int64_t)((uint64_t)i * g->m.piece_size)) <
		    0) {
			get_fail(g, CLI_EXIT_ERROR, "cannot write %s: %s",
				 g->part ? g->part : "a temporary file", strerror(errno));
			return;
		}
		g->bytes_done += len;
	}
	it->state = PIECE_DONE;
	g->in_flight--;
	g->done_items++;
	client_hold_file(&g->c, it->hash, g->fd, (uint64_t)it->first * g->m.piece_size, len);
	progress_sample(&g->out, g->bytes_done - g->bytes_resumed);
	if (g->done_items == g->nitems)
		get_complete(g);
	else
		get_fill(g);
}

/* ---- a collection ------------------------------------------------------------------------ */

/* 1 if a file of the window already wants this manifest (a second want would get no answer:
 * two files of the same content and name share one manifest). */
static int get_man_wanted(struct get *g, const uint8_t hash[HASH_LEN], size_t before)
{
	for (size_t i = g->mlow; i < before; i++)
		if (g->mstate[i] == PIECE_WANTED &&
		    memcmp(g->todo[i]->manifest, hash, HASH_LEN) == 0)
			return 1;
	return 0;
}

static void get_man_want(struct get *g, size_t i)
{
	int shared = get_man_wanted(g, g->todo[i]->manifest, g->mnext);
	g->mstate[i] = PIECE_WANTED;
	if (!shared) {
		g->mflight++;
		client_want(&g->c, g->todo[i]->manifest);
	}
}

/* Keeps `mwindow` manifest wants in flight: retries that are due first, then in list order. */
static void get_man_fill(struct get *g)
{
	if (g->phase != GET_MANIFESTS || !g->c.welcomed)
		return;
	int64_t now = now_ms();
	for (size_t i = g->mlow; i < g->mnext && g->mflight < g->mwindow; i++)
		if (g->mstate[i] == PIECE_RETRY && g->mretry_at[i] <= now)
			get_man_want(g, i);
	while (g->mflight < g->mwindow && g->mnext < g->ntodo) {
		size_t i = g->mnext++;
		get_man_want(g, i);
	}
}

/* The list arrived and keeps every rule: choose the files, then fetch their manifests. */
static void get_coll(struct get *g, const uint8_t *data, size_t len)
{
	char sz[32];
	const char *out = g->o->output;
	if (out == NULL || strcmp(out, "-") == 0) {
		get_fail(g, CLI_EXIT_USAGE,
			 "%s is a collection of %zu files: name the folder to save them in with "
			 "-o DIR",
			 g->hex, g->coll.nfiles);
		return;
	}
	g->coll_data = malloc(len ? len : 1);
	g->todo = calloc(g->coll.nfiles, sizeof(*g->todo));
	g->mans = calloc(g->coll.nfiles, sizeof(*g->mans));
	g->man_data = calloc(g->coll.nfiles, sizeof(*g->man_data));
	g->man_len = calloc(g->coll.nfiles, sizeof(*g->man_len));
	g->kept = calloc(g->coll.nfiles, sizeof(*g->kept));
	g->mstate = calloc(g->coll.nfiles, sizeof(*g->mstate));
	g->mretry_at = calloc(g->coll.nfiles, sizeof(*g->mretry_at));
	g->mtries = calloc(g->coll.nfiles, sizeof(*g->mtries));
	g->present = calloc(g->coll.nfiles, sizeof(*g->present));
	if (g->present == NULL || g->coll_data == NULL || g->todo == NULL || g->mans == NULL ||
	    g->man_data == NULL || g->man_len == NULL || g->kept == NULL || g->mstate == NULL ||
	    g->mretry_at == NULL || g->mtries == NULL) {
		get_fail(g, CLI_EXIT_ERROR, "out of memory");
		return;
	}
	memcpy(g->coll_data, data, len);
	g->coll_len = len;
	if (g->o->only) {
		const struct collection_file *f = collection_find(&g->coll, g->o->only);
		if (f == NULL) {
			char q[COLLECTION_QUOTE_MAX * 6 + 8];
			collection_quote(g->o->only, strlen(g->o->only), q, sizeof(q));
			get_fail(g, CLI_EXIT_USAGE, "this collection has no file \"%s\"", q);
			return;
		}
		g->todo[g->ntodo++] = f;
	} else {
		for (size_t i = 0; i < g->coll.nfiles; i++)
			g->todo[g->ntodo++] = &g->coll.files[i];
	}
	progress_format_bytes(collection_total(&g->coll), sz, sizeof(sz));
	progress_note(&g->out, "collection \"%s\": %zu %s, %s", g->coll.name, g->coll.nfiles,
		      g->coll.nfiles == 1 ? "file" : "files", sz);
	g->phase = GET_MANIFESTS;
	g->mwindow =
	    GET_WINDOW_MAX < g->c.budget.max_wants ? GET_WINDOW_MAX : g->c.budget.max_wants;
	if (g->mwindow == 0)
		g->mwindow = 1;
	get_man_fill(g);
}

/*
 * Opens folder `name` inside dir without following a link; with create, makes it first if it is
 * not there. The descriptor, or -1 with errno (ENOENT: not there and not created).
 */
static int get_open_folder(int dir, const char *name, int create)
{
	if (create && mkdirat(dir, name, 0777) < 0 && errno != EEXIST)
		return -1;
	return openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/*
 * Walks a collection path inside DIR, folder by folder, with openat and O_NOFOLLOW. Returns
 * the descriptor of the file's folder and points *last at the file's name; with create, makes
 * the folders that are missing. -1 with a reason: a link or a file where a folder should be
 * (refused, never followed), or ENOENT without create (*missing set: nothing there yet).
 */
static int get_walk(struct get *g, const char *path, int create, const char **last, int *missing,
		    char *err, size_t errlen)
{
	int dir = dup(g->outdir);
	const char *start = path;
	*missing = 0;
	if (dir < 0)
		return error_set(err, errlen, "%s", strerror(errno));
	for (const char *slash; (slash = strchr(start, '/')) != NULL; start = slash + 1) {
		char name[GET_NAME_MAX + 1];
		if ((size_t)(slash - start) > GET_NAME_MAX) {
			close(dir);
			return error_set(err, errlen,
					 "refused: a folder name in %s is longer than %d bytes",
					 path, GET_NAME_MAX);
		}
		snprintf(name, sizeof(name), "%.*s", (int)(slash - start), start);
		int next = get_open_folder(dir, name, create);
		int saved = errno;
		close(dir);
		if (next < 0 && saved == ENOENT && !create) {
			*missing = 1;
			*last = slash + 1;
			return -1;
		}
		if (next < 0) {
			if (saved == ELOOP || saved == ENOTDIR || saved == EEXIST)
				return error_set(
				    err, errlen,
				    "refused: %.*s in %s is a symbolic link or a file, "
				    "where the collection has a folder: not followed",
				    (int)(slash - path), path, g->o->output);
			return error_set(err, errlen, "cannot open the folder %.*s in %s: %s",
					 (int)(slash - path), path, g->o->output, strerror(saved));
		}
		dir = next;
	}
	*last = start;
	return dir;
}

/* Every place the collection would write, before anything is: 0, or -1 (said). */
static int get_coll_check_targets(struct get *g)
{
	char err[1024];
	for (size_t i = 0; i < g->ntodo; i++) {
		const char *path = g->todo[i]->path, *last;
		const char *base = strrchr(path, '/');
		struct stat st;
		int missing;
		/* NAME.part must fit in a directory entry too: refuse now, not half-way. */
		if (strlen(base ? base + 1 : path) + strlen(".part") > GET_NAME_MAX) {
			get_fail(
			    g, CLI_EXIT_ERROR,
			    "refused: the name of %s is longer than this system allows (%d bytes "
			    "with .part); nothing saved",
			    path, GET_NAME_MAX);
			return -1;
		}
		int dir = get_walk(g, path, 0, &last, &missing, err, sizeof(err));
		if (dir < 0 && missing)
			continue;
		if (dir < 0) {
			get_fail(g, CLI_EXIT_ERROR, "%s", err);
			return -1;
		}
		int rc = fstatat(dir, last, &st, AT_SYMLINK_NOFOLLOW);
		close(dir);
		if (rc < 0)
			continue;
		if (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode)) {
			get_fail(g, CLI_EXIT_ERROR,
				 "refused: %s in %s is a %s, where the collection has a file: "
				 "nothing saved",
				 path, g->o->output,
				 S_ISLNK(st.st_mode) ? "symbolic link" : "folder");
			return -1;
		}
		if (S_ISREG(st.st_mode) && (uint64_t)st.st_size == g->todo[i]->size) {
			g->present[i] = GET_THERE; /* the same file, perhaps: compared next */
			continue;
		}
		if (!g->o->force) {
			get_fail(g, CLI_EXIT_ERROR,
				 "%s already exists in %s and is not this file; overwrite it with "
				 "--force (nothing saved)",
				 path, g->o->output);
			return -1;
		}
	}
	return 0;
}

/* On the verifier's thread: which files already in DIR are the collection's (their SHA-256).
 * Reads only, through get_walk and O_NOFOLLOW like every other access to DIR. */
static void get_verify_existing(struct worker *w)
{
	struct get *g = w->arg;
	for (size_t i = 0; i < g->ntodo && !client_interrupted() && !atomic_load(&w->stop); i++) {
		const char *last;
		char err[256];
		uint8_t got[HASH_LEN];
		int missing;
		if (g->present[i] != GET_THERE)
			continue;
		int dir = get_walk(g, g->todo[i]->path, 0, &last, &missing, err, sizeof(err));
		int fd = dir < 0
			     ? -1
			     : openat(dir, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (dir >= 0)
			close(dir);
		if (fd >= 0 && get_hash_fd(fd, g->todo[i]->size, got) == 0 &&
		    memcmp(got, g->todo[i]->sha256, HASH_LEN) == 0)
			g->present[i] = GET_SAME;
		if (fd >= 0)
			close(fd);
		atomic_store(&w->done, i + 1);
	}
}

/* Opens the current file's NAME.part in its folder (made as needed) and starts fetching it. */
static void get_coll_start(struct get *g)
{
	const struct collection_file *f = g->todo[g->cur];
	const char *last;
	char err[1024];
	int missing;
	g->dirfd = get_walk(g, f->path, 1, &last, &missing, err, sizeof(err));
	if (g->dirfd < 0) {
		g->dirfd = AT_FDCWD;
		get_fail(g, CLI_EXIT_ERROR, "%s", err);
		return;
	}
	g->m = g->mans[g->cur];
	memset(&g->mans[g->cur], 0, sizeof(g->mans[g->cur]));
	g->root_data = g->man_data[g->cur];
	g->root_len = g->man_len[g->cur];
	g->man_data[g->cur] = NULL;
	memcpy(g->mhash, f->manifest, HASH_LEN);
	snprintf(g->display, sizeof(g->display), "%s", f->path);
	size_t n = strlen(last) + sizeof(".part");
	g->path = strdup(last);
	g->part = malloc(n);
	if (g->path == NULL || g->part == NULL) {
		get_fail(g, CLI_EXIT_ERROR, "out of memory");
		return;
	}
	snprintf(g->part, n, "%s.part", last);
	g->fd = openat(g->dirfd, g->part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (g->fd < 0) {
		get_fail(g, CLI_EXIT_ERROR, "cannot create %s.part in %s: %s", f->path,
			 g->o->output, errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		return;
	}
	if (g->ntodo > 1)
		progress_note(&g->out, "%zu/%zu %s", g->cur + 1, g->ntodo, f->path);
	get_file_start(g);
}

static void get_coll_finish(struct get *g);

/* The first file from i on that is not already in DIR, or ntodo. */
static size_t get_coll_skip(struct get *g, size_t i)
{
	while (i < g->ntodo && g->present[i] == GET_SAME)
		i++;
	return i;
}

/* Every check is passed: hold the list and fetch what is not there yet. */
static void get_coll_begin(struct get *g)
{
	/* We hold the list too, and so count as a viewer of it, as a browser does. */
	client_hold_mem(&g->c, g->o->hash, g->coll_data, g->coll_len);
	g->cur = get_coll_skip(g, 0);
	if (g->cur < g->ntodo)
		get_coll_start(g);
	else
		get_coll_finish(g);
}

/* On the loop, once the files already in DIR are compared: the same are kept, a different one
 * needs --force. */
static void get_verify_done(struct worker *w)
{
	struct get *g = w->arg;
	progress_clear(&g->out);
	if (client_interrupted() || g->c.done)
		return;
	for (size_t i = 0; i < g->ntodo; i++) {
		if (g->present[i] == GET_THERE && !g->o->force) {
			get_fail(g, CLI_EXIT_ERROR,
				 "%s already exists in %s and is not this file; overwrite it with "
				 "--force (nothing saved)",
				 g->todo[i]->path, g->o->output);
			return;
		}
		if (g->present[i] == GET_SAME) {
			g->nsame++;
			g->coll_bytes += g->todo[i]->size;
		}
	}
	if (g->nsame)
		progress_note(&g->out, "%zu of %zu files are in %s already (same SHA-256): kept",
			      g->nsame, g->ntodo, g->o->output);
	get_coll_begin(g);
}

/* Every manifest agrees with the list: check where it all goes, then write. */
static void get_verify_done(struct worker *w);
static void get_coll_begin(struct get *g);

static void get_coll_write(struct get *g)
{
	g->outdir = open(g->o->output, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g->outdir < 0 && errno == ENOENT && mkdir(g->o->output, 0777) == 0)
		g->outdir = open(g->o->output, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g->outdir < 0) {
		get_fail(g, CLI_EXIT_ERROR, "cannot open the folder %s: %s", g->o->output,
			 strerror(errno));
		return;
	}
	if (get_coll_check_targets(g) < 0)
		return;
	for (size_t i = 0; i < g->ntodo; i++)
		if (g->present[i] == GET_THERE) {
			g->phase = GET_EXISTING;
			if (worker_start(&g->verifier, g->c.ctx, get_verify_existing,
					 get_verify_done, g) < 0)
				get_fail(g, CLI_EXIT_ERROR, "cannot start a thread: %s",
					 strerror(errno));
			return;
		}
	get_coll_begin(g);
}

/* File i's manifest arrived: it must be a manifest, and agree with its entry. 0, or -1 (the
 * command ends). */
static int get_coll_manifest(struct get *g, size_t i, const uint8_t *data, size_t len)
{
	const struct collection_file *f = g->todo[i];
	struct manifest *m = &g->mans[i];
	char err[1024], q[COLLECTION_QUOTE_MAX * 6 + 8];
	int kind = manifest_parse(data, len, g->c.max_blob, m, err, sizeof(err));
	if (kind <= 0) {
		collection_quote(f->path, strlen(f->path), q, sizeof(q));
		get_fail(g, CLI_EXIT_ERROR, "refused: the manifest of \"%s\" %s%s: nothing saved",
			 q, kind < 0 ? "is malformed: " : "is not a manifest", kind < 0 ? err : "");
		return -1;
	}
	if (collection_check_manifest(f, m->size, m->has_sha256 ? m->sha256 : NULL, err,
				      sizeof(err)) < 0) {
		get_fail(g, CLI_EXIT_MISMATCH, "%s: nothing saved", err);
		return -1;
	}
	g->man_data[i] = malloc(len ? len : 1);
	if (g->man_data[i] == NULL) {
		get_fail(g, CLI_EXIT_ERROR, "out of memory");
		return -1;
	}
	memcpy(g->man_data[i], data, len);
	g->man_len[i] = len;
	return 0;
}

/* A manifest arrived: every file of the window that wants it takes it; when all are here and
 * agree with the list, the writing starts. */
static void get_man_arrived(struct get *g, const uint8_t hash[HASH_LEN], const uint8_t *data,
			    size_t len)
{
	int wanted = 0;
	for (size_t i = g->mlow; i < g->mnext; i++) {
		if ((g->mstate[i] != PIECE_WANTED && g->mstate[i] != PIECE_RETRY) ||
		    memcmp(g->todo[i]->manifest, hash, HASH_LEN) != 0)
			continue;
		wanted |= g->mstate[i] == PIECE_WANTED;
		if (get_coll_manifest(g, i, data, len) < 0)
			return;
		g->mstate[i] = PIECE_DONE;
		g->mdone++;
	}
	if (wanted)
		g->mflight--;
	while (g->mlow < g->ntodo && g->mstate[g->mlow] == PIECE_DONE)
		g->mlow++;
	if (g->mdone == g->ntodo)
		get_coll_write(g);
	else
		get_man_fill(g);
}

/* An error for a manifest of the window. */
static void get_man_error(struct get *g, const struct wsmsg *m)
{
	size_t first = SIZE_MAX;
	for (size_t i = g->mlow; i < g->mnext && first == SIZE_MAX; i++)
		if (g->mstate[i] == PIECE_WANTED &&
		    memcmp(g->todo[i]->manifest, m->hash, HASH_LEN) == 0)
			first = i;
	if (first == SIZE_MAX)
		return;
	const char *path = g->todo[first]->path;
	if (strcmp(m->code, "not_found") == 0) {
		/* The sharer held every manifest before it linked the list. */
		get_fail(g, CLI_EXIT_GONE,
			 "%s of this collection is gone: nobody holds its manifest now; nothing "
			 "saved",
			 path);
	} else if (strcmp(m->code, "hash_mismatch") == 0 &&
		   ++g->root_mismatches < GET_ROOT_MISMATCHES) {
		client_want(&g->c, m->hash); /* still in flight */
	} else if (strcmp(m->code, "rate_limited") == 0 && g->mtries[first] < GET_RATE_RETRIES) {
		g->mflight--;
		int64_t at = now_ms() + (250 << ++g->mtries[first]);
		for (size_t i = first; i < g->mnext; i++)
			if (g->mstate[i] == PIECE_WANTED &&
			    memcmp(g->todo[i]->manifest, m->hash, HASH_LEN) == 0) {
				g->mstate[i] = PIECE_RETRY;
				g->mretry_at[i] = at;
			}
	} else {
		get_fail(g, CLI_EXIT_ERROR, "cannot fetch the manifest of %s: %s (%s)", path,
			 m->message, m->code);
	}
}

/* One file of the collection is saved: keep serving it, forget the rest of it, go on. */
static void get_coll_advance(struct get *g)
{
	g->kept[g->nkept++] = g->fd;
	g->fd = -1;
	if (g->dirfd != AT_FDCWD)
		close(g->dirfd);
	g->dirfd = AT_FDCWD;
	manifest_free(&g->m);
	map_free(&g->by_hash);
	free(g->items);
	free(g->next_same);
	free(g->part_ok);
	free(g->root_data);
	free(g->path);
	free(g->part);
	g->items = NULL;
	g->next_same = NULL;
	g->part_ok = NULL;
	g->root_data = NULL;
	g->path = g->part = NULL;
	g->nitems = g->next_new = g->nretry = g->in_flight = g->done_items = 0;
	g->bytes_done = g->bytes_resumed = g->part_size = 0;
	g->cur = get_coll_skip(g, g->cur + 1);
	if (g->cur < g->ntodo)
		get_coll_start(g);
	else
		get_coll_finish(g);
}

/* Every file is in DIR, verified. */
static void get_coll_finish(struct get *g)
{
	char sz[32];
	g->phase = GET_DONE;
	progress_format_bytes(g->coll_bytes, sz, sizeof(sz));
	progress_note(&g->out, "saved %zu %s (%s) in %s", g->ntodo,
		      g->ntodo == 1 ? "file" : "files", sz, g->o->output);
	if (!g->o->seed) {
		client_finish(&g->c, CLI_EXIT_OK);
		return;
	}
	g->c.interrupt_code = CLI_EXIT_OK;
	g->c.cfg.persistent = 1;
	snprintf(g->display, sizeof(g->display), "%s", g->coll.name);
	progress_note(&g->out, "seeding %s; Ctrl-C stops", g->display);
}

/* Goes on to the next file; a file that completes at once (empty, or already in its .part)
 * comes back here from inside: a loop, not a recursion as deep as the list. */
static void get_coll_next(struct get *g)
{
	if (g->advancing) {
		g->advance_again = 1;
		return;
	}
	g->advancing = 1;
	do {
		g->advance_again = 0;
		get_coll_advance(g);
	} while (g->advance_again && !g->c.done);
	g->advancing = 0;
}

/* ---- the client's events ----------------------------------------------------------------- */

static void get_root(struct get *g, const uint8_t *data, size_t len)
{
	char err[1024];
	int kind = manifest_parse(data, len, g->c.max_blob, &g->m, err, sizeof(err));
	if (kind < 0) {
		get_fail(g, CLI_EXIT_ERROR, "%s is a malformed manifest: %s", g->hex, err);
		return;
	}
	if (g->o->expect && (kind == 0 || !g->m.has_sha256 ||
			     memcmp(g->m.sha256, g->o->expect_sha256, HASH_LEN) != 0)) {
		get_fail(g, CLI_EXIT_MISMATCH, "%s is not a manifest of a file with that SHA-256",
			 g->hex);
		return;
	}
	g->root_wanted = 0;
	if (kind == 0) {
		/* A collection is refused whole, before anything is written, if it breaks a rule.
		 */
		int coll = collection_parse(data, len, &g->coll, err, sizeof(err));
		if (coll < 0) {
			get_fail(g, CLI_EXIT_ERROR, "%s; nothing saved", err);
			return;
		}
		if (coll == 1) {
			g->is_coll = 1;
			get_coll(g, data, len);
			return;
		}
	}
	if (g->o->only) {
		get_fail(g, CLI_EXIT_USAGE, "--only is for collections, and %s is a %s", g->hex,
			 kind == 0 ? "page" : "file");
		return;
	}
	if (kind == 0)
		get_page(g, data, len);
	else
		get_file(g, data, len);
}

static void get_welcome(struct client *c, int first)
{
	struct get *g = c->user;
	(void)first;
	if (g->phase == GET_ROOT) {
		uint8_t root[HASH_LEN];
		hash_from_hex(g->hex, HASH_HEX_LEN, root);
		g->root_wanted = 1;
		client_want(c, root);
		return;
	}
	/* Wants do not outlive a connection: ask again for everything in flight. */
	if (g->phase == GET_MANIFESTS) {
		g->mflight = 0;
		for (size_t i = g->mlow; i < g->mnext; i++)
			if (g->mstate[i] == PIECE_WANTED &&
			    !get_man_wanted(g, g->todo[i]->manifest, i)) {
				g->mflight++;
				client_want(c, g->todo[i]->manifest);
			}
	}
	for (size_t k = 0; g->phase == GET_PIECES && k < g->nitems; k++)
		if (g->items[k].state == PIECE_WANTED)
			client_want(c, g->items[k].hash);
}

static void get_blob(struct client *c, const uint8_t hash[HASH_LEN], const uint8_t *data,
		     size_t len)
{
	struct get *g = c->user;
	if (g->phase == GET_ROOT) {
		if (memcmp(hash, g->o->hash, HASH_LEN) == 0)
			get_root(g, data, len);
		return;
	}
	if (g->phase == GET_MANIFESTS) {
		get_man_arrived(g, hash, data, len);
		return;
	}
	if (g->phase != GET_PIECES)
		return;
	struct get_piece *it = map_get(&g->by_hash, hash);
	if (it && it->state == PIECE_WANTED)
		get_piece_arrived(g, it, data, len);
}

static void get_count(struct client *c, const uint8_t hash[HASH_LEN], uint64_t viewers)
{
	struct get *g = c->user;
	if (memcmp(hash, g->o->hash, HASH_LEN) == 0)
		g->viewers = viewers;
}

static void get_root_error(struct get *g, const struct wsmsg *m)
{
	if (strcmp(m->code, "not_found") == 0) {
		get_fail(g, CLI_EXIT_GONE, "this content is gone: nobody holds %s now", g->hex);
	} else if (strcmp(m->code, "rate_limited") == 0 && g->root_rate_tries < GET_RATE_RETRIES) {
		g->root_retry_at = now_ms() + (250 << ++g->root_rate_tries);
		g->root_wanted = 0;
	} else if (strcmp(m->code, "hash_mismatch") == 0 &&
		   ++g->root_mismatches < GET_ROOT_MISMATCHES) {
		client_want(&g->c, g->o->hash);
	} else {
		get_fail(g, CLI_EXIT_ERROR, "cannot fetch %s: %s (%s)", g->hex, m->message,
			 m->code);
	}
}

static void get_error(struct client *c, const struct wsmsg *m)
{
	struct get *g = c->user;
	if (g->phase == GET_ROOT) {
		if (memcmp(m->hash, g->o->hash, HASH_LEN) == 0)
			get_root_error(g, m);
		return;
	}
	if (g->phase == GET_MANIFESTS) {
		get_man_error(g, m);
		return;
	}
	struct get_piece *it = g->phase == GET_PIECES ? map_get(&g->by_hash, m->hash) : NULL;
	if (it == NULL || it->state != PIECE_WANTED)
		return;
	int64_t now = now_ms();
	g->in_flight--;
	if (strcmp(m->code, "rate_limited") == 0 && it->rate_tries < GET_RATE_RETRIES) {
		it->retry_at = now + (250 << ++it->rate_tries);
	} else if (strcmp(m->code, "not_found") == 0 || strcmp(m->code, "hash_mismatch") == 0 ||
		   strcmp(m->code, "rate_limited") == 0) {
		/* A holder half-way through its own download may announce it soon: be patient. */
		if (++it->tries > GET_PIECE_RETRIES) {
			get_fail(g, CLI_EXIT_GONE,
				 "piece %zu of %s cannot be found: nobody online holds it now%s",
				 it->first + 1, g->display,
				 g->part ? "; what arrived is kept, run the same command again to "
					   "resume"
					 : "");
			return;
		}
		it->retry_at = now + (500 << (it->tries - 1));
	} else {
		get_fail(g, CLI_EXIT_ERROR, "the server refused piece %zu: %s (%s)", it->first + 1,
			 m->message, m->code);
		return;
	}
	it->state = PIECE_RETRY;
	g->nretry++;
	get_fill(g);
}

static void get_wake(struct client *c)
{
	struct get *g = c->user;
	worker_reap(&g->checker);
	worker_reap(&g->verifier);
}

static void get_tick(struct client *c)
{
	struct get *g = c->user;
	if (g->phase == GET_CHECKING) {
		uint64_t done = atomic_load(&g->checker.done);
		progress_live(&g->out, "checking %s.part %3d%%", g->display,
			      g->m.npieces ? (int)(100.0 * (double)done / (double)g->m.npieces)
					   : 100);
		return;
	}
	if (g->phase == GET_ROOT) {
		if (!g->root_wanted && g->root_retry_at && now_ms() >= g->root_retry_at &&
		    c->welcomed) {
			g->root_wanted = 1;
			client_want(c, g->o->hash);
		}
		progress_live(&g->out, "looking for %.12s…", g->hex);
		return;
	}
	if (g->phase == GET_EXISTING) {
		progress_live(&g->out, "comparing the files already in %s", g->o->output);
		return;
	}
	if (g->phase == GET_MANIFESTS) {
		get_man_fill(g);
		progress_live(&g->out, "checking the collection: %zu of %zu manifests", g->mdone,
			      g->ntodo);
		return;
	}
	if (g->phase == GET_PIECES) {
		get_fill(g);
		progress_sample(&g->out, g->bytes_done - g->bytes_resumed);
		progress_transfer(&g->out, g->display, g->bytes_done, g->m.size, g->viewers);
		return;
	}
	if (g->o->seed) {
		progress_seeding(&g->out, "seeding ", g->m.name ? g->display : g->hex, g->viewers,
				 c->served_blobs, c->served_bytes);
	}
}

static const struct client_ops get_ops = {
    .welcome = get_welcome,
    .blob = get_blob,
    .count = get_count,
    .error = get_error,
    .tick = get_tick,
    .wake = get_wake,
};

static int get_one(const struct get_options *o)
{
	struct get g;
	int rc = CLI_EXIT_ERROR;
	memset(&g, 0, sizeof(g));
	g.o = o;
	g.fd = -1;
	g.dirfd = AT_FDCWD;
	g.outdir = -1;
	memcpy(g.mhash, o->hash, HASH_LEN);
	hash_to_hex(o->hash, g.hex);
	progress_init(&g.out, o->quiet, o->verbose);
	if (client_init(&g.c, &o->client, &get_ops, &g, &g.out) == 0) {
		g.c.interrupt_code = CLI_EXIT_INTERRUPTED;
		rc = client_run(&g.c);
		if (rc == CLI_EXIT_INTERRUPTED && g.phase == GET_PIECES && g.part)
			progress_note(&g.out,
				      "stopped; %s keeps what arrived: run the same command "
				      "again to resume",
				      g.part);
	}
	worker_stop(&g.checker);  /* before the .part it reads is closed */
	worker_stop(&g.verifier); /* before DIR is closed */
	client_destroy(&g.c);
	if (g.fd >= 0)
		close(g.fd);
	free(g.part_ok);
	free(g.root_data);
	manifest_free(&g.m);
	map_free(&g.by_hash);
	free(g.items);
	free(g.next_same);
	free(g.path);
	free(g.part);
	if (g.dirfd != AT_FDCWD)
		close(g.dirfd);
	if (g.outdir >= 0)
		close(g.outdir);
	for (size_t i = 0; i < g.nkept; i++)
		close(g.kept[i]);
	for (size_t i = 0; g.mans && i < g.ntodo; i++) {
		manifest_free(&g.mans[i]);
		free(g.man_data[i]);
	}
	free(g.kept);
	free(g.mstate);
	free(g.mretry_at);
	free(g.mtries);
	free(g.present);
	free(g.mans);
	free(g.man_data);
	free(g.man_len);
	free(g.todo);
	free(g.coll_data);
	collection_free(&g.coll);
	return rc;
}

/* The plain SHA-256's candidates from the site's API: 1 if a blob is held under that very
 * address (it is the file), else the manifests in *list (most viewers first), *n of them. */
static int get_candidates(const struct get_options *o, struct progress *out, const char *hex,
			  uint8_t (**list)[HASH_LEN], size_t *n)
{
	char path[128], err[512];
	int status;
	char *body;
	*list = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "api/v1/pages/%s", hex);
	if (api_get(&o->client, path, &status, &body, err, sizeof(err)) < 0) {
		progress_error(out, "cannot ask %s: %s", o->client.server.base, err);
		return -1;
	}
	json_t *root = status == 200 ? json_loads(body, 0, NULL) : NULL;
	free(body);
	json_int_t viewers = json_integer_value(json_object_get(root, "viewers"));
	json_decref(root);
	if (viewers > 0)
		return 1;
	snprintf(path, sizeof(path), "api/v1/files/%s", hex);
	if (api_get(&o->client, path, &status, &body, err, sizeof(err)) < 0) {
		progress_error(out, "cannot ask %s: %s", o->client.server.base, err);
		return -1;
	}
	root = status == 200 ? json_loads(body, 0, NULL) : NULL;
	free(body);
	json_t *manifests = json_object_get(root, "manifests");
	if (!json_is_array(manifests)) {
		json_decref(root);
		progress_error(out, "%s answered %d to a lookup of %s", o->client.server.base,
			       status, hex);
		return -1;
	}
	*list = calloc(json_array_size(manifests) + 1, HASH_LEN);
	if (*list == NULL) {
		json_decref(root);
		progress_error(out, "out of memory");
		return -1;
	}
	size_t i;
	json_t *m;
	json_array_foreach(manifests, i, m)
	{
		json_t *h = json_object_get(m, "hash");
		if (json_is_string(h) &&
		    hash_from_hex(json_string_value(h), json_string_length(h), (*list)[*n]) == 0)
			(*n)++;
	}
	json_decref(root);
	return 0;
}

/* `get …/sha256/HASH`: the blob under that address, else each manifest that declares it in
 * turn, until one gives a file that really has that SHA-256. */
static int get_by_sha256(const struct get_options *o)
{
	struct progress out;
	char hex[HASH_HEX_LEN + 1];
	uint8_t(*list)[HASH_LEN];
	size_t n;
	progress_init(&out, o->quiet, o->verbose);
	hash_to_hex(o->hash, hex);
	int found = get_candidates(o, &out, hex, &list, &n);
	if (found < 0)
		return CLI_EXIT_UNREACHABLE;
	struct get_options one = *o;
	one.by_sha256 = 0;
	if (found == 1)
		return get_one(
		    &one); /* a blob's address is its plain SHA-256: checked as any blob */
	one.expect = 1;
	memcpy(one.expect_sha256, o->hash, HASH_LEN);
	int rc = CLI_EXIT_GONE;
	for (size_t i = 0; i < n; i++) {
		memcpy(one.hash, list[i], HASH_LEN);
		rc = get_one(&one);
		if (rc != CLI_EXIT_MISMATCH && rc != CLI_EXIT_GONE)
			break;
		if (i + 1 < n)
			progress_note(&out, "trying the next file that says it has SHA-256 %s",
				      hex);
	}
	free(list);
	if (n == 0)
		progress_error(&out, "no one here holds a file with SHA-256 %s right now", hex);
	return rc;
}

int get_run(const struct get_options *o)
{
	return o->by_sha256 ? get_by_sha256(o) : get_one(o);
}
