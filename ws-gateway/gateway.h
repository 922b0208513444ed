/*
 * gateway.h — the WebSocket gateway's map: its state and every module's functions.
 *
 * A gateway terminates browser and CLI WebSockets (libwebsockets) and speaks the hub protocol
 * to the hub over one ZeroMQ DEALER socket whose descriptor joins the lws event loop. It checks
 * the SHA-256 of every blob a holder sends before the blob goes anywhere, keeps it until the hub
 * says where its waiters are, and sends it there itself: to its own connections in process, to
 * other gateways over the peer links (peer.c). One thread, one loop.
 */
#ifndef EPH_GATEWAY_H
#define EPH_GATEWAY_H

#include <ev.h>
#include <libwebsockets.h>
#include <stdint.h>
#include <sys/queue.h>
#include <zmq.h>

#include "hubproto.h"
#include "map.h"
#include "wsmsg.h"
#include "zsec.h"

/* glibc's <sys/queue.h> lacks the BSD _SAFE iterators */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                                 \
	for ((var) = TAILQ_FIRST(head); (var) && ((tvar) = TAILQ_NEXT(var, field), 1);             \
	     (var) = (tvar))
#endif

#define GW_TX_CHUNK	     (256 * 1024) /* one lws_write at most: fair to other connections */
#define GW_RX_CHUNK	     (64 * 1024) /* one recv() at most (lws rx_buffer_size); docs/BENCHMARKS.md */
#define GW_ADDR_LEN	     64
#define GW_PROTOCOL	     "ephemeral.v1"	   /* the clients' subprotocol: protocols[0] */
#define GW_HUB_LINK_PROTOCOL "ephemeral-hub-link"  /* lws's name for the hub socket's descriptor */
#define GW_PEER_PROTOCOL     "ephemeral-peer-link" /* lws's name for the peer sockets' descriptors */

/* One frame for clients (outq.c); shared by every connection it goes to (refcounted). */
struct outbuf {
	int refs;
	int binary; /* binary: the frame (hash, blob) in msg; text: in text */
	int shared; /* ZeroMQ may still read msg's bytes (sent to a peer): never borrow them */
	zmq_msg_t msg;
	char *text;
	size_t len; /* of the whole frame */
};

struct outmsg {
	STAILQ_ENTRY(outmsg) entry;
	struct outbuf *buf;
};

/* A connection's outgoing queue, and its thresholds in multiples of max_blob. */
#define OUTQ_PAUSE_BYTES(max_blob)  (max_blob)	     /* past it: stop reading the client */
#define OUTQ_RESUME_BYTES(max_blob) ((max_blob) / 2) /* back to it: read again, re-want */
#define OUTQ_FULL_BYTES(max_blob)   (2 * (max_blob)) /* a blob past it is deferred */
#define OUTQ_BORROW		    1 /* write blob chunks from the frame's buffer (0: copy each; benchmarks) */
struct outq {
	STAILQ_HEAD(, outmsg) head;
	size_t off;   /* bytes of the head frame already written */
	size_t bytes; /* queued, all frames */
};

struct interest;
struct peer_named;

/* A `file` announcement of one connection (filecheck.c): its manifest and the file hash. */
struct file_claim {
	uint8_t key[8 + HASH_LEN]; /* connection id, manifest */
	uint8_t sha256[HASH_LEN];  /* as announced; once listed, as the manifest declares */
	int listed;		   /* the manifest said so and the hub was told */
	LIST_ENTRY(file_claim) entry;
};

/* framewatch.c: where the connection's byte stream is, frame by frame. */
struct framewatch_utf8 {
	uint8_t need, lo, hi; /* continuation bytes still due, and the range of the next */
};

struct framewatch {
	int fd; /* -1: not watched */
	uint8_t hdr[14];
	uint8_t have;	     /* header bytes collected */
	uint8_t binary;	     /* the data message in progress is binary */
	uint8_t close_check; /* the current frame is a close whose reason is being checked */
	uint8_t close_pos;   /* payload bytes of it seen */
	uint8_t mask[4];     /* its masking key */
	struct framewatch_utf8 utf8;
	uint64_t payload_left; /* of the current frame */
	uint64_t message;      /* bytes the data message in progress declared so far */
};

/*
 * A message past its limit by less than this is read to the end of the frame that passed it
 * before the 1009 goes (so that the client reads the close instead of a reset); a frame whose
 * header takes its message further is refused at once.
 */
#define SESSION_DRAIN_MAX(limit) (4 * (uint64_t)(limit) + 65536)
#define SESSION_TOO_LARGE	 "message too large" /* the reason of a 1009 */

struct session {
	struct gateway *gw;
	struct lws *wsi;
	uint64_t id;
	uint64_t synced_gen; /* the gateway's resync_gen when this was last re-announced */
	/* receiving */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	int rx_binary;
	struct hash_stream *rx_sha; /* a binary message is hashed as it arrives */
	size_t rx_hashed;	    /* bytes of rx up to which it is (the first HASH_LEN: never) */
	int rx_sha_failed;
	int discarding;	  /* the message in progress is past its limit: read, drop, close */
	size_t discarded; /* bytes of it thrown away so far */
	struct framewatch watch;
	int failing; /* a close code to send at once (RFC 6455 violation), or 0 */
	const char *fail_reason;
	/* sending */
	struct outq out;
	/* state */
	LIST_HEAD(, interest) interests;
	LIST_HEAD(, file_claim) claims; /* filecheck.c */
	uint32_t nclaims;
	uint32_t nholds;
	uint32_t nwants; /* open wants (deferred ones included) */
	uint32_t ndeferred;
	int lies;
	int closing;	  /* a close code to send once the queue is out, or 0 */
	int64_t close_at; /* not before this: see session_close_soon() */
	char close_reason[64];
	ev_timer close_timer;
	/* limits.c */
	char addr[GW_ADDR_LEN];
	double msg_tokens, byte_tokens;
	int64_t bucket_ms;
	double violations; /* rate_limited and bad_request answers; one forgiven a second */
	int paused_bytes, paused_out, rx_paused;
	ev_timer resume_timer;
	/* keepalive.c */
	TAILQ_ENTRY(session) ka_entry;
	int64_t ka_last, ka_pinged; /* ms: its last frame, our ping */
	uint8_t ka_list;	    /* enum ka_list: which list ka_entry is on */
	uint8_t ka_ping;	    /* enum ka_due: what to do when it is next writable */
};

enum ka_list { KA_NONE, KA_QUIET, KA_PINGED };
enum ka_due { KA_DUE_NONE, KA_DUE_PING, KA_DUE_CLOSE };

/* What one connection does with one hash: holds it, wants it, was asked for it. */
struct interest {
	uint8_t key[HUBPROTO_CONN_KEY_LEN]; /* connection id, hash */
	struct session *s;
	struct hashsub *hs;
	unsigned holds : 1, wants : 1, requested : 1, in_throttle : 1;
	unsigned deferred : 1; /* delivered while the queue was full: to be wanted again */
	unsigned
	    verifying : 1; /* asked by the gateway itself, to read the manifest (filecheck.c) */
	struct peer_named *named; /* while requested: the waiters the hub's REQUEST named */
	int64_t want_deadline;
	int64_t last_count; /* last viewers value sent; -1: none yet */
	int64_t pending_count;
	int64_t last_sent_ms;
	LIST_ENTRY(interest) sentry;  /* the session's */
	LIST_ENTRY(interest) hentry;  /* the hash's */
	TAILQ_ENTRY(interest) wentry; /* open wants, oldest first */
	LIST_ENTRY(interest) tentry;  /* counts held back by the 4-a-second limit */
};

struct hashsub {
	uint8_t hash[HASH_LEN];
	LIST_HEAD(, interest) interests;
	uint32_t ninterests;
};

struct gateway {
	struct lws_context *ctx;
	struct ev_loop *loop;
	struct lws_vhost *vhost;
	char name[HUBPROTO_MAX_NAME + 1];
	uint64_t instance;
	size_t max_blob;
	int max_lies;
	/* limits (limits.c) */
	int max_holds, max_wants, max_violations, max_conns_per_addr, max_conns;
	long long msg_rate, msg_burst, byte_rate, byte_burst;
	char **trusted, **origins;
	size_t ntrusted, norigins;
	struct map addrs; /* client address -> connections */
	int want_timeout_ms;
	int heartbeat_ms, expiry_ms;
	int idle_ping_s, idle_close_s; /* keepalive.c */
	TAILQ_HEAD(, session) ka_quiet, ka_pinged;
	ev_timer keepalive_timer;
	lws_sorted_usec_list_t lws_tick; /* timer.c */
	/* hub link */
	void *zctx;
	void *zsock;
	struct lws *zwsi;
	char endpoint[256];
	uint64_t hub_instance;	  /* from WELCOME/PING; 0 before the first */
	uint64_t synced_instance; /* the hub instance our state was last sent to */
	int hub_queue;		  /* ZMQ_SNDHWM of the hub socket */
	uint64_t hub_unsent;	  /* messages the hub socket refused this outage (logged once) */
	uint64_t state_unsent;	  /* HAVE, DROP, CONN_OPEN/CLOSE or FILE refused by the same hub */
	int64_t state_resync_ms;  /* when the last re-announcement for them began */
	int64_t state_resync_wait_ms; /* the wait before the next (backs off) */
	uint64_t resync_gen;	      /* the re-announcement in progress; sessions carry the last */
	int resyncing;		      /* it stopped at the high-water mark: the tick resumes it */
	int resync_hello;	      /* its HELLO has gone out */
	int hub_lost; /* the hub went silent and has not answered since (logged once) */
	size_t resync_conns, resync_holds, resync_wants;
	int64_t hub_last_seen;
	int64_t beat_sent_ms; /* the last HEARTBEAT */
	int kick_scheduled;
	ev_timer beat_timer, kick_timer, tick_timer;
	ev_timer interest_timer; /* interest.c's */
	/* WANT entries the hub socket refused, to be sent again (hub_link.c) */
	uint8_t *wants_unsent;
	size_t wants_unsent_len, wants_unsent_cap;
	/* peer links (peer.c) */
	char peer_bind[HUBPROTO_MAX_ENDPOINT + 1];
	char peer_endpoint[HUBPROTO_MAX_ENDPOINT + 1]; /* announced in HELLO */
	void *peer_sock;			       /* ROUTER: blobs from other gateways */
	void *peer_monitor;    /* PAIR: peer_sock's lost connections and refused handshakes */
	uint32_t peer_refused; /* refused handshakes whose disconnection is yet to be read */
	struct lws *peer_wsi;
	int peer_curve;	       /* CurveZMQ on every peer socket (the gateway has keys to the hub) */
	struct zsec_keys keys; /* gateway.secret_key: server of peer_sock, client of the links */
	struct zsec_zap zap;   /* lets in the keys the hub names in PEER_KEYS */
	struct lws *zap_wsi;   /* its REP socket in the lws loop */
	TAILQ_HEAD(, peer_link) peer_links; /* DEALERs to other gateways, by endpoint */
	TAILQ_HEAD(, kept_blob) kept;	    /* verified blobs, until settled (peer.c) */
	uint64_t next_token;
	uint8_t *wants_out; /* WANT entries of this turn of the loop (hub_link_want) */
	size_t wants_out_len, wants_out_cap;
	uint8_t *blobs_out; /* BLOB entries of this turn of the loop (peer_keep, peer.c) */
	size_t blobs_out_len, blobs_out_cap;
	uint8_t *delivered; /* DELIVERED entries of this turn of the loop (peer_flush_delivered) */
	size_t delivered_len, delivered_cap;
	uint64_t next_link; /* names each link's monitor (inproc://peer-link-N) */
	int peer_retry_scheduled;
	ev_timer peer_timer;
	/* connections and interests */
	uint64_t next_id;
	uint32_t nsessions;
	struct map sessions;		 /* id -> session */
	struct map interests;		 /* id + hash -> interest */
	struct map hashsubs;		 /* hash -> hashsub */
	struct map file_claims;		 /* id + manifest -> file_claim (filecheck.c) */
	TAILQ_HEAD(, interest) wants;	 /* open, oldest first */
	LIST_HEAD(, interest) throttled; /* counts held back */
	int stopping;
	/* Since start, in HEARTBEAT's order (enum hubproto_gw_counter): handshakes refused by
	 * cause (each refusal's log line counts them), connections closed silent (keepalive.c). */
	uint64_t counters[HUB_GWC_COUNT];
	struct wsmsg scratch_msg; /* large: parsed messages land here, not on the stack */
	uint8_t *tx_scratch;	  /* LWS_PRE + GW_TX_CHUNK */
};

/* session.c — the ephemeral.v1 protocol on one WebSocket */
int session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len);
struct session *session_find(struct gateway *gw, uint64_t id);
void session_send_text(struct session *s, char *text);
void session_send_error(struct session *s, const char *code, const uint8_t *hash,
			const char *message);
/* Queues a blob for s if it still wants it: 1 queued; 2 deferred (its queue is full: the want
 * goes to the hub again once it drains); 0 not wanted. */
int session_deliver(struct session *s, const uint8_t *hash, struct outbuf *b);
/* The hub asks connection id for hash, naming waiters for it (named, taken; NULL: none): its
 * client is asked, or the hub hears FAIL. */
void session_request(struct gateway *gw, uint64_t id, const uint8_t *hash,
		     struct peer_named *named);
void session_close_soon(struct session *s, int code, const char *reason);

void session_update_flow(struct session *s);
/* Closes at once with code: the client broke RFC 6455 (framewatch.c). */
void session_fail(struct session *s, int code, const char *reason);

/* framewatch.c — frame header checks lws 4.1 leaves out, on the bytes as lws reads them */
int framewatch_init(void);
void framewatch_free(void);
void framewatch_start(struct session *s);
void framewatch_stop(struct session *s);

/* outq.c — a connection's outgoing frames */
struct outbuf *outbuf_text(char *text); /* takes text */
struct outbuf *outbuf_blob(zmq_msg_t *frame, int shared);
void outbuf_release(struct outbuf *b);
void outq_init(struct outq *q);
int outq_push(struct outq *q, struct outbuf *b); /* adds a reference; 0 or -1 */
int outq_empty(const struct outq *q);
size_t outq_pending(const struct outq *q); /* bytes not yet written, all frames */
int outq_several(const struct outq *q);	   /* more than one frame queued */
int outq_has_room(const struct outq *q, size_t frame_len, size_t max_blob);
int outq_should_pause(const struct outq *q, size_t max_blob);
int outq_may_resume(const struct outq *q, size_t max_blob);
/* Writes one chunk of the head frame (at most GW_TX_CHUNK bytes): 0, or -1 on error. */
int outq_write(struct outq *q, struct lws *wsi, uint8_t *scratch);
void outq_clear(struct outq *q);

/* zadopt.c — ZeroMQ sockets in the lws loop (a duplicate of ZMQ_FD adopted as a raw file) */
struct lws *zadopt(struct gateway *gw, void *sock, const char *protocol, const char *what);
int zadopt_readable(void *sock); /* 1 while a message waits: drain until 0 (edge-triggered) */

/* peer.c — verified blobs kept for the hub's ROUTEs; the links between gateways */
/* Every peer socket is made here: with CurveZMQ, the ROUTER (server_z85 NULL) a server that lets
 * in the keys of PEER_KEYS, a DEALER a client that insists on server_z85 at the other end. */
void *peer_socket(struct gateway *gw, int type, const char *server_z85);
int peer_open(struct gateway *gw);
void peer_close(struct gateway *gw);
/* Keeps a verified frame (hash, blob; malloc'd, taken) from connection holder, announces it to
 * the hub in BLOB, and gives it at once to the waiters the hub's REQUEST named (named, taken;
 * NULL: none); -1 if it could not be kept (out of memory: the frame is freed, named too). */
int peer_keep(struct gateway *gw, uint64_t holder, uint8_t *frame, size_t len,
	      struct peer_named *named);
void peer_route(struct gateway *gw, struct hubmsg *m);
/* The hub's REQUEST, ROUTE or COUNT said it has sent every route of the blobs up to token upto
 * (its id): those blobs go once their routes are done. */
void peer_settle(struct gateway *gw, uint64_t upto);
/* The hub's REQUEST m: each holder's client is asked for its hash (session_request) with the
 * waiters named for it. */
void peer_request(struct gateway *gw, struct hubmsg *m);
void peer_named_free(struct peer_named *pn);
/* PEER_KEYS: the only client keys the peer endpoint lets in from now on (replace), or more of
 * them (CurveZMQ). */
void peer_allow(struct gateway *gw, const uint8_t *keys, size_t n, int replace);
void peer_forget_kept(struct gateway *gw);
void peer_tick(struct gateway *gw);
/* Sends the hub the DELIVERED entries gathered in this turn of the loop, in one message. Every
 * function that may finish a blob calls it before it returns to the loop, and main.c's
 * end-of-turn watcher calls it too. */
void peer_flush_delivered(struct gateway *gw);
/* Sends this turn's BLOB; hub_link_flush calls it before any other message to the hub. */
void peer_flush_blobs(struct gateway *gw);
int peer_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len);

/* filecheck.c — `file` announcements, listed only once the gateway read the manifest itself */
void filecheck_init(struct gateway *gw);
void filecheck_free(struct gateway *gw);
/* A `file` from s: refused, or the manifest asked of s (unless already read or on its way). */
void filecheck_announce(struct gateway *gw, struct session *s, const uint8_t manifest[HASH_LEN],
			const uint8_t sha256[HASH_LEN]);
/* The answer to a verifying interest: the verified blob, or NULL (declined or wrong bytes). */
void filecheck_answered(struct gateway *gw, struct session *s, struct interest *in,
			const uint8_t *blob, size_t len);
/* s no longer holds the manifest: its claim goes. */
void filecheck_forget(struct gateway *gw, struct session *s, const uint8_t manifest[HASH_LEN]);
void filecheck_session_closed(struct gateway *gw, struct session *s);
/* 1 with out filled when fc is listed and its manifest still held: a FILE entry for a new hub. */
int filecheck_entry(struct gateway *gw, struct session *s, const struct file_claim *fc,
		    uint8_t out[HUBPROTO_FILE_ENTRY]);

/* rxbuf.c — lws's per-connection receive buffers, resident only where lws writes */
int rxbuf_init(size_t conns); /* before the lws context; -1: malloc serves them */
void rxbuf_free(void);	      /* after it is destroyed */

/* timer.c — the gateway's timers, on libev (see why there) */
typedef void (*timer_cb)(struct ev_loop *loop, ev_timer *t, int revents);
void timer_arm(struct gateway *gw, ev_timer *t, timer_cb cb, int64_t ms);
void timer_stop(struct gateway *gw, ev_timer *t);
/* Keeps lws's own timeouts on time under load (see why there). */
void timer_lws_tick_start(struct gateway *gw);
void timer_lws_tick_stop(struct gateway *gw);

/* keepalive.c — pings quiet connections, closes silent ones */
void keepalive_start(struct gateway *gw);
void keepalive_open(struct gateway *gw, struct session *s);
void keepalive_seen(struct gateway *gw, struct session *s);
void keepalive_close(struct gateway *gw, struct session *s);
/* What keepalive wants of the connection's writable callback (once: the answer resets it). */
enum ka_due keepalive_due(struct session *s);

/* limits.c — admission (address, Origin) and per-connection budgets */
void limits_init(struct gateway *gw, const char *trusted, const char *origins);
void limits_free(struct gateway *gw);
void limits_client_addr(struct gateway *gw, struct lws *wsi, char out[GW_ADDR_LEN]);
/* 0: the handshake may go on; else the HTTP status to refuse it with, and *why a one-line reason.
 */
#define LIMITS_HTTP_TOO_MANY 429 /* RFC 6585; lws has no name for it */
#define LIMITS_FULL	     "this server is full: try again in a while" /* with a 503 */
int limits_admit(struct gateway *gw, struct lws *wsi, const char **why);
void limits_session_open(struct gateway *gw, struct session *s);
void limits_session_close(struct gateway *gw, struct session *s);
/*
 * Charges a text message to the connection's budget: 1 token, plus 1 for every
 * LIMITS_HASHES_PER_TOKEN hashes it lists. 1: go ahead; 0: answer rate_limited; -1: also
 * closing (too many violations).
 */
#define LIMITS_HASHES_PER_TOKEN 8
int limits_take_message(struct gateway *gw, struct session *s, size_t nhashes);
/* A limit refused something (rate_limited): counts toward gateway.max_violations. */
int limits_violation(struct gateway *gw, struct session *s);
/* A malformed message or a binary frame that answers nothing: counts the same way. */
void limits_bad_message(struct gateway *gw, struct session *s);
void limits_take_bytes(struct gateway *gw, struct session *s, size_t n);
/* A ping or pong from the client: a message token, or past the budget a violation. */
void limits_take_control(struct gateway *gw, struct session *s);

/* interest.c — per (connection, hash) state and viewer counts */
void interest_init(struct gateway *gw);
struct interest *interest_get(struct gateway *gw, struct session *s, const uint8_t *hash,
			      int create);
void interest_settle(struct gateway *gw, struct interest *in);
void interest_want_open(struct gateway *gw, struct interest *in); /* and tells the hub */
void interest_want_close(struct gateway *gw, struct interest *in);
/* Sends the hub every open want again (not the deferred ones; their deadlines kept): a blob
 * routed to them may have been lost with a peer link. Returns how many went. */
size_t interest_want_resend(struct gateway *gw);
void interest_count(struct gateway *gw, const uint8_t *hash, uint32_t viewers);
void interest_session_closed(struct gateway *gw, struct session *s);
/* The hub found no holder for connection id's want of hash: its client hears not_found. */
void interest_not_found(struct gateway *gw, uint64_t id, const uint8_t *hash);
void interest_start_timers(struct gateway *gw);

/* hub_link.c — the hub protocol from the gateway's side */
int hub_link_open(struct gateway *gw);
void hub_link_close(struct gateway *gw);
void hub_link_hello(struct gateway *gw);
/* Sends o to the hub, after the WANT entries queued in this turn (the order of messages holds). */
int hub_link_send(struct gateway *gw, const struct hubproto_out *o);
/* Queues a WANT entry: the wants of one turn of the loop go in one WANT (hub_link_flush). */
void hub_link_want(struct gateway *gw, uint64_t conn, const uint8_t hash[HASH_LEN]);
/* Sends the queued WANT entries; at the end of every turn of the loop (main.c's ev_prepare). */
void hub_link_flush(struct gateway *gw);
int hub_link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		      size_t len);
void hub_link_start_timers(struct gateway *gw);
/* A HEARTBEAT now if hub.heartbeat_ms passed since the last: called as connections are served,
 * so that a turn of the loop long with work (thousands of handshakes at once on a loaded
 * machine) does not look like silence to the hub. */
void hub_link_beat_if_due(struct gateway *gw);

#endif
