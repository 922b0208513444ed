/*
 * oom.c — counts our code's allocations and fails the chosen one; see oom.h.
 *
 * Only the one chosen allocation fails (later ones succeed again), as in SQLite's
 * "fail the N-th malloc" runs: the code must then carry on or refuse cleanly, never crash, leak
 * or corrupt. Single-threaded use only, like the unit tests.
 */
#include "oom.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static long oom_count;	/* allocations seen in this run */
static long oom_target; /* the allocation (by oom_count) that fails; 0: none */
static long oom_env_target;
static long oom_failed;

static void oom_report(void)
{
	if (oom_env_target > 0 && oom_count < oom_env_target)
		fprintf(stderr, "oom: allocation %ld not reached (%ld made)\n", oom_env_target,
			oom_count);
}

__attribute__((constructor)) static void oom_init(void)
{
	const char *env = getenv("EPH_OOM_FAIL");
	if (env && *env) {
		oom_env_target = strtol(env, NULL, 10);
		oom_target = oom_env_target;
		atexit(oom_report);
	}
}

void oom_fail_after(long n)
{
	oom_target = n > 0 ? oom_count + n : 0;
}

long oom_failures(void)
{
	return oom_failed;
}

/* 1 if this allocation is the one to fail. */
static int oom_fails_now(void)
{
	if (++oom_count != oom_target)
		return 0;
	oom_target = 0;
	oom_failed++;
	errno = ENOMEM;
	return 1;
}

void *__wrap_malloc(size_t size)
{
	return oom_fails_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return oom_fails_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return oom_fails_now() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
	return oom_fails_now() ? NULL : __real_strdup(s);
}

int __wrap_zmq_msg_init_size(zmq_msg_t *msg, size_t size)
{
	return oom_fails_now() ? -1 : __real_zmq_msg_init_size(msg, size);
}

/* As libzmq on ENOMEM: the message is not made and ffn is not called. */
int __wrap_zmq_msg_init_data(zmq_msg_t *msg, void *data, size_t size, zmq_free_fn *ffn, void *hint)
{
	return oom_fails_now() ? -1 : __real_zmq_msg_init_data(msg, data, size, ffn, hint);
}

int __wrap_zmq_msg_copy(zmq_msg_t *dest, zmq_msg_t *src)
{
	return oom_fails_now() ? -1 : __real_zmq_msg_copy(dest, src);
}
