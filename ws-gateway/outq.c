/*
 * outq.c — one connection's outgoing queue: the frames waiting for its socket, and the
 * thresholds that keep a slow reader bounded.
 *
 * Owns outbuf (one frame, shared by every connection it goes to, refcounted) and outmsg (its
 * place in one queue). session.c asks the questions (outq_has_room, outq_should_pause,
 * outq_may_resume) and writes only from LWS_CALLBACK_SERVER_WRITEABLE: outq_write() writes one
 * chunk of at most GW_TX_CHUNK bytes, and session.c stops a callback's writes at that many, so
 * one large blob never holds up other connections.
 *
 * A blob frame is written straight from its buffer when it may be: lws writes its frame header
 * into the LWS_PRE bytes before what it sends, and past the frame's first LWS_PRE bytes those
 * are bytes of the same frame already sent. They are borrowed for the lws_write() call and put
 * back at once (nothing else runs in between), so a buffer shared by many connections at
 * different offsets stays intact. A frame's first chunk, text frames, and buffers that ZeroMQ
 * may still be reading from its I/O thread (outbuf.shared) are copied to the scratch buffer.
 */
#include "gateway.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

struct outbuf *outbuf_text(char *text)
{
	if (text == NULL)
		return NULL;
	struct outbuf *b = calloc(1, sizeof(*b));
	if (b == NULL) {
		free(text);
		return NULL;
	}
	b->refs = 1;
	b->text = text;
	b->len = strlen(text);
	return b;
}

struct outbuf *outbuf_blob(zmq_msg_t *frame, int shared)
{
	struct outbuf *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->refs = 1;
	b->binary = 1;
	b->shared = shared;
	zmq_msg_init(&b->msg);
	zmq_msg_copy(&b->msg, frame); /* a reference, not a copy of the bytes */
	b->len = zmq_msg_size(&b->msg);
	return b;
}

void outbuf_release(struct outbuf *b)
{
	if (b == NULL || --b->refs > 0)
		return;
	if (b->binary)
		zmq_msg_close(&b->msg);
	free(b->text);
	free(b);
}

void outq_init(struct outq *q)
{
	STAILQ_INIT(&q->head);
	q->off = 0;
	q->bytes = 0;
}

int outq_push(struct outq *q, struct outbuf *b)
{
	struct outmsg *m = malloc(sizeof(*m));
	if (m == NULL)
		return -1;
	b->refs++;
	m->buf = b;
	STAILQ_INSERT_TAIL(&q->head, m, entry);
	q->bytes += b->len;
	return 0;
}

int outq_empty(const struct outq *q)
{
	return STAILQ_EMPTY(&q->head);
}

int outq_several(const struct outq *q)
{
	return !STAILQ_EMPTY(&q->head) && STAILQ_NEXT(STAILQ_FIRST(&q->head), entry) != NULL;
}

size_t outq_pending(const struct outq *q)
{
	return q->bytes - q->off;
}

int outq_has_room(const struct outq *q, size_t frame_len, size_t max_blob)
{
	return outq_empty(q) || q->bytes + frame_len <= OUTQ_FULL_BYTES(max_blob);
}

int outq_should_pause(const struct outq *q, size_t max_blob)
{
	return q->bytes > OUTQ_PAUSE_BYTES(max_blob);
}

int outq_may_resume(const struct outq *q, size_t max_blob)
{
	return q->bytes <= OUTQ_RESUME_BYTES(max_blob);
}

static const uint8_t *outbuf_data(const struct outbuf *b)
{
	return b->binary ? zmq_msg_data((zmq_msg_t *)&b->msg) : (const uint8_t *)b->text;
}

int outq_write(struct outq *q, struct lws *wsi, uint8_t *scratch)
{
	struct outmsg *m = STAILQ_FIRST(&q->head);
	if (m == NULL)
		return 0;
	struct outbuf *b = m->buf;
	size_t n = b->len - q->off;
	if (n > GW_TX_CHUNK)
		n = GW_TX_CHUNK;
	int flags =
	    q->off == 0 ? (b->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) : LWS_WRITE_CONTINUATION;
	if (q->off + n < b->len)
		flags |= LWS_WRITE_NO_FIN;
	uint8_t *p = (uint8_t *)outbuf_data(b) + q->off;
	int written;
	if (OUTQ_BORROW && b->binary && !b->shared && q->off >= LWS_PRE) {
		uint8_t saved[LWS_PRE];
		memcpy(saved, p - LWS_PRE, LWS_PRE);
		written = lws_write(wsi, p, n, (enum lws_write_protocol)flags);
		memcpy(p - LWS_PRE, saved, LWS_PRE);
	} else {
		memcpy(scratch + LWS_PRE, p, n);
		written = lws_write(wsi, scratch + LWS_PRE, n, (enum lws_write_protocol)flags);
	}
	if (written < (int)n)
		return -1;
	q->off += n;
	if (q->off == b->len) {
		STAILQ_REMOVE_HEAD(&q->head, entry);
		q->bytes -= b->len;
		q->off = 0;
		outbuf_release(b);
		free(m);
	}
	return 0;
}

void outq_clear(struct outq *q)
{
	struct outmsg *m;
	while ((m = STAILQ_FIRST(&q->head))) {
		STAILQ_REMOVE_HEAD(&q->head, entry);
		outbuf_release(m->buf);
		free(m);
	}
	q->off = 0;
	q->bytes = 0;
}
