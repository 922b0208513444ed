/*
 * progress.c — everything a person sees on standard error: errors, notes, and one live line.
 *
 * Owns the rule for being quiet: the live line (a progress bar, a viewer count) appears only on
 * a terminal, notes only on a terminal or with --verbose, and errors always. Any message first
 * clears the live line so the two never mix. Standard output is not touched here: it carries
 * only what a command produces (links, a page's bytes). Speeds are measured over the last five
 * seconds, as the pages do (files.js).
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PROGRESS_WINDOW_MS 5000

void progress_init(struct progress *p, int quiet, int verbose)
{
	memset(p, 0, sizeof(*p));
	p->tty = isatty(STDERR_FILENO);
	p->quiet = quiet;
	p->verbose = verbose;
}

void progress_clear(struct progress *p)
{
	if (p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		p->shown = 0;
	}
}

static void progress_vsay(struct progress *p, const char *fmt, va_list ap)
{
	progress_clear(p);
	fputs("ephemeral: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
}

void progress_error(struct progress *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	progress_vsay(p, fmt, ap);
	va_end(ap);
}

void progress_note(struct progress *p, const char *fmt, ...)
{
	va_list ap;
	if (p->quiet || !(p->tty || p->verbose))
		return;
	va_start(ap, fmt);
	progress_vsay(p, fmt, ap);
	va_end(ap);
}

static size_t progress_width(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static void progress_cut(char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	s[max] = '\0';
}

void progress_live(struct progress *p, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	if (!p->tty || p->quiet)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	progress_cut(line, progress_width() - 1);
	if (p->shown && strcmp(line, p->last) == 0)
		return;
	memcpy(p->last, line, sizeof(line));
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	p->shown = 1;
}

void progress_sample(struct progress *p, uint64_t bytes)
{
	int64_t now = now_ms();
	if (p->nsamples == PROGRESS_SAMPLES) {
		memmove(p->sample_ms, p->sample_ms + 1,
			sizeof(p->sample_ms[0]) * (PROGRESS_SAMPLES - 1));
		memmove(p->sample_bytes, p->sample_bytes + 1,
			sizeof(p->sample_bytes[0]) * (PROGRESS_SAMPLES - 1));
		p->nsamples--;
	}
	p->sample_ms[p->nsamples] = now;
	p->sample_bytes[p->nsamples] = bytes;
	p->nsamples++;
	/* Keep about the last five seconds, and always two samples to measure between. */
	int drop = 0;
	while (p->nsamples - drop > 2 && now - p->sample_ms[drop] > PROGRESS_WINDOW_MS)
		drop++;
	if (drop) {
		memmove(p->sample_ms, p->sample_ms + drop,
			sizeof(p->sample_ms[0]) * (size_t)(p->nsamples - drop));
		memmove(p->sample_bytes, p->sample_bytes + drop,
			sizeof(p->sample_bytes[0]) * (size_t)(p->nsamples - drop));
		p->nsamples -= drop;
	}
}

static double progress_rate(const struct progress *p)
{
	if (p->nsamples < 2)
		return 0;
	int last = p->nsamples - 1;
	double dt = (double)(p->sample_ms[last] - p->sample_ms[0]) / 1000.0;
	if (dt <= 0)
		return 0;
	return (double)(p->sample_bytes[last] - p->sample_bytes[0]) / dt;
}

void progress_format_bytes(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	if (n < 1024) {
		snprintf(out, len, "%llu %s", (unsigned long long)n, n == 1 ? "byte" : "bytes");
		return;
	}
	double v = (double)n;
	size_t u = 0;
	v /= 1024;
	while (v >= 1024 && u < sizeof(units) / sizeof(units[0]) - 1) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, "%.*f %s", v < 10 ? 1 : 0, v, units[u]);
}

void progress_format_duration(double seconds, char *out, size_t len)
{
	if (!(seconds >= 0) || seconds > 1e9) {
		snprintf(out, len, "?");
		return;
	}
	unsigned long s = (unsigned long)(seconds + 0.5);
	if (s < 60)
		snprintf(out, len, "%lu s", s);
	else if (s < 3600)
		snprintf(out, len, "%lu min %lu s", s / 60, s % 60);
	else
		snprintf(out, len, "%lu h %lu min", s / 3600, (s % 3600) / 60);
}

void progress_transfer(struct progress *p, const char *name, uint64_t done, uint64_t total,
		       uint64_t viewers)
{
	enum { BAR = 16 };
	char bar[BAR + 1], got[32], all[32], speed[32], left[32], shown[64];
	if (!p->tty || p->quiet)
		return;
	double frac = total ? (double)done / (double)total : 1.0;
	int filled = (int)(frac * BAR);
	for (int i = 0; i < BAR; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[BAR] = '\0';
	double rate = progress_rate(p);
	progress_format_bytes(done, got, sizeof(got));
	progress_format_bytes(total, all, sizeof(all));
	progress_format_bytes((uint64_t)rate, speed, sizeof(speed));
	if (rate > 0)
		progress_format_duration((double)(total - done) / rate, left, sizeof(left));
	else
		snprintf(left, sizeof(left), "?");
	snprintf(shown, sizeof(shown), "%s", name);
	progress_cut(shown, 28);
	progress_live(p, "%s %3d%% [%s] %s/%s %s/s, %s left, %llu %s", shown, (int)(frac * 100),
		      bar, got, all, speed, left, (unsigned long long)viewers,
		      viewers == 1 ? "viewer" : "viewers");
}

void progress_seeding(struct progress *p, const char *verb, const char *name, uint64_t viewers,
		      uint64_t blobs, uint64_t bytes)
{
	char sent[32];
	progress_format_bytes(bytes, sent, sizeof(sent));
	progress_live(p, "%s%s: %llu %s · sent %llu blobs (%s) · Ctrl-C to stop", verb, name,
		      (unsigned long long)viewers, viewers == 1 ? "viewer" : "viewers",
		      (unsigned long long)blobs, sent);
}
