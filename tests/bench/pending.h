/*
 * pending.h — the open-loop load clients' waiting line (relay-client.c, ephemeral-bench.c): the
 * intended starts of wants that are due while every requester has as many open as it may, first
 * in, first out, in a ring that doubles when full. A want waits here and the wait counts in its
 * latency, as a real client's would. A test tool's: out of memory ends the run.
 */
#ifndef BENCH_PENDING_H
#define BENCH_PENDING_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct pending {
	int64_t *v;
	size_t head, len, cap;
};

static inline void pending_push(struct pending *p, int64_t t_ref)
{
	if (p->len == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 1024;
		int64_t *n = malloc(ncap * sizeof(*n));
		if (n == NULL) {
			fputs("pending_push: out of memory\n", stderr);
			exit(1);
		}
		for (size_t i = 0; i < p->len; i++)
			n[i] = p->v[(p->head + i) % p->cap];
		free(p->v);
		p->v = n;
		p->head = 0;
		p->cap = ncap;
	}
	p->v[(p->head + p->len++) % p->cap] = t_ref;
}

/* The oldest intended start, taken off the line; 0 if none waits (nothing is written to t_ref). */
static inline int pending_pop(struct pending *p, int64_t *t_ref)
{
	if (p->len == 0)
		return 0;
	*t_ref = p->v[p->head];
	p->head = (p->head + 1) % p->cap;
	p->len--;
	return 1;
}

static inline void pending_free(struct pending *p)
{
	free(p->v);
	*p = (struct pending){0};
}

#endif
