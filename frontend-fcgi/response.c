/*
 * response.c — builds one HTTP answer in memory and writes it as a CGI/FastCGI response.
 *
 * Owns the headers every answer carries (the site's Content-Security-Policy, nosniff, no
 * referrer) so that no handler can forget them. Knows nothing of FastCGI: main.c hands it a
 * sink. Never fails half-way: an allocation failure turns the answer into a bare 500.
 */
#include "frontend.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void response_init(struct response *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 500;
	r->content_type = "text/plain; charset=utf-8";
	r->csp = FRONTEND_CSP_SITE;
	r->cache_control = "no-store";
}

static void response_set(struct response *r, int status, const char *type)
{
	r->status = status;
	r->content_type = type;
	r->csp = FRONTEND_CSP_SITE;
	r->cache_control = "no-store";
	r->body_len = 0;
}

void response_html(struct response *r, int status)
{
	response_set(r, status, "text/html; charset=utf-8");
}

void response_json(struct response *r, int status)
{
	response_set(r, status, "application/json");
}

void response_text(struct response *r, int status)
{
	response_set(r, status, "text/plain; charset=utf-8");
}

static int response_reserve(struct response *r, size_t extra)
{
	if (r->failed)
		return -1;
	if (extra > SIZE_MAX / 2 - r->body_len) {
		r->failed = 1;
		return -1;
	}
	if (r->body_len + extra <= r->body_cap)
		return 0;
	size_t cap = r->body_cap ? r->body_cap : 1024;
	while (cap < r->body_len + extra)
		cap *= 2;
	char *nb = realloc(r->body, cap);
	if (nb == NULL) {
		r->failed = 1;
		return -1;
	}
	r->body = nb;
	r->body_cap = cap;
	return 0;
}

void response_append(struct response *r, const void *data, size_t len)
{
	if (len == 0 || response_reserve(r, len) < 0)
		return;
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
}

void response_appendf(struct response *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || response_reserve(r, (size_t)n + 1) < 0) {
		r->failed = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(r->body + r->body_len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r->body_len += (size_t)n;
}

static const char *response_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
	    {200, "OK"},	  {301, "Moved Permanently"},	{400, "Bad Request"},
	    {404, "Not Found"},	  {405, "Method Not Allowed"},	{500, "Internal Server Error"},
	    {502, "Bad Gateway"}, {503, "Service Unavailable"},
	};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

/* Appends one formatted header line; once the buffer is full, *n stays past its end. */
static void response_header(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void response_header(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
	if (*n >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf + *n, cap - *n, fmt, ap);
	va_end(ap);
	*n = w < 0 ? cap : *n + (size_t)w;
}

int response_write(const struct response *r, response_sink sink, void *ctx)
{
	static const char oom_body[] = "internal server error\n";
	static const char oom_head[] = "Status: 500 Internal Server Error\r\n"
				       "Content-Type: text/plain; charset=utf-8\r\n"
				       "Content-Length: 22\r\n"
				       "X-Content-Type-Options: nosniff\r\n"
				       "Cache-Control: no-store\r\n"
				       "\r\n";
	char head[2048];
	size_t n = 0;

	if (!r->failed) {
		response_header(head, sizeof(head), &n,
				"Status: %d %s\r\n"
				"Content-Type: %s\r\n"
				"Content-Length: %zu\r\n"
				"X-Content-Type-Options: nosniff\r\n"
				"Referrer-Policy: no-referrer\r\n",
				r->status, response_reason(r->status), r->content_type,
				r->body_len);
		if (r->csp)
			response_header(head, sizeof(head), &n, "Content-Security-Policy: %s\r\n",
					r->csp);
		if (r->cache_control)
			response_header(head, sizeof(head), &n, "Cache-Control: %s\r\n",
					r->cache_control);
		if (r->allow)
			response_header(head, sizeof(head), &n, "Allow: %s\r\n", r->allow);
		if (r->location[0])
			response_header(head, sizeof(head), &n, "Location: %s\r\n", r->location);
		response_header(head, sizeof(head), &n, "\r\n");
	}
	if (r->failed || n >= sizeof(head)) {
		if (sink(ctx, oom_head, sizeof(oom_head) - 1) < 0)
			return -1;
		return r->head ? 0 : sink(ctx, oom_body, sizeof(oom_body) - 1);
	}
	if (sink(ctx, head, n) < 0)
		return -1;
	if (!r->head && r->body_len > 0 && sink(ctx, r->body, r->body_len) < 0)
		return -1;
	return 0;
}

void response_free(struct response *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = r->body_cap = 0;
}
