/*
 * hubproto.h — the hub protocol: every message between hub, gateways and frontends over ZeroMQ.
 *
 * docs/HUB-PROTOCOL.md explains the conversation (who sends what, liveness, hub restarts, the
 * path blob bytes take); this header is its code. Every message is a multipart ZeroMQ message:
 *
 *   frame 1: header, always HUBPROTO_HEADER_LEN bytes:
 *            'E' 'P' version command | id (u64 LE) | hash (32 raw bytes) | value (u32 LE)
 *   frame 2: list  — only for commands that carry one (fixed-size elements, see the table)
 *   frame 3: data  — only for commands that carry bytes (blob, name, JSON)
 *
 * hubproto.c is the one place that builds and parses these frames; nothing else touches their
 * layout. A malformed message is reported to the caller, never fatal.
 */
#ifndef EPH_HUBPROTO_H
#define EPH_HUBPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "util.h"
#include "zsec.h"

/* 2: blob bytes go gateway to gateway, never through the hub; 3: one DELIVERED lists several
 * transfers, one REQUEST several holders, one WANT several wants; 4: HEARTBEAT carries the
 * gateway's counters; 5: one BLOB lists the blobs of a turn, one ROUTE the routes of a turn;
 * 6: REQUEST names the fetch's waiters (as routes), BLOB the holder connection it answers;
 * 7: BLOB says what the named waiters were given, REQUEST, ROUTE and COUNT say which BLOBs are
 * settled (no let-go ROUTE, no DELIVERED for a blob every waiter of which was named) */
#define HUBPROTO_VERSION      7
#define HUBPROTO_HEADER_LEN   48
#define HUBPROTO_MAX_PEER     255
#define HUBPROTO_MAX_NAME     64  /* a gateway's name in HELLO */
#define HUBPROTO_MAX_ENDPOINT 255 /* a gateway's peer endpoint in HELLO, ROUTE, UNDELIVERED */
#define HUBPROTO_COUNT_ENTRY  (HASH_LEN + 4) /* COUNT list element: hash, viewers (u32 LE) */
/* Messages read from one socket in one turn of a loop: the rest wait, so timers and other
 * sockets are served under a flood. */
#define HUBPROTO_DRAIN_BUDGET 4096
/* A (connection, hash) map key, as the hub's holdings and the gateway's interests use it: the
 * 8-byte connection id or key, then the hash (HUBPROTO_CONN_KEY_HASH). */
#define HUBPROTO_CONN_KEY_LEN	    (8 + HASH_LEN)
#define HUBPROTO_CONN_KEY_HASH(key) ((key) + 8)
/* ROUTE's data: a peer endpoint, then (CurveZMQ) NUL and that gateway's public key in Z85. */
#define HUBPROTO_MAX_PEER_ADDRESS (HUBPROTO_MAX_ENDPOINT + 1 + ZSEC_Z85_LEN)
#define HUBPROTO_FILE_ENTRY	  (2 * HASH_LEN) /* FILE list element: manifest, file's SHA-256 */
#define HUBPROTO_DELIVERED_ENTRY                                                                   \
	12 /* DELIVERED list element: token (u64 LE), deliveries (u32 LE) */
/* BLOB list element: token (u64 LE), hash, size (u32 LE), the holder connection it answers
 * (u64 LE), deliveries to the waiters the REQUEST named (u32 LE; HUBPROTO_BLOB_MORE set: more
 * are reported in a DELIVERED) */
#define HUBPROTO_BLOB_ENTRY (8 + HASH_LEN + 4 + 8 + 4)
#define HUBPROTO_BLOB_MORE  0x80000000u
/* ROUTE list element: token (u64 LE), hash, requester connection (u64 LE), peer (u16 LE: an
 * index into ROUTE's table of peer addresses, 1 the first; 0: yours).
 * REQUEST's are the same with the holder connection in the token's place (0: nobody named). */
#define HUBPROTO_ROUTE_ENTRY (8 + HASH_LEN + 8 + 2)
/* The waiters one REQUEST entry names at most (the fetch's others come by ROUTE). */
#define HUBPROTO_REQUEST_WAITERS 64
#define HUBPROTO_MAX_ROUTE_DATA	 (1024 * 1024) /* ROUTE's table of peer addresses, at most */
#define HUBPROTO_MAX_MANIFESTS	 64 /* FILES_REPLY lists at most this many manifests of one file */

/* A FILES_REPLY list (n entries of HUBPROTO_COUNT_ENTRY: manifest, viewers) as the public
 * "manifests" array ([{"hash", "viewers"}], PROTOCOL.md): operator lookup and the HTTP API. */
struct json_t;
struct json_t *hubproto_manifests_json(const uint8_t *list, size_t n);

enum hubproto_cmd {
	/* gateway -> hub: membership and liveness */
	HUB_HELLO = 1,	   /* id: gateway instance, value: connections,
			    * data: gateway name, NUL, its peer endpoint */
	HUB_HEARTBEAT = 2, /* id: gateway instance, value: connections, list: the gateway's
			    * counters since it started (u64 LE each, enum hubproto_gw_counter) */
	/* gateway -> hub: what the gateway's connections hold and want */
	HUB_CONN_OPEN = 3,  /* id: connection */
	HUB_CONN_CLOSE = 4, /* id: connection; forgets its holdings and wants */
	HUB_HAVE = 5,	    /* id: connection, list: hashes (32 bytes each) */
	HUB_DROP = 6,	    /* id: connection, list: hashes */
	HUB_WANT = 7,	    /* list: (connection u64 LE, wanted hash) entries,
			     * HUBPROTO_CONN_KEY_LEN bytes each (one turn of the gateway's loop) */
	/* gateway -> hub: a holder's answer to HUB_REQUEST, and what became of the blob */
	HUB_BLOB = 8,	      /* list: (token, hash, size, holder connection, named deliveries)
			       * entries, HUBPROTO_BLOB_ENTRY bytes each: blobs verified in one turn
			       * of the gateway's loop, which stay behind until settled */
	HUB_FAIL = 9,	      /* id: holder connection, hash, value: enum hubproto_fail */
	HUB_DELIVERED = 10,   /* list: (token, deliveries made) entries, HUBPROTO_DELIVERED_ENTRY
			       * bytes each: settled blobs that had routes, or whose BLOB said
			       * HUBPROTO_BLOB_MORE (one per loop turn) */
	HUB_UNDELIVERED = 11, /* hash, list: requester connections that did not get it,
			       * data: the peer endpoint of their gateway (empty: the sender's) */
	/* gateway -> hub: files findable by their plain SHA-256 */
	HUB_FILE = 12, /* id: connection, list: (manifest, file SHA-256) pairs, HUBPROTO_FILE_ENTRY
			* bytes each: the gateway read each manifest, which the connection holds */

	/* hub -> gateway */
	HUB_WELCOME = 32,   /* id: hub instance; answers HELLO */
	HUB_PING = 33,	    /* id: hub instance; heartbeat */
	HUB_RESET = 34,	    /* id: hub instance; "I do not know you": send HELLO and your state */
	HUB_REQUEST = 35,   /* send me these blobs, and give each at once to the waiters named:
			     * id: settled (as ROUTE's),
			     * list: (holder connection, hash, requester, peer) entries as ROUTE's,
			     * HUBPROTO_ROUTE_ENTRY bytes each, every waiter of one holder and hash
			     * together (requester 0: none named), data: peer addresses as ROUTE's */
	HUB_NOT_FOUND = 37, /* id: requester connection, hash */
	HUB_COUNT = 38,	    /* id: settled (as ROUTE's; 0 to frontends), list: (hash, viewers)
			     * entries, HUBPROTO_COUNT_ENTRY bytes each */
	HUB_ROUTE = 39,	    /* answers BLOB: id: settled, every BLOB entry of yours with a token
			     * up to it has had all its routes (let it go after them), list:
			     * (token, hash, requester, peer) entries, HUBPROTO_ROUTE_ENTRY bytes
			     * each, every route of a blob together (none: a ROUTE that only
			     * settles), data: the peer addresses the entries name
			     * (hubproto_route_next) */
	HUB_PEER_KEYS = 40, /* list: raw public keys (ZSEC_KEY_LEN each) of gateways the hub
			     * admitted, the only ones your peer endpoint lets in (CurveZMQ);
			     * value: enum hubproto_peer_keys */

	/* frontend or tool -> hub */
	HUB_LOOKUP = 64, /* id: request id, hash */
	HUB_STATS = 65,	 /* id: request id */
	HUB_FILES = 66,	 /* id: request id, hash: a file's plain SHA-256 */
	/* hub -> frontend or tool */
	HUB_LOOKUP_REPLY = 96, /* id: request id, hash, value: viewers */
	HUB_STATS_REPLY = 97,  /* id: request id, data: stats JSON (as the operator `stats`) */
	HUB_FILES_REPLY =
	    98, /* id: request id, hash, value: viewers of the hash itself,
		 * list: (manifest, viewers) entries as in COUNT, most viewers first */

	/* gateway -> gateway, over the peer links */
	HUB_DELIVER = 128, /* hash, list: requester connections (u64 LE each),
			    * data: the WebSocket frame (hash, then the verified blob) */
};

enum hubproto_fail {
	HUB_FAIL_DECLINED = 1, /* the holder said it no longer has the blob */
	HUB_FAIL_MISMATCH = 2, /* the holder's bytes did not hash to the address */
	HUB_FAIL_GONE = 3,     /* the holder connection closed before answering */
};

/* HEARTBEAT's list, in this order; a hub reads the ones it knows (a list may be shorter). */
enum hubproto_gw_counter {
	HUB_GWC_REFUSED_FULL,	     /* handshakes refused 503: gateway.max_conns held */
	HUB_GWC_REFUSED_PER_ADDRESS, /* 429: gateway.max_conns_per_addr from one address */
	HUB_GWC_REFUSED_ORIGIN,	     /* 403: an Origin not allowed */
	HUB_GWC_REFUSED_SUBPROTOCOL, /* 400: only subprotocols not ours */
	HUB_GWC_CLOSED_SILENT,	     /* closed by keepalive: nothing for gateway.idle_close_s */
	HUB_GWC_HUB_REFUSED, /* messages its socket to the hub refused: the hub behind, or away */
	HUB_GWC_RESTATES,    /* whole-state announcements for state messages the same hub missed */
	HUB_GWC_COUNT
};
enum hubproto_peer_keys {
	HUB_PEER_KEYS_ALL = 0, /* every such key: replaces the list before */
	HUB_PEER_KEYS_ADD = 1, /* keys to add to it (a gateway joined) */
};

/* A received message. list and data point into frames owned by the message. */
struct hubmsg {
	uint8_t peer[HUBPROTO_MAX_PEER]; /* ROUTER routing id of the sender */
	size_t peer_len;
	uint8_t cmd;
	uint64_t id;
	uint8_t hash[HASH_LEN];
	uint32_t value;
	const uint8_t *list;
	size_t list_count; /* elements, not bytes */
	const uint8_t *data;
	size_t data_len;
	zmq_msg_t frames[3];
	int nframes;
	zmq_msg_t *data_frame; /* the data frame, to forward without copying */
	const char *error;     /* why hubproto_recv() rejected the message */
};

/* A message to send. Only the fields the command uses are read. */
struct hubproto_out {
	uint8_t cmd;
	uint64_t id;
	const uint8_t *hash; /* NULL: zeros */
	uint32_t value;
	const void *list;
	size_t list_count;
	const void *data;
	size_t data_len;
	zmq_msg_t *data_msg; /* if set, the data frame is shared from this message, not copied */
	void (*data_free)(void *data, void *hint); /* if set, zmq frees data when sent (no copy) */
	void *data_hint;			   /* passed to data_free */
};

/*
 * Receives one whole message without blocking. peer_frame: 1 on a ROUTER (the first frame is the
 * sender's routing id). Returns 1 for a message (close it with hubmsg_close), 0 when there is
 * nothing to read, -1 for a malformed message (already consumed and closed; m->error says why).
 */
int hubproto_recv(void *sock, struct hubmsg *m, int peer_frame);
void hubmsg_close(struct hubmsg *m);

/*
 * Sends one message without blocking; peer/peer_len address it on a ROUTER (NULL otherwise).
 * Returns 0, or -1 with errno set (EAGAIN: high-water mark; EHOSTUNREACH: unknown peer on a
 * ROUTER with ZMQ_ROUTER_MANDATORY). With data_free set, data is freed on failure too.
 */
int hubproto_send(void *sock, const uint8_t *peer, size_t peer_len, const struct hubproto_out *o);

/* Validates a header+list+data triple as received; used by hubproto_recv and by the fuzzer.
 * Returns 0 and fills m's scalar fields and pointers, or -1 with m->error set. */
int hubproto_parse(struct hubmsg *m, const uint8_t *header, size_t header_len, const uint8_t *list,
		   size_t list_len, int has_list, const uint8_t *data, size_t data_len,
		   int has_data);

const char *hubproto_cmd_name(uint8_t cmd);

/* HELLO's data: the gateway's name, NUL, its peer endpoint. The buffer holds
 * HUBPROTO_HELLO_DATA_MAX bytes; returns the length written (name and endpoint cut to their
 * maximums). */
#define HUBPROTO_HELLO_DATA_MAX (HUBPROTO_MAX_NAME + 1 + HUBPROTO_MAX_ENDPOINT)
size_t hubproto_hello_data(char *buf, const char *name, const char *endpoint);
/* Splits HELLO's data: the name (name_len bytes at *name, not terminated) and the endpoint copied
 * into endpoint (terminated). -1 when either is too long. */
int hubproto_hello_parse(const struct hubmsg *m, const char **name, size_t *name_len,
			 char endpoint[HUBPROTO_MAX_ENDPOINT + 1]);

/* Opens a socket with the settings every peer uses (linger 0, high-water marks). */
void *hubproto_socket(void *ctx, int type);

/* Appends a COUNT list entry (hash, viewers) to a growing list of *len bytes. 0, or -1 when
 * out of memory (the entry is lost; the list is unchanged). */
int hubproto_count_put(uint8_t **list, size_t *len, size_t *cap, const uint8_t hash[HASH_LEN],
		       uint32_t viewers);
/* Appends an entry of elem bytes to a growing list (as hubproto_count_put). */
int hubproto_list_put(uint8_t **list, size_t *len, size_t *cap, const void *entry, size_t elem);
/* Appends a DELIVERED list entry (token, deliveries); as hubproto_count_put. */
int hubproto_delivered_put(uint8_t **list, size_t *len, size_t *cap, uint64_t token,
			   uint32_t deliveries);
/* One DELIVERED list entry written into e (a DELIVERED of its own), or read from entry i of a
 * DELIVERED list (its token; its deliveries in *deliveries). */
void hubproto_delivered_entry(uint8_t e[HUBPROTO_DELIVERED_ENTRY], uint64_t token,
			      uint32_t deliveries);
uint64_t hubproto_delivered_get(const uint8_t *list, size_t i, uint32_t *deliveries);
/* A map key (connection in host order, hash): not for the wire. */
void hubproto_conn_key(uint8_t key[HUBPROTO_CONN_KEY_LEN], uint64_t conn,
		       const uint8_t hash[HASH_LEN]);
/* A WANT list entry (connection u64 LE, hash), written into e. */
void hubproto_conn_entry(uint8_t e[HUBPROTO_CONN_KEY_LEN], uint64_t conn,
			 const uint8_t hash[HASH_LEN]);
/* Appends a BLOB list entry (token, hash, size, holder connection, named deliveries); as
 * hubproto_count_put. */
int hubproto_blob_put(uint8_t **list, size_t *len, size_t *cap, uint64_t token,
		      const uint8_t hash[HASH_LEN], uint32_t size, uint64_t holder,
		      uint32_t delivered);
/* One BLOB list entry: written into e (a BLOB of its own), or read from entry i of a BLOB
 * list; hubproto_blob_set_delivered rewrites the named deliveries of entry i. */
void hubproto_blob_entry(uint8_t e[HUBPROTO_BLOB_ENTRY], uint64_t token,
			 const uint8_t hash[HASH_LEN], uint32_t size, uint64_t holder,
			 uint32_t delivered);
struct hubproto_blob {
	uint64_t token;
	const uint8_t *hash; /* points into the message */
	uint32_t size;
	uint64_t holder;
	uint32_t delivered; /* to the waiters named, HUBPROTO_BLOB_MORE set if not final */
};
struct hubproto_blob hubproto_blob_get(const uint8_t *list, size_t i);
void hubproto_blob_set_delivered(uint8_t *list, size_t i, uint32_t delivered);
/* Whether a hub -> gateway command carries the settled mark in its id (REQUEST, ROUTE, COUNT):
 * the gateway's BLOB entries up to that token have had every route they will. */
int hubproto_carries_settled(uint8_t cmd);

/*
 * ROUTE or REQUEST, as the hub builds it over one turn: entries, and the table of the peer
 * addresses they name (each u16 LE length, then the address as hubproto_peer_address writes it;
 * entries name them 1, 2, ... in that order, 0 the receiver itself). Every entry of one blob
 * (token; in a REQUEST, the holder connection asked) is put in a row, those of one peer in a
 * row, the receiver's own last.
 */
struct hubproto_routes {
	uint8_t *list, *peers;
	size_t list_len, list_cap, peers_len, peers_cap;
	size_t npeers;
};
/* The index of peer address addr (addr_len bytes, as hubproto_peer_address writes it) in r's
 * table, appended if new; 0 for addr_len 0 (the receiver itself). -1 when out of memory or the
 * table is full (HUBPROTO_MAX_ROUTE_DATA). */
int hubproto_routes_peer(struct hubproto_routes *r, const uint8_t *addr, size_t addr_len);
/* Appends an entry; 0, or -1 when out of memory (the entry is lost). */
int hubproto_routes_put(struct hubproto_routes *r, uint64_t token, const uint8_t hash[HASH_LEN],
			uint64_t conn, int peer);
/* The ROUTE or REQUEST (cmd) message of r's entries and table (pointing into r). */
struct hubproto_out hubproto_routes_message(const struct hubproto_routes *r, uint8_t cmd);
void hubproto_routes_clear(struct hubproto_routes *r); /* empty, keeping the buffers */
void hubproto_routes_free(struct hubproto_routes *r);

/* One route of a received ROUTE or REQUEST: a blob's waiters on one gateway. */
struct hubproto_route {
	uint64_t token; /* in a REQUEST: the holder connection asked */
	const uint8_t *hash;
	const uint8_t *addr; /* their gateway's peer address (hubproto_peer_address_parse) */
	size_t addr_len;     /* 0: the receiver's own connections */
	size_t nconns;	     /* requester connections, copied to conns (u64 LE each); 0: none */
	int last;	     /* the last route of its token (in a REQUEST: of that holder) */
};
/*
 * Reads the next route of ROUTE or REQUEST m from entry *it on, its connections into conns (room
 * for m->list_count of them). 1 and *it moved on; 0 at the end; -1 (why set) when an entry names a
 * peer the table does not have (the rest of m is then unread).
 */
int hubproto_route_next(const struct hubmsg *m, size_t *it, struct hubproto_route *r,
			uint8_t *conns, const char **why);

/* The CurveZMQ public key (Z85) of m's sender, as the receiver's ZAP handler named it (User-Id);
 * NULL on a plain socket. The hub hands it to other gateways with the sender's endpoint. */
const char *hubmsg_user_id(struct hubmsg *m);

/* Where a gateway's peer endpoint is and, under CurveZMQ, which key its server must prove. */
struct hubproto_peer_address {
	char endpoint[HUBPROTO_MAX_ENDPOINT + 1];
	char public_z85[ZSEC_Z85_LEN + 1]; /* "": a plain endpoint */
};
/* ROUTE's data: the endpoint, and, if public_z85 is not empty, NUL and that key. Returns the
 * length written to out (at most HUBPROTO_MAX_PEER_ADDRESS), or 0 if either does not fit. */
size_t hubproto_peer_address(uint8_t *out, const char *endpoint, const char *public_z85);
/* Reads ROUTE's data; -1 (why set) for an endpoint too long or a key not 40 Z85 characters. */
int hubproto_peer_address_parse(const uint8_t *data, size_t len, struct hubproto_peer_address *out,
				const char **why);

#endif
