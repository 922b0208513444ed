/*
 * pages.c — the HTML pages: read from <web_dir>/templates/ once at start-up, filled in per request.
 *
 * Owns the templates and the one substitution they support, {{HASH}}, which only ever receives
 * a validated 64-hex address (so it needs no escaping). A missing template is a start-up error
 * (main.c calls fatalx with the message); unavailable.html is optional and has a built-in
 * fallback, so that a 503 never depends on a file. Never reads files after start-up.
 */
#include "frontend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGES_MAX_SIZE	    (4 * 1024 * 1024)
#define PAGES_HASH_MARK	    "{{HASH}}"
#define PAGES_HASH_MARK_LEN (sizeof(PAGES_HASH_MARK) - 1)

static const struct {
	const char *file;
	int optional;
} pages_files[PAGE_COUNT] = {
    [PAGE_HOME] = {"home.html", 0},	  [PAGE_VIEW] = {"view.html", 0},
    [PAGE_GONE] = {"gone.html", 0},	  [PAGE_NOT_FOUND] = {"notfound.html", 0},
    [PAGE_SANDBOX] = {"sandbox.html", 0}, [PAGE_UNAVAILABLE] = {"unavailable.html", 1},
    [PAGE_NO_FILE] = {"nofile.html", 0},
};

static const char pages_unavailable_builtin[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head><meta charset=\"utf-8\"><title>Ephemeral — service unavailable</title></head>\n"
    "<body>\n"
    "<h1>Service unavailable</h1>\n"
    "<p>Ephemeral cannot answer right now: the service that knows who holds what did not "
    "reply in time. Please try again in a moment.</p>\n"
    "</body>\n"
    "</html>\n";

/* Reads a whole file. 0, -1 with errno set (ENOENT: absent), or -1 with EFBIG if too large. */
static int pages_read_file(const char *path, char **text, size_t *len)
{
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = read_all(fd, PAGES_MAX_SIZE, &buf, len);
	int saved = errno;
	close(fd);
	errno = saved;
	if (rc == 0)
		*text = (char *)buf;
	return rc;
}

int pages_load(struct pages *p, const char *web_dir, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < PAGE_COUNT; i++) {
		char path[4096];
		int n =
		    snprintf(path, sizeof(path), "%s/templates/%s", web_dir, pages_files[i].file);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			snprintf(err, errlen, "template path too long under %s", web_dir);
			pages_free(p);
			return -1;
		}
		if (pages_read_file(path, &p->text[i], &p->len[i]) == 0)
			continue;
		if (pages_files[i].optional && errno == ENOENT) {
			p->text[i] = strdup(pages_unavailable_builtin);
			p->len[i] = sizeof(pages_unavailable_builtin) - 1;
			if (p->text[i] != NULL)
				continue;
		}
		snprintf(err, errlen, "cannot read template %s: %s (is frontend.web_dir right?)",
			 path, strerror(errno));
		pages_free(p);
		return -1;
	}
	return 0;
}

void pages_free(struct pages *p)
{
	for (int i = 0; i < PAGE_COUNT; i++) {
		free(p->text[i]);
		p->text[i] = NULL;
		p->len[i] = 0;
	}
}

void pages_render(const struct pages *p, enum page which, const char *hash, struct response *r)
{
	const char *s = p->text[which], *end = s + p->len[which];
	if (hash == NULL) {
		response_append(r, s, p->len[which]);
		return;
	}
	while (s < end) {
		const char *mark =
		    memmem(s, (size_t)(end - s), PAGES_HASH_MARK, PAGES_HASH_MARK_LEN);
		if (mark == NULL) {
			response_append(r, s, (size_t)(end - s));
			break;
		}
		response_append(r, s, (size_t)(mark - s));
		response_append(r, hash, strlen(hash));
		s = mark + PAGES_HASH_MARK_LEN;
	}
}
