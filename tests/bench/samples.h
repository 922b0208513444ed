/*
 * samples.h — how the load clients (relay-client.c, ephemeral-bench.c) read their latency
 * samples: percentiles of sorted samples (nearest rank), and the noise probe, a thread that
 * sleeps 1 ms at a time and records how late it wakes up between win0 and win1. On a shared
 * machine the neighbours' load delays our processes too; a latency tail that coincides with the
 * probe's tail is the machine's, not Ephemeral's.
 */
#ifndef BENCH_SAMPLES_H
#define BENCH_SAMPLES_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

static inline int samples_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static inline void samples_sort(int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), samples_cmp);
}

/* The p-th percentile (nearest rank) of n sorted samples in ns, in µs; 0 without samples. */
static inline double samples_pct(const int64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	double rank = p / 100.0 * (double)n;
	size_t k = (size_t)rank;
	if ((double)k < rank)
		k++; /* rounded up */
	if (k == 0)
		k = 1;
	return (double)v[(k < n ? k : n) - 1] / 1000.0;
}

struct noise_probe {
	pthread_t thread;
	volatile int stop;
	volatile int64_t win0,
	    win1;	    /* record oversleeps between these (ns, monotonic; 0: not yet) */
	int64_t *late, *at; /* each sample: ns late, ns into the window */
	size_t n, cap;
	int64_t late_total; /* ns spent oversleeping more than 1 ms */
};

static inline int64_t samples_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void *noise_probe_main(void *arg)
{
	struct noise_probe *p = arg;
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	while (!p->stop) {
		struct timespec ts = {0, 1000000};
		int64_t t0 = samples_now_ns();
		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		int64_t late = samples_now_ns() - t0 - 1000000;
		if (p->win0 == 0 || t0 < p->win0 || (p->win1 && t0 >= p->win1))
			continue;
		if (p->n == p->cap) {
			size_t ncap = p->cap ? p->cap * 2 : 16384;
			int64_t *nl = realloc(p->late, ncap * sizeof(*nl));
			if (nl)
				p->late = nl;
			int64_t *na = nl ? realloc(p->at, ncap * sizeof(*na)) : NULL;
			if (na == NULL)
				continue;
			p->at = na;
			p->cap = ncap;
		}
		p->at[p->n] = t0 - p->win0;
		p->late[p->n++] = late;
		if (late > 1000000)
			p->late_total += late - 1000000;
	}
	return NULL;
}

/* Starts the probe thread: 0, or -1 (no probe). */
static inline int noise_probe_start(struct noise_probe *p)
{
	return pthread_create(&p->thread, NULL, noise_probe_main, p) == 0 ? 0 : -1;
}

static inline void noise_probe_stop(struct noise_probe *p)
{
	p->stop = 1;
	pthread_join(p->thread, NULL);
}

static inline void noise_probe_free(struct noise_probe *p)
{
	free(p->late);
	free(p->at);
}

#endif
