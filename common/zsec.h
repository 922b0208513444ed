/*
 * zsec.h — ZeroMQ security: CurveZMQ key files, CURVE options on sockets, and a ZAP handler that
 * lets in only the public keys of an allow-list folder.
 *
 * A key file is zcert-style text (what CZMQ's zcert_save writes, and what `ephemeral-ctl keygen`
 * writes): lines `public-key = "<40 Z85 characters>"` and, in the secret file only,
 * `secret-key = "..."`; every other line is ignored. `keygen NAME` writes NAME.pub (give it
 * away) and NAME.secret (mode 0600, never leaves the machine).
 *
 * How a socket is secured, one call each:
 *   - a socket that binds (the hub's ROUTER and REP, a gateway's peer endpoint):
 *     zsec_server_socket(sock, own key pair, zap, domain) before zmq_bind, where zap is a
 *     zsec_zap opened first in the same context and polled by the owner's loop (zsec_zap_drain
 *     whenever its socket is readable; its ZMQ_FD is edge-triggered, like any ZeroMQ socket).
 *     The hub's handler lets in the keys of a folder (zsec_zap_open); a gateway's, the keys the
 *     hub gives it (zsec_zap_open_given, then zsec_zap_allow whenever the hub's list changes);
 *   - a socket that connects to the hub: zsec_client_from_config(sock, "<program>.secret_key")
 *     before zmq_connect (settings hub.public_key and the program's own key pair);
 *   - a socket that connects to another server (a gateway's peer): zsec_client_socket(sock, own
 *     key pair, that server's public key).
 * Without a ZAP handler in the context libzmq accepts any client key: that is why
 * zsec_server_socket takes the (open) handler. One handler serves every server socket of its
 * context, each under its own ZAP domain (logged with each refusal).
 */
#ifndef EPH_ZSEC_H
#define EPH_ZSEC_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "map.h"

#define ZSEC_KEY_LEN  32 /* a raw CURVE key */
#define ZSEC_Z85_LEN  40 /* the same in Z85 text */
#define ZSEC_NAME_MAX 64
/* ZeroMQ's fixed address for the ZAP handler of a context (RFC 27). */
#define ZSEC_ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* Unknown keys remembered (each logged once); past this, refusals are counted, not named. */
#define ZSEC_REFUSED_REMEMBER 4096
/* The suffix of public key files, in keygen's output and in an allow-list folder. */
#define ZSEC_PUBLIC_SUFFIX ".pub"
#define ZSEC_SECRET_SUFFIX ".secret"

struct zsec_keys {
	char public_z85[ZSEC_Z85_LEN + 1];
	char secret_z85[ZSEC_Z85_LEN + 1]; /* "" when the file holds only the public key */
};

/* 1 if this libzmq can do CURVE (built with libsodium or its own tweetnacl). */
int zsec_available(void);

/* 1 if a bind to endpoint is reachable from this machine only: tcp:// on 127.0.0.0/8, ::1 or
 * localhost, ipc://, inproc://. Anything else (a wildcard, another address, a name) is 0. */
int zsec_endpoint_is_loopback(const char *endpoint);

/* Parses a key file's text. need_secret: the secret key must be there (and match the public
 * one). -1 with a reason in err. */
int zsec_keys_parse(const char *text, size_t len, int need_secret, struct zsec_keys *out, char *err,
		    size_t errlen);
int zsec_keys_load(const char *path, int need_secret, struct zsec_keys *out, char *err,
		   size_t errlen);
/* Makes a key pair and writes base.pub and base.secret (0600); refuses to overwrite either. */
int zsec_keygen(const char *base, struct zsec_keys *out, char *err, size_t errlen);

struct zsec_zap;
/* CURVE server options (own key pair, ZAP domain) on a socket about to bind; -1 if zap is not
 * open (clients would then be let in whatever their key). */
int zsec_server_socket(void *sock, const struct zsec_keys *own, const struct zsec_zap *zap,
		       const char *domain, char *err, size_t errlen);
/* CURVE client options on a socket about to connect to the server with that public key. */
int zsec_client_socket(void *sock, const struct zsec_keys *own, const char *server_public_z85,
		       char *err, size_t errlen);
/* For sockets that connect to the hub: if hub.public_key is set, loads it and the key pair named
 * by the setting secret_setting (e.g. "gateway.secret_key") and applies them; if neither is set,
 * does nothing. Returns -1 (and logs why) when only one is set or a file is unusable. */
int zsec_client_from_config(void *sock, const char *secret_setting);
/* The same settings, read: 1 both set and loaded into own (and hub, if not NULL), 0 neither set,
 * -1 (logged) only one set, a file unusable, or a libzmq without CURVE. */
int zsec_keys_from_config(const char *secret_setting, struct zsec_keys *own, struct zsec_keys *hub);

/* An allowed key, named after its file (without .pub) in the logs. A message from a client
 * that was let in carries the client's public key in Z85 as its "User-Id" property
 * (zmq_msg_gets): the identity a server can pass on, e.g. to tell gateways each other's keys. */
struct zsec_allowed {
	uint8_t key[ZSEC_KEY_LEN];
	char name[ZSEC_NAME_MAX + 1];
};

struct zsec_refused {
	uint8_t key[ZSEC_KEY_LEN];
};

/* The ZAP handler: a REP socket on ZSEC_ZAP_ENDPOINT. With a folder, it re-reads it whenever the
 * folder's modification time has changed (a key file added or removed), at the next handshake;
 * without, its owner sets the keys (zsec_zap_allow). */
struct zsec_zap {
	void *sock;
	char *dir;    /* NULL: the keys are given (zsec_zap_open_given) */
	char *source; /* where allowed keys come from, in the refusal log: dir, or the owner's words
		       */
	struct timespec dir_mtime;
	struct map allowed; /* raw key -> struct zsec_allowed */
	struct map refused; /* raw key -> struct zsec_refused: already logged */
	int refused_full_logged;
	uint64_t accepted, refused_total;
};

int zsec_zap_open(struct zsec_zap *z, void *ctx, const char *allow_dir, char *err, size_t errlen);
/* A handler that lets in no key until zsec_zap_allow gives it some; source names them in the
 * log ("refused …: its key … is not in <source>"). */
int zsec_zap_open_given(struct zsec_zap *z, void *ctx, const char *source, char *err,
			size_t errlen);
/* Replaces the allowed keys with these n raw keys (ZSEC_KEY_LEN bytes each; duplicates are one),
 * or (replace 0) adds them, each named name in the logs. 1 if the set changed, 0 if it is the
 * same, -1 out of memory (replacing: the keys allowed before stay). */
int zsec_zap_allow(struct zsec_zap *z, const uint8_t *keys, size_t n, const char *name,
		   int replace);
/* Reads the allow-list folder again (every *.pub file in it). */
int zsec_zap_reload(struct zsec_zap *z, char *err, size_t errlen);
/* Answers every request waiting on the handler's socket, without blocking; returns how many. */
int zsec_zap_drain(struct zsec_zap *z);
void zsec_zap_close(struct zsec_zap *z);

#endif
