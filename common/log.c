/*
 * log.c — writes log lines to standard error with a timestamp and the program's name.
 * Lines below the configured level are dropped before any formatting work is done.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
	const char *program;
	enum log_level level;
} log_state = {"ephemeral", LOG_LEVEL_INFO};

void log_init(const char *program, enum log_level level)
{
	log_state.program = program;
	log_state.level = level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const tags[] = {"error", "warn", "info", "debug"};
	char stamp[32];
	struct timespec ts;
	struct tm tm;

	if (level > log_state.level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03ldZ %s %s: ", stamp, ts.tv_nsec / 1000000L, log_state.program,
		tags[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

#define LOG_FN(name, level)                                                                        \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vwrite(level, fmt, ap);                                                        \
		va_end(ap);                                                                        \
	}

LOG_FN(log_debug, LOG_LEVEL_DEBUG)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_warnx, LOG_LEVEL_WARN)
LOG_FN(log_errorx, LOG_LEVEL_ERROR)

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
