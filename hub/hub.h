/*
 * hub.h — the hub's map: its state, and every module's functions under the module's name.
 *
 * The hub owns the registry (which connection on which gateway holds which hash), routes each
 * want to a holder, tells the holder's gateway where the waiters of a verified blob are (the
 * bytes go gateway to gateway and never through the hub), and answers frontends and operators. It
 * is single-threaded: main.c polls the ROUTER (gateways, frontends) and the REP (operators) sockets
 * and runs the timers; nothing here blocks.
 */
#ifndef EPH_HUB_H
#define EPH_HUB_H

#include <stdint.h>
#include <sys/queue.h>
#include <zmq.h>

#include "hubproto.h"
#include "map.h"
#include "zsec.h"

#define HUB_MAX_GATEWAYS      1024
#define HUB_CONN_ID_MAX	      ((1ull << 48) - 1)
#define HUB_CONN_ID_VALID(id) ((id) != 0 && (id) <= HUB_CONN_ID_MAX)
/* Frontends' watches (watch.c): the longest a LOOKUP may ask to hear of changes, how many
 * frontend processes are followed at once, how often expired watches are swept. */
#define WATCH_MAX_MS	    10000
#define WATCH_MAX_FRONTENDS 1024
#define WATCH_SWEEP_MS	    1000
#define WATCH_WARN_MS	    60000 /* a watch that cannot be kept is logged at most this often */

struct holding;
struct waiter;
struct fetch;
struct watcher;

struct gateway {
	uint16_t slot;
	uint32_t active_index; /* in hub->active */
	int leaving;	       /* being removed: its connections are asked for nothing more */
	uint8_t peer[HUBPROTO_MAX_PEER]; /* ROUTER routing id */
	size_t peer_len;
	uint64_t instance; /* random per gateway process; survives a socket reconnect */
	char name[HUBPROTO_MAX_NAME + 1];
	char endpoint[HUBPROTO_MAX_ENDPOINT + 1]; /* its peer endpoint, from HELLO */
	char public_key[ZSEC_Z85_LEN + 1];	  /* CurveZMQ: its HELLO's User-Id; else "" */
	int64_t last_seen_ms;
	uint32_t connections;
	uint64_t holdings;
	uint8_t *counts; /* COUNT entries batched for the next flush */
	size_t counts_len, counts_cap;
	uint8_t
	    *asked; /* (holder, hash) entries asked in this turn (link_request), named at its end */
	size_t asked_len, asked_cap;
	struct hubproto_routes requests; /* the REQUEST they make (router_name_waiters) */
	struct hubproto_routes routes;	 /* ROUTE of this turn (link_route, link_flush) */
	uint64_t unsent; /* messages dropped since sending to it began to fail (logged once) */
	uint64_t counters[HUB_GWC_COUNT]; /* as its last HEARTBEAT said (link.c on_heartbeat) */
	/* Settling its kept blobs (docs/HUB-PROTOCOL.md, "The blob path"): the highest BLOB token
	 * routed, the highest it was told of (the id of REQUEST, ROUTE and COUNT), and when a ROUTE
	 * that only settles is due if no other message tells it first (0: none due). */
	uint64_t blobs_routed, blobs_told;
	int64_t settle_at;
};

/* A client connection on a gateway; key = slot << 48 | gateway's connection id. */
struct conn {
	uint64_t key;
	struct gateway *gw;
	uint64_t id;
	LIST_HEAD(, holding) holdings;
	LIST_HEAD(, waiter) waits; /* router.c's */
	uint32_t nholdings;
	uint32_t asked; /* fetches waiting for this connection's answer now */
};

/* Per-gateway interest in a hash: holdings there plus wants from there. */
struct gwref {
	uint16_t slot;
	uint32_t refs;
};

struct hashent {
	uint8_t hash[HASH_LEN];
	uint32_t viewers;
	TAILQ_HEAD(holders_head, holding) holders; /* the first: asked least recently */
	struct fetch *fetch;
	struct gwref *gws;
	uint16_t ngws, capgws;
	int dirty;
	SLIST_ENTRY(hashent) dirty_entry;
};

struct holding {
	uint8_t key[HUBPROTO_CONN_KEY_LEN]; /* conn key, hash */
	struct hashent *h;
	struct conn *c;
	TAILQ_ENTRY(holding) hentry; /* holders of the hash */
	LIST_ENTRY(holding) centry;  /* holdings of the connection */
};

struct waiter {
	struct fetch *f;
	struct conn *c;
	uint64_t named; /* key of the holder whose REQUEST named it (0: none): its BLOB served it */
	/* Bit i: the REQUEST to the fetch's tried[i] (i < 64) named it. That holder's gateway
	 * gives it the blob whenever it answers, even after its timeout (a stale list). */
	uint64_t named_by;
	/* Its gateway wanted the hash again while it was named (to again_of, or ROUTER_STALE when
	 * only a holder that timed out had named it): a holder's gateway had served it by name,
	 * its BLOB not yet here. Counted as a second want. */
	uint64_t again_of;
	LIST_ENTRY(waiter) fentry; /* the fetch's waiters */
	LIST_ENTRY(waiter) centry; /* the connection's waits */
};

/* waiter.again_of when the holders that named it had all timed out (none names it now). */
#define ROUTER_STALE UINT64_MAX

/* One transfer in progress for a hash: everyone waiting for it shares it. */
struct fetch {
	struct hashent *h;
	LIST_HEAD(, waiter) waiters;
	uint32_t nwaiters;
	struct conn *holder; /* asked now; NULL between attempts */
	uint64_t *tried;     /* conn keys already asked (skipped now) */
	size_t ntried, captried;
	int64_t deadline_ms;
	int queued;		   /* in the timeout queue */
	int request_queued;	   /* its holder is asked in this turn's REQUEST, not yet named */
	TAILQ_ENTRY(fetch) tentry; /* timeout queue, oldest deadline first */
};

/* A blob routed to the gateway that holds it, until that gateway reports it sent (router.c). */
struct transfer {
	uint64_t key[2]; /* the gateway's token, its slot: hub->transfer_keys */
	LIST_ENTRY(transfer) entry;
	struct gateway *gw; /* the holder's gateway: it sends the bytes */
	uint64_t token;	    /* its name for the blob */
	uint8_t hash[HASH_LEN];
	uint32_t size;
	size_t nconns;
	size_t npre;	  /* the first npre conns: named in the REQUEST, served before any ROUTE */
	size_t counted;	  /* deliveries counted already (BLOB's to the named waiters, if final) */
	uint32_t surplus; /* BLOB's deliveries not counted yet, added to DELIVERED's: past npre (a
			   * stale list: they may answer newer wants of the routed waiters), or all
			   * of them when BLOB said HUBPROTO_BLOB_MORE */
	size_t owed_from; /* conns from this one on are not reported delivered yet (npre or 0) */
	uint64_t conns[]; /* conn keys of the waiters it was told about */
};

struct hub_stats {
	uint64_t requests_total, requests_served, requests_failed;
	uint64_t hash_mismatches, bytes_relayed, holder_timeouts, declines;
	uint64_t gateway[HUB_GWC_COUNT]; /* the gateways' counters, summed as they grow */
};

struct hub {
	void *ctx;
	void *router;	       /* gateways and frontends */
	void *operator;	       /* REP for operators */
	struct zsec_keys keys; /* with hub.secret_key: CurveZMQ on both */
	struct zsec_zap zap;   /* its sock is NULL without hub.secret_key */
	uint64_t instance;
	int64_t started_ms;
	int heartbeat_ms, expiry_ms, holder_timeout_ms;
	struct gateway *gateways[HUB_MAX_GATEWAYS]; /* by slot */
	struct gateway *active[HUB_MAX_GATEWAYS];   /* the ngateways in use, packed */
	struct map gw_by_instance;		    /* instance -> gateway */
	struct map conns;			    /* conn key -> conn */
	struct map hashes;			    /* hash -> hashent */
	struct map holdings;			    /* conn key + hash -> holding */
	uint32_t ngateways, nconns;
	uint64_t nholdings, nhashes_held;
	SLIST_HEAD(, hashent) dirty;
	TAILQ_HEAD(, fetch) timeouts;
	LIST_HEAD(, transfer) transfers; /* routed, not yet reported sent */
	struct map transfer_keys;	 /* (token, gateway slot) -> transfer: DELIVERED's lookup */
	struct hub_stats stats;
	struct map watches;	       /* hash -> watch: hashes frontends looked up recently */
	LIST_HEAD(, watcher) watchers; /* the frontends that did */
	uint32_t nwatchers;
	int64_t watch_sweep_ms, watch_warned_ms;
	struct map files;	   /* file SHA-256 -> fileent (files.c) */
	struct map file_manifests; /* manifest -> filelink: the file it was confirmed to declare */
};

/* registry.c — gateways, connections, hashes and holdings (removals: through router.c) */
void registry_init(struct hub *hub);
void registry_free(struct hub *hub);
struct gateway *registry_gateway_by_peer(struct hub *hub, const uint8_t *peer, size_t len);
/* The gateway known by this instance, else by this routing id: NULL when neither is. */
struct gateway *registry_gateway_find(struct hub *hub, const uint8_t *peer, size_t peer_len,
				      uint64_t instance);
struct gateway *registry_gateway_join(struct hub *hub, const uint8_t *peer, size_t peer_len,
				      uint64_t instance, const char *name, size_t name_len);
void registry_gateway_remove(struct hub *hub, struct gateway *gw);
struct conn *registry_conn(struct hub *hub, struct gateway *gw, uint64_t id, int create);
void registry_conn_remove(struct hub *hub, struct conn *c);
struct hashent *registry_hash(struct hub *hub, const uint8_t hash[HASH_LEN], int create);
/* Frees h if nobody holds, wants or watches it and no count of it is pending (counts.c). */
void registry_hash_release(struct hub *hub, struct hashent *h);
int registry_add_holder(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN]);
int registry_remove_holder(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN]);
int registry_holds(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN]);
int registry_gw_ref(struct hashent *h, uint16_t slot, int delta); /* -1: out of memory */
void registry_mark_dirty(struct hub *hub, struct hashent *h);
/* hd was just asked for its hash: it goes to the back of the hash's line of holders. */
void registry_holder_asked(struct hashent *h, struct holding *hd);
uint32_t registry_viewers(struct hub *hub, const uint8_t hash[HASH_LEN]);

/* router.c — wants, holder selection, routes for verified blobs, timeouts */
void router_init(struct hub *hub);
void router_want(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN]);
/* A gateway verified a blob (kept there as token) from its connection `holder`: those waiters
 * the REQUEST to that holder named have it (`delivered` of them, HUBPROTO_BLOB_MORE set if more
 * may follow in a DELIVERED); the rest are told, in ROUTEs, where they are. */
void router_blob(struct hub *hub, struct gateway *gw, uint64_t token, const uint8_t hash[HASH_LEN],
		 uint32_t size, uint64_t holder, uint32_t delivered);
/* The holder's gateway sent the blob `token` to more waiters (counted here, at most once per
 * waiter the transfer holds, so the stats stay exact). */
void router_delivered(struct hub *hub, struct gateway *gw, uint64_t token, uint32_t deliveries);
/* The way a connection, a holding or a gateway goes: the router lets go of it, then the
 * registry removes it. router_drop returns registry_remove_holder's answer. */
void router_conn_close(struct hub *hub, struct conn *c);
int router_drop(struct hub *hub, struct conn *c, const uint8_t hash[HASH_LEN]);
void router_gateway_remove(struct hub *hub, struct gateway *gw);
void router_free(struct hub *hub); /* removes every gateway; before registry_free() */
void router_cancel_waiter(struct hub *hub, struct waiter *w);
/* Waiters the holder's gateway could not reach (endpoint "": its own): they get NOT_FOUND. */
void router_undelivered(struct hub *hub, struct gateway *from, const uint8_t hash[HASH_LEN],
			const char *endpoint, const uint8_t *conns, size_t nconns);
void router_fail(struct hub *hub, struct conn *holder, const uint8_t hash[HASH_LEN],
		 uint32_t reason);
void router_expire(struct hub *hub, int64_t now);
/* The end of a turn: each holder asked in it (gw->asked) gets its REQUEST entries in
 * gw->requests, naming the waiters its fetch has now. */
void router_name_waiters(struct hub *hub, struct gateway *gw);
/* A REQUEST to gw (n entries, as its list) could not be sent: those fetches ask the next
 * holder. */
void router_unrequested(struct hub *hub, struct gateway *gw, const uint8_t *entries, size_t n);
/* A ROUTE to gw (n entries) could not be sent: the waiters it named wait again. */
void router_unrouted(struct hub *hub, struct gateway *gw, const uint8_t *entries, size_t n);
int64_t router_next_deadline(struct hub *hub);

/* counts.c — viewer counts batched per gateway */
void counts_queue(struct gateway *gw, const struct hashent *h);
void counts_flush(struct hub *hub);

/* watch.c — frontends told at once when the count of a hash they looked up changes */
void watch_init(struct hub *hub);
void watch_free(struct hub *hub);
/* A LOOKUP from a frontend that asks to hear of changes for watch_ms (0: it does not). */
void watch_lookup(struct hub *hub, const uint8_t *peer, size_t peer_len,
		  const uint8_t hash[HASH_LEN], uint32_t watch_ms, uint32_t viewers);
/* A hash's count may have changed (from counts_flush); queues it for the frontends if watched. */
void watch_changed(struct hub *hub, const struct hashent *h);
/* Sends each frontend its queued COUNT. */
void watch_flush(struct hub *hub);

/* files.c — files findable by their plain SHA-256, as confirmed by gateways */
void files_init(struct hub *hub);
void files_free(struct hub *hub);
/* A gateway read sha256 in the manifest c holds: lists it. 1 listed, 0 not (c does not hold it,
 * or it already is), -1 out of memory. */
int files_confirm(struct hub *hub, struct conn *c, const uint8_t manifest[HASH_LEN],
		  const uint8_t sha256[HASH_LEN]);
/* A hash's count changed (from counts_flush): a manifest with no holder left is forgotten. */
void files_changed(struct hub *hub, const struct hashent *h);
/* The manifests of a file, most viewers first, as (manifest, viewers u32 LE) entries. */
size_t files_lookup(struct hub *hub, const uint8_t sha256[HASH_LEN],
		    uint8_t out[HUBPROTO_MAX_MANIFESTS][HUBPROTO_COUNT_ENTRY]);

/* link.c — sending to gateways and frontends */
int link_send(struct hub *hub, struct gateway *gw, const struct hubproto_out *o);
/* The index of gateway to's peer address in list (gw->routes or gw->requests: 0 when to is gw);
 * -1 when gw is failing, to has no address or the table is full. */
int link_route_peer(struct gateway *gw, struct hubproto_routes *list, struct gateway *to);
/* Asks holder on gw for hash in this turn's REQUEST: one REQUEST per gateway and turn of the loop
 * carries them all (link_flush, which has the router name their waiters first; other messages
 * to gw may go before it, which nothing depends on). -1 when gw is known not to take messages,
 * or out of memory: ask another holder. */
int link_request(struct gateway *gw, uint64_t holder, const uint8_t hash[HASH_LEN]);
/* Puts one entry in list: in gw->requests (this turn's REQUEST), key is the holder asked for hash
 * and conn a waiter it names (0: none); in gw->routes (this turn's ROUTE to the holder's
 * gateway), key is the blob's token and conn one of its waiters. conn is on the gateway at peer
 * (link_route_peer on the same list). -1 when gw is known not to take messages, or out of
 * memory: nothing is queued. */
int link_route(struct gateway *gw, struct hubproto_routes *list, uint64_t key,
	       const uint8_t hash[HASH_LEN], uint64_t conn, int peer);
/* Sends every gateway its queued ROUTE and REQUEST entries; once per turn of the loop, before
 * counts. */
void link_flush(struct hub *hub);
/* Sends a ROUTE that only settles to every gateway that has waited LINK_SETTLE_MS for one with
 * no other message telling it; returns when the next is due (-1: none). After counts_flush. */
int64_t link_settle(struct hub *hub, int64_t now);
/* Logs how many messages to gw were dropped since sending to it began to fail; resets it. */
void link_forget_unsent(struct gateway *gw, const char *why);
void link_handle(struct hub *hub, struct hubmsg *m);
/* CurveZMQ: the keys of the gateways admitted, the only ones their peer endpoints let in
 * (PEER_KEYS). The gateway that joined gets the whole list, the others its key if it is new to
 * them; after gateways went (joined NULL), every gateway gets the whole list. */
void link_peer_keys(struct hub *hub, struct gateway *joined);
/* PINGs every gateway; forgets those silent for hub.peer_expiry_ms, unless `behind` (this turn
 * left messages unread: a sign of life may be among them). */
void link_heartbeat(struct hub *hub, int64_t now, int behind);

/* operator.c — the operator endpoint and the stats every surface shows */
char *operator_stats_json(struct hub *hub);
/* The reply to one request of len bytes (any bytes): JSON text, malloc'd; NULL on out of memory. */
char *operator_answer(struct hub *hub, const char *req, size_t len);
void operator_handle(struct hub *hub);

#endif
