/*
 * log.h — one logging facility for every Ephemeral program.
 *
 * Owns the process-wide log level and the format of log lines (time, program, level, message) on
 * standard error. log_warnx() is for a bad peer or a bad message (log and carry on); fatalx() is
 * only for what cannot be survived at start-up. Never call fatalx() because of network input.
 */
#ifndef EPH_LOG_H
#define EPH_LOG_H

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_init(const char *program, enum log_level level);
int log_level_parse(const char *name, enum log_level *out);
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
