/*
 * worker.c — slow work off the event loop: hashing whole files, which on a slow disk takes longer
 * than the server waits for a pong.
 *
 * One thread per job. The job runs on its thread and touches only what its owner gave it (file
 * descriptors to pread, buffers nobody else uses meanwhile); it reports progress through atomics
 * and may post partial results the same way, waking the loop with lws_cancel_service(), the one
 * libwebsockets call made for other threads. Everything else (the store, the socket, what a
 * person sees) stays on the loop: client.c calls the command's `wake` op when woken, and the
 * command reads what the job posted and calls worker_reap() to run its `done` and join it.
 */
#include "cli.h"

#include <string.h>

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->run(w);
	atomic_store(&w->finished, 1);
	lws_cancel_service(w->ctx);
	return NULL;
}

int worker_start(struct worker *w, struct lws_context *ctx, void (*run)(struct worker *),
		 void (*done)(struct worker *), void *arg)
{
	memset(w, 0, sizeof(*w));
	w->ctx = ctx;
	w->run = run;
	w->done_fn = done;
	w->arg = arg;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	w->running = 1;
	return 0;
}

void worker_post(struct worker *w)
{
	lws_cancel_service(w->ctx);
}

int worker_reap(struct worker *w)
{
	if (!w->running || !atomic_load(&w->finished))
		return 0;
	pthread_join(w->thread, NULL);
	w->running = 0;
	if (w->done_fn)
		w->done_fn(w);
	return 1;
}

void worker_stop(struct worker *w)
{
	if (!w->running)
		return;
	atomic_store(&w->stop, 1);
	pthread_join(w->thread, NULL);
	w->running = 0;
}
