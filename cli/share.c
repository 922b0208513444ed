/*
 * share.c — `ephemeral share FILE|DIR…`: offer a file, a collection or a page until Ctrl-C.
 *
 * Owns the sharer's side: opening the inputs (standard input and other pipes are first spooled
 * to an unlinked temporary file, so that every piece can be read again with pread), choosing
 * the piece size from the server's max_blob once the welcome arrives, hashing each file piece
 * by piece on a worker thread (the event loop keeps answering the server meanwhile, and serves
 * what is ready), printing the link on standard output, and then showing the live viewer
 * count while the client answers requests from the store. With --page the single
 * input's bytes are one blob, the same address the home page's text box gives for the same
 * bytes. Never holds a file in memory: the store reads pieces from disk when asked.
 *
 * Several inputs, or a folder, are a collection (docs/FILES.md "Collections"): the folders are
 * walked with openat and O_NOFOLLOW (symbolic links and anything but regular files are skipped
 * with a warning, so the walk never leaves the folder), each file is shared as its own manifest
 * exactly as it would be alone, and once all are hashed the collection's canonical JSON is held
 * too and its link is the one printed.
 */
#include "cli.h"
#include "collection.h"

#include <dirent.h>
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
	const char *arg; /* as given on the command line, or the walked file's path for messages */
	char *owned_arg; /* arg, when the walk made it */
	char *path;	 /* its path in a collection, or NULL */
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
	size_t n, cap;
	int coll;	 /* several inputs or a folder: one collection */
	char *coll_name; /* its name */
	uint8_t coll_root[HASH_LEN];
	char *coll_json; /* held while sharing */
	size_t coll_len;
	int coll_ready;
	uint64_t coll_viewers;
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

/* The name a command-line argument goes by in a collection: its last component ("photos/" and
 * "a/photos" give "photos"), or the real folder's name for "." and the like. malloc'd. */
static char *share_base(const char *arg)
{
	if (strcmp(arg, "-") == 0)
		return strdup("stdin");
	char *copy = strdup(arg);
	if (copy == NULL)
		return NULL;
	size_t n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	char *base = strdup(basename(copy));
	free(copy);
	if (base && (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0)) {
		char *real = realpath(arg, NULL);
		free(base);
		base = real ? strdup(strcmp(real, "/") == 0 ? "root" : basename(real)) : NULL;
		free(real);
	}
	return base;
}

/* The manifest name: the file's own name, made valid UTF-8 if it is not (JSON needs it). */
static char *share_name(const char *arg, const char *given)
{
	if (given)
		return strdup(given);
	char *name = share_base(arg);
	json_t *probe = name ? json_string(name) : NULL;
	if (name && probe == NULL)
		for (char *p = name; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '_';
	json_decref(probe);
	return name;
}

/* Opens an input (in: a descriptor the walk opened already, or -1 to open arg). */
static int share_open(struct share *s, struct share_item *it, int in)
{
	struct stat st;
	it->fd = -1;
	it->name = share_name(it->arg, s->coll ? NULL : s->o->name);
	if (it->name == NULL) {
		progress_error(&s->out, "out of memory");
		if (in >= 0)
			close(in);
		return -1;
	}
	it->type = s->o->type ? s->o->type : manifest_guess_type(it->name);
	if (in < 0)
		in = strcmp(it->arg, "-") == 0 ? dup(STDIN_FILENO)
					       : open(it->arg, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		progress_error(&s->out, "cannot open %s: %s", it->arg, strerror(errno));
		if (in >= 0)
			close(in);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		progress_error(&s->out, "%s is a directory: --page shares one file", it->arg);
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

/* A new input at the end of the list; NULL (said) when out of memory. */
static struct share_item *share_add(struct share *s)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct share_item *items = realloc(s->items, cap * sizeof(*items));
		if (items == NULL) {
			progress_error(&s->out, "out of memory");
			return NULL;
		}
		s->items = items;
		s->cap = cap;
	}
	struct share_item *it = &s->items[s->n++];
	memset(it, 0, sizeof(*it));
	it->fd = -1;
	return it;
}

static char *share_join(const char *a, const char *b)
{
	size_t n = (a ? strlen(a) + 1 : 0) + strlen(b) + 1;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s%s%s", a ? a : "", a ? "/" : "", b);
	return out;
}

/*
 * Adds every regular file under the folder dir (a descriptor, which it closes): shown is the
 * folder's path for messages, prefix its path in the collection (NULL at the top). Never follows a
 * symbolic link and never leaves the folder: every entry is looked at with AT_SYMLINK_NOFOLLOW and
 * opened with openat and O_NOFOLLOW; links, devices, pipes and sockets are skipped with a warning.
 */
static int share_walk(struct share *s, int dir, const char *shown, const char *prefix)
{
	DIR *d = fdopendir(dir);
	if (d == NULL) {
		progress_error(&s->out, "cannot read the folder %s: %s", shown, strerror(errno));
		close(dir);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *show = share_join(shown, e->d_name);
		char *path = share_join(prefix, e->d_name);
		struct stat st;
		if (show == NULL || path == NULL) {
			progress_error(&s->out, "out of memory");
			rc = -1;
		} else if (fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			progress_error(&s->out, "cannot look at %s: %s", show, strerror(errno));
			rc = -1;
		} else if (S_ISLNK(st.st_mode)) {
			progress_error(
			    &s->out,
			    "skipping %s: a symbolic link (links inside a folder are not "
			    "followed)",
			    show);
		} else if (S_ISDIR(st.st_mode)) {
			int fd =
			    openat(dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				progress_error(&s->out, "cannot open the folder %s: %s", show,
					       strerror(errno));
				rc = -1;
			} else {
				rc = share_walk(s, fd, show, path);
			}
		} else if (S_ISREG(st.st_mode)) {
			int fd =
			    openat(dir, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			struct share_item *it = fd < 0 ? NULL : share_add(s);
			if (fd < 0)
				progress_error(&s->out, "cannot open %s: %s", show,
					       strerror(errno));
			if (it == NULL) {
				if (fd >= 0)
					close(fd);
				rc = -1;
			} else {
				it->arg = it->owned_arg = show;
				it->path = path;
				show = path = NULL;
				rc = share_open(s, it, fd);
			}
		} else {
			progress_error(&s->out, "skipping %s: not a regular file", show);
		}
		free(show);
		free(path);
	}
	if (rc == 0 && errno != 0) {
		progress_error(&s->out, "cannot read the folder %s: %s", shown, strerror(errno));
		rc = -1;
	}
	closedir(d);
	return rc;
}

/* Opens one command-line argument: a file, or (in a collection) a folder's files. */
static int share_open_arg(struct share *s, const char *arg)
{
	struct stat st;
	if (s->coll && strcmp(arg, "-") != 0 && stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* One folder alone: paths are relative to it; otherwise it is their first
		 * component. */
		char *base = share_base(arg);
		int fd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (base == NULL || fd < 0) {
			progress_error(&s->out, "cannot open the folder %s: %s", arg,
				       base ? strerror(errno) : "out of memory");
			free(base);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		int rc = share_walk(s, fd, arg, s->o->nfiles == 1 ? NULL : base);
		if (s->o->nfiles == 1 && s->coll_name == NULL && !s->o->name)
			s->coll_name = base;
		else
			free(base);
		return rc;
	}
	struct share_item *it = share_add(s);
	if (it == NULL)
		return -1;
	it->arg = arg;
	if (s->coll && (it->path = share_base(arg)) == NULL) {
		progress_error(&s->out, "out of memory");
		return -1;
	}
	return share_open(s, it, -1);
}

/* The collection of the inputs (paths borrowed from the items: free c->files only). With
 * hashes 0 until the inputs are hashed. 0 or -1 (out of memory). */
static int share_collection(struct share *s, struct collection *c)
{
	c->name = s->coll_name;
	c->nfiles = s->n;
	c->files = calloc(s->n ? s->n : 1, sizeof(*c->files));
	if (c->files == NULL)
		return -1;
	for (size_t i = 0; i < s->n; i++) {
		const struct share_item *it = &s->items[i];
		c->files[i].path = it->path;
		c->files[i].size = it->size;
		memcpy(c->files[i].manifest, it->root, HASH_LEN);
		memcpy(c->files[i].sha256, it->m.sha256, HASH_LEN);
	}
	return 0;
}

/* Before connecting: a name, at least one file, paths that keep every rule (UTF-8 included). */
static int share_check_collection(struct share *s)
{
	struct collection c;
	char err[1024], q[COLLECTION_QUOTE_MAX * 6 + 8];
	if (s->n == 0) {
		progress_error(&s->out,
			       "refused: no files to share (empty folders are not listed, and "
			       "symbolic links inside a folder are not followed)");
		return -1;
	}
	for (size_t i = 0; i < s->n; i++) {
		json_t *probe = json_string(s->items[i].path);
		if (probe == NULL) {
			collection_quote(s->items[i].path, strlen(s->items[i].path), q, sizeof(q));
			progress_error(&s->out, "refused: path \"%s\" is not UTF-8; rename it", q);
			return -1;
		}
		json_decref(probe);
	}
	if (s->coll_name == NULL) {
		char name[64];
		snprintf(name, sizeof(name), "%zu files", s->n);
		s->coll_name = strdup(s->o->name ? s->o->name : name);
	}
	if (s->coll_name == NULL || share_collection(s, &c) < 0) {
		progress_error(&s->out, "out of memory");
		return -1;
	}
	json_t *probe = json_string(c.name);
	int rc = probe ? 0 : error_set(err, sizeof(err), "refused: the name is not UTF-8");
	json_decref(probe);
	if (rc == 0)
		rc = collection_check_name(c.name, err, sizeof(err));
	if (rc == 0)
		rc = collection_check(&c, err, sizeof(err));
	if (rc < 0)
		progress_error(&s->out, "%s", err);
	free(c.files);
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

/* The collection's JSON is as long before hashing as after (every hash is 64 digits): it must
 * fit in one blob of this server. 0, or -1 (said). */
static int share_collection_fits(struct share *s)
{
	struct collection c;
	char sz[32], max[32];
	size_t len = 0;
	char *json = share_collection(s, &c) == 0 ? collection_build(&c, &len) : NULL;
	free(c.files);
	free(json);
	if (json == NULL) {
		progress_error(&s->out, "out of memory");
		return -1;
	}
	if (len > s->c.max_blob) {
		progress_format_bytes(len, sz, sizeof(sz));
		progress_format_bytes(s->c.max_blob, max, sizeof(max));
		progress_error(
		    &s->out,
		    "refused: the list of %zu files takes %s, more than one blob may hold "
		    "on this server (%s); share fewer files at once, or an archive",
		    s->n, sz, max);
		return -1;
	}
	return 0;
}

/* Every file is held: holds the collection itself and prints its link. 0 or -1. */
static int share_hold_collection(struct share *s)
{
	struct collection c;
	char link[1200], sz[32];
	if (share_collection(s, &c) < 0 ||
	    (s->coll_json = collection_build(&c, &s->coll_len)) == NULL) {
		free(c.files);
		progress_error(&s->out, "out of memory");
		return -1;
	}
	free(c.files);
	hash_compute(s->coll_json, s->coll_len, s->coll_root);
	if (client_hold_mem(&s->c, s->coll_root, s->coll_json, s->coll_len) < 0)
		return -1;
	s->coll_ready = 1;
	url_link(&s->c.cfg.server, s->coll_root, link, sizeof(link));
	printf("%s\n", link);
	fflush(stdout);
	uint64_t total = 0;
	for (size_t i = 0; i < s->n; i++)
		total += s->items[i].size;
	progress_format_bytes(total, sz, sizeof(sz));
	progress_note(&s->out, "%s \xe2\x80\x94 %zu %s, %s", s->coll_name, s->n,
		      s->n == 1 ? "file" : "files", sz);
	progress_note(&s->out, "keep this running while others fetch it; Ctrl-C stops sharing");
	return 0;
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
		if (s->coll) {
			if (s->o->verbose) {
				url_link(&c->cfg.server, it->root, link, sizeof(link));
				progress_note(&s->out, "%s is also at %s", it->path, link);
			}
			if (s->held == s->n && share_hold_collection(s) < 0) {
				client_finish(c, CLI_EXIT_ERROR);
				return;
			}
			client_flush_haves(c);
			continue;
		}
		url_link(&c->cfg.server, it->root, link, sizeof(link));
		printf("%s\n", link);
		fflush(stdout);
		progress_format_bytes(s->o->page ? it->page_len : it->size, sz, sizeof(sz));
		progress_note(&s->out, "sharing %s (%s%s) at %s", it->name, sz,
			      s->o->page ? ", as a page" : "", link);
		if (!s->o->page && it->m.has_sha256) {
			/* The hash people publish beside downloads, and the link that finds it
			 * (standard output stays the one link, for scripts). */
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
	if (s->coll && share_collection_fits(s) < 0) {
		client_finish(c, CLI_EXIT_ERROR);
		return;
	}
	if (worker_start(&s->hasher, c->ctx, share_hash_all, NULL, s) < 0) {
		progress_error(&s->out, "cannot start hashing: %s", strerror(errno));
		client_finish(c, CLI_EXIT_ERROR);
	}
}

static void share_count(struct client *c, const uint8_t hash[HASH_LEN], uint64_t viewers)
{
	struct share *s = c->user;
	if (s->coll) {
		if (s->coll_ready && memcmp(s->coll_root, hash, HASH_LEN) == 0)
			s->coll_viewers = viewers;
		return;
	}
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
	if (s->held < s->n) {
		size_t i = atomic_load(&s->hasher.posted);
		if (s->hasher.ctx && i < s->n && !s->o->page) {
			const struct share_item *it = &s->items[i];
			uint64_t done = atomic_load(&s->hasher.done);
			int pct = it->size ? (int)(100.0 * (double)done / (double)it->size) : 100;
			if (s->coll)
				progress_live(&s->out, "hashing %zu/%zu: %s %3d%%", i + 1, s->n,
					      it->name, pct);
			else
				progress_live(&s->out, "hashing %s %3d%%", it->name, pct);
		}
		return;
	}
	/* One link: the collection's, or the single input's. */
	const char *name = s->coll ? s->coll_name : s->items[0].name;
	uint64_t viewers = s->coll ? s->coll_viewers : s->items[0].viewers;
	progress_seeding(&s->out, "", name, viewers, c->served_blobs, c->served_bytes);
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
	/* Several inputs, or one folder, are a collection. */
	s.coll = o->nfiles > 1;
	for (size_t i = 0; !o->page && i < o->nfiles; i++) {
		struct stat st;
		if (strcmp(o->files[i], "-") != 0 && stat(o->files[i], &st) == 0 &&
		    S_ISDIR(st.st_mode))
			s.coll = 1;
	}
	for (size_t i = 0; i < o->nfiles; i++)
		if (share_open_arg(&s, o->files[i]) < 0)
			goto out;
	if (s.coll && share_check_collection(&s) < 0)
		goto out;
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
		free(s.items[i].owned_arg);
		free(s.items[i].path);
		free(s.items[i].page);
		free(s.items[i].m.pieces);
	}
	free(s.items);
	free(s.coll_name);
	free(s.coll_json);
	return rc;
}
