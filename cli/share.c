/*
 * share.c — `ephemeral share FILE…`: offer files (or one page) until Ctrl-C.
 *
 * Owns the sharer's side: opening the inputs (standard input and other pipes are first spooled
 * to an unlinked temporary file, so that every piece can be read again with pread), choosing
 * the piece size from the server's max_blob once the welcome arrives, hashing each file piece
 * by piece on a worker thread (the event loop keeps answering the server meanwhile, and serves
 * what is ready), printing one link per input on standard output, and then showing the live viewer
 * count of each link while the client answers requests from the store. With --page the single
 * input's bytes are one blob, the same address the home page's text box gives for the same
 * bytes. Never holds a file in memory: the store reads pieces from disk when asked.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A page is one blob: never larger than any server accepts (BLOB_MAX). */
#define SHARE_PAGE_MAX BLOB_MAX

struct share_item {
	const char *arg; /* as given on the command line */
	char *name;	 /* the manifest's name */
	const char *type;
	int fd;
	uint64_t size;
	uint8_t *page; /* --page: the bytes */
	size_t page_len;
	uint8_t root[HASH_LEN];
	struct manifest m; /* filled by the worker; pieces freed once held */
	int hash_rc;	   /* the worker's outcome: 0, or -1 with hash_err */
	char hash_err[256];
	int ready;
	uint64_t viewers;
};

struct share {
	const struct share_options *o;
	struct client c;
	struct progress out;
	struct share_item *items;
	size_t n;
	struct worker hasher; /* hashes every input in turn; w.posted: how many are hashed */
	size_t held;	      /* inputs hashed, held and linked, in order */
};

/* Copies a pipe into an unlinked temporary file, so its pieces can be read again later. */
static int share_spool(struct share *s, struct share_item *it, int in)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/ephemeral-share-XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		progress_error(&s->out, "cannot make a temporary file in %s: %s",
			       dir && *dir ? dir : "/tmp", strerror(errno));
		return -1;
	}
	unlink(path);
	static uint8_t buf[64 * 1024];
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			progress_error(&s->out, "cannot read %s: %s", it->arg, strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		if (store_write_all(fd, buf, (size_t)n, -1) < 0) {
			progress_error(&s->out, "cannot keep a copy of %s in %s: %s", it->arg,
				       dir && *dir ? dir : "/tmp", strerror(errno));
			close(fd);
			return -1;
		}
		total += (uint64_t)n;
	}
	it->fd = fd;
	it->size = total;
	return 0;
}

/* Reads a page's bytes (the whole input, at most SHARE_PAGE_MAX). */
static int share_read_page(struct share *s, struct share_item *it)
{
	uint8_t *buf;
	size_t len;
	if (read_all(it->fd, SHARE_PAGE_MAX, &buf, &len) < 0) {
		if (errno == EFBIG)
			progress_error(&s->out, "%s is too large to be a page", it->arg);
		else if (errno == ENOMEM)
			progress_error(&s->out, "out of memory");
		else
			progress_error(&s->out, "cannot read %s: %s", it->arg, strerror(errno));
		return -1;
	}
	it->page = buf;
	it->page_len = len;
	return 0;
}

/* The manifest name: the file's own name, made valid UTF-8 if it is not (JSON needs it). */
static char *share_name(const char *arg, const char *given)
{
	if (given)
		return strdup(given);
	if (strcmp(arg, "-") == 0)
		return strdup("stdin");
	char *copy = strdup(arg);
	if (copy == NULL)
		return NULL;
	char *name = strdup(basename(copy));
	free(copy);
	json_t *probe = name ? json_string(name) : NULL;
	if (name && probe == NULL)
		for (char *p = name; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '_';
	json_decref(probe);
	return name;
}

static int share_open(struct share *s, struct share_item *it)
{
	struct stat st;
	it->fd = -1;
	it->name = share_name(it->arg, s->o->name);
	if (it->name == NULL) {
		progress_error(&s->out, "out of memory");
		return -1;
	}
	it->type = s->o->type ? s->o->type : manifest_guess_type(it->name);
	int in =
	    strcmp(it->arg, "-") == 0 ? dup(STDIN_FILENO) : open(it->arg, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		progress_error(&s->out, "cannot open %s: %s", it->arg, strerror(errno));
		if (in >= 0)
			close(in);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		progress_error(&s->out, "%s is a directory: share the files in it (or an archive)",
			       it->arg);
		close(in);
		return -1;
	}
	it->fd = in;
	if (s->o->page) {
		int rc = share_read_page(s, it);
		close(in);
		it->fd = -1;
		return rc;
	}
	if (S_ISREG(st.st_mode)) {
		it->size = (uint64_t)st.st_size;
		return 0;
	}
	int rc = share_spool(s, it, in);
	close(in);
	if (rc < 0)
		it->fd = -1;
	return rc;
}

/* The hasher's progress callback: non-zero stops it (Ctrl-C, or the share is ending). */
static int share_hash_progress(void *arg, uint64_t done)
{
	struct worker *w = arg;
	atomic_store(&w->done, done);
	return client_interrupted() || atomic_load(&w->stop);
}

/* On the hasher's thread: hashes each input in turn (pread on its own descriptor, nothing the
 * loop touches), posting each one as it is done. */
static void share_hash_all(struct worker *w)
{
	struct share *s = w->arg;
	for (size_t i = 0; i < s->n && !atomic_load(&w->stop); i++) {
		struct share_item *it = &s->items[i];
		atomic_store(&w->done, 0);
		if (s->o->page)
			it->hash_rc = hash_compute(it->page, it->page_len, it->root);
		else
			it->hash_rc = manifest_hash_file(it->fd, &it->m, share_hash_progress, w,
							 it->hash_err, sizeof(it->hash_err));
		atomic_store(&w->posted, i + 1);
		worker_post(w);
		if (it->hash_rc < 0)
			break;
	}
}

/* Checks that an input fits this server and sets its piece size; -1 ends the command. */
static int share_plan(struct share *s, struct share_item *it)
{
	struct client *c = &s->c;
	char err[256], sz[32], max[32];
	if (s->o->page) {
		if (it->page_len > c->max_blob) {
			progress_format_bytes(it->page_len, sz, sizeof(sz));
			progress_format_bytes(c->max_blob, max, sizeof(max));
			progress_error(&s->out,
				       "%s is %s, more than one page may hold on this server (%s); "
				       "share it as a file instead (without --page)",
				       it->arg, sz, max);
			return -1;
		}
		return 0;
	}
	it->m = (struct manifest){.name = it->name, .type = (char *)it->type, .size = it->size};
	if (manifest_piece_size(it->size, it->name, it->type, c->max_blob, &it->m.piece_size, err,
				sizeof(err)) < 0) {
		progress_error(&s->out, "%s: %s", it->arg, err);
		return -1;
	}
	return 0;
}

/* Holds a hashed input (its page, or its manifest and pieces); -1 ends the command. */
static int share_hold(struct share *s, struct share_item *it)
{
	struct client *c = &s->c;
	if (it->hash_rc < 0) {
		if (client_interrupted())
			return -1;
		progress_error(&s->out, "cannot read %s: %s", it->arg,
			       s->o->page ? "hashing failed" : it->hash_err);
		return -1;
	}
	if (s->o->page)
		return client_hold_mem(c, it->root, it->page, it->page_len);
	struct manifest *m = &it->m;
	size_t len;
	char *json = manifest_build(m, &len);
	if (json == NULL) {
		progress_error(&s->out, "out of memory");
		return -1;
	}
	hash_compute(json, len, it->root);
	int rc = client_hold_mem(c, it->root, json, len);
	if (rc == 0 && m->has_sha256)
		rc = client_announce_file(c, m->sha256, it->root);
	for (size_t i = 0; rc == 0 && i < m->npieces; i++)
		rc = client_hold_file(c, m->pieces[i], it->fd, (uint64_t)i * m->piece_size,
				      (size_t)manifest_piece_len(m, i));
	free(json);
	free(m->pieces);
	m->pieces = NULL;
	return rc;
}

/* On the loop: holds and links every input the hasher has posted, in order. */
static void share_wake(struct client *c)
{
	struct share *s = c->user;
	char link[1200], sz[32];
	size_t posted = s->hasher.ctx ? atomic_load(&s->hasher.posted) : 0;
	while (s->held < posted && !c->done) {
		struct share_item *it = &s->items[s->held];
		progress_clear(&s->out);
		if (share_hold(s, it) < 0) {
			client_finish(c, client_interrupted() ? c->interrupt_code : CLI_EXIT_ERROR);
			return;
		}
		it->ready = 1;
		s->held++;
		url_link(&c->cfg.server, it->root, link, sizeof(link));
		printf("%s\n", link);
		fflush(stdout);
		progress_format_bytes(s->o->page ? it->page_len : it->size, sz, sizeof(sz));
		progress_note(&s->out, "sharing %s (%s%s) at %s", it->name, sz,
			      s->o->page ? ", as a page" : "", link);
		if (!s->o->page && it->m.has_sha256) {
			/* The hash people publish beside downloads, and the link that finds it
			 * (standard output stays one link per input, for scripts). */
			char hex[HASH_HEX_LEN + 1];
			hash_to_hex(it->m.sha256, hex);
			progress_note(&s->out, "sha256 %s, also found at %ssha256/%s", hex,
				      c->cfg.server.base, hex);
		}
		client_flush_haves(c);
		if (s->held == s->n)
			progress_note(
			    &s->out,
			    "keep this running while others fetch it; Ctrl-C stops sharing");
	}
	worker_reap(&s->hasher);
}

static void share_welcome(struct client *c, int first)
{
	struct share *s = c->user;
	if (!first)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (share_plan(s, &s->items[i]) < 0) {
			client_finish(c, CLI_EXIT_ERROR);
			return;
		}
	}
	if (worker_start(&s->hasher, c->ctx, share_hash_all, NULL, s) < 0) {
		progress_error(&s->out, "cannot start hashing: %s", strerror(errno));
		client_finish(c, CLI_EXIT_ERROR);
	}
}

static void share_count(struct client *c, const uint8_t hash[HASH_LEN], uint64_t viewers)
{
	struct share *s = c->user;
	for (size_t i = 0; i < s->n; i++) {
		struct share_item *it = &s->items[i];
		if (!it->ready || memcmp(it->root, hash, HASH_LEN) != 0 || it->viewers == viewers)
			continue;
		it->viewers = viewers;
		if (!s->out.tty && s->out.verbose && !s->out.quiet) {
			char hex[HASH_HEX_LEN + 1];
			hash_to_hex(hash, hex);
			progress_note(&s->out, "%s: %llu %s", hex, (unsigned long long)viewers,
				      viewers == 1 ? "viewer" : "viewers");
		}
	}
}

static void share_tick(struct client *c)
{
	struct share *s = c->user;
	char sent[32], counts[256] = "";
	size_t used = 0;
	if (s->held < s->n) {
		size_t i = atomic_load(&s->hasher.posted);
		if (s->hasher.ctx && i < s->n && !s->o->page) {
			const struct share_item *it = &s->items[i];
			uint64_t done = atomic_load(&s->hasher.done);
			progress_live(&s->out, "hashing %s %3d%%", it->name,
				      it->size ? (int)(100.0 * (double)done / (double)it->size)
					       : 100);
		}
		return;
	}
	for (size_t i = 0; i < s->n && used < sizeof(counts) - 32; i++)
		used += (size_t)snprintf(counts + used, sizeof(counts) - used, "%s%llu",
					 i ? ", " : "", (unsigned long long)s->items[i].viewers);
	progress_format_bytes(c->served_bytes, sent, sizeof(sent));
	if (s->n == 1)
		progress_live(&s->out, "%s: %s %s · sent %llu blobs (%s) · Ctrl-C to stop",
			      s->items[0].name, counts,
			      s->items[0].viewers == 1 ? "viewer" : "viewers",
			      (unsigned long long)c->served_blobs, sent);
	else
		progress_live(&s->out,
			      "%zu files, viewers %s · sent %llu blobs (%s) · Ctrl-C to stop", s->n,
			      counts, (unsigned long long)c->served_blobs, sent);
}

static const struct client_ops share_ops = {
    .welcome = share_welcome,
    .count = share_count,
    .tick = share_tick,
    .wake = share_wake,
};

int share_run(const struct share_options *o)
{
	struct share s;
	char sent[32];
	int rc = CLI_EXIT_ERROR;
	memset(&s, 0, sizeof(s));
	s.o = o;
	progress_init(&s.out, o->quiet, o->verbose);
	s.items = calloc(o->nfiles, sizeof(*s.items));
	if (s.items == NULL) {
		progress_error(&s.out, "out of memory");
		return CLI_EXIT_ERROR;
	}
	for (size_t i = 0; i < o->nfiles; i++) {
		s.items[i].arg = o->files[i];
		s.n = i + 1;
		if (share_open(&s, &s.items[i]) < 0)
			goto out;
	}
	struct client_config cfg = o->client;
	cfg.persistent = 1;
	if (client_init(&s.c, &cfg, &share_ops, &s, &s.out) == 0) {
		s.c.interrupt_code = CLI_EXIT_OK; /* Ctrl-C is how sharing ends */
		rc = client_run(&s.c);
		progress_format_bytes(s.c.served_bytes, sent, sizeof(sent));
		if (s.c.ever_welcomed)
			progress_note(&s.out, "served %llu blobs (%s) to others",
				      (unsigned long long)s.c.served_blobs, sent);
	}
out:
	worker_stop(&s.hasher); /* before the descriptors it reads are closed */
	client_destroy(&s.c);
	for (size_t i = 0; i < s.n; i++) {
		if (s.items[i].fd >= 0)
			close(s.items[i].fd);
		free(s.items[i].name);
		free(s.items[i].page);
		free(s.items[i].m.pieces);
	}
	free(s.items);
	return rc;
}
