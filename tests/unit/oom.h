/*
 * oom.h — an allocation that fails on purpose, for the unit tests (SQLite's way of testing
 * out-of-memory paths).
 *
 * Every unit test binary is linked with -Wl,--wrap for malloc, calloc, realloc, strdup,
 * zmq_msg_init_size, zmq_msg_init_data and zmq_msg_copy, so each such call made by our own code
 * (not by the libraries underneath) goes through oom.c, which counts it and can make one of them
 * fail. Two ways to choose which: a test calls oom_fail_after(n) to fail the n-th allocation from
 * now (a targeted test of one path), or the environment sets EPH_OOM_FAIL=N to fail the N-th
 * allocation of the whole run (scripts/oomtest.sh sweeps N = 1, 2, ... until a run makes fewer
 * than N allocations, which oom.c says at exit on stderr as "oom: allocation N not reached").
 */
#ifndef EPH_OOM_H
#define EPH_OOM_H

#include <stddef.h>
#include <zmq.h>

/* The n-th allocation from now fails (1: the next one); 0 turns failing off. */
void oom_fail_after(long n);
/* How many allocations failed on purpose so far. */
long oom_failures(void);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
int __wrap_zmq_msg_init_size(zmq_msg_t *msg, size_t size);
int __wrap_zmq_msg_init_data(zmq_msg_t *msg, void *data, size_t size, zmq_free_fn *ffn, void *hint);
int __wrap_zmq_msg_copy(zmq_msg_t *dest, zmq_msg_t *src);

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
int __real_zmq_msg_init_size(zmq_msg_t *msg, size_t size);
int __real_zmq_msg_init_data(zmq_msg_t *msg, void *data, size_t size, zmq_free_fn *ffn, void *hint);
int __real_zmq_msg_copy(zmq_msg_t *dest, zmq_msg_t *src);

#endif
