/*
 * zsec.c — CurveZMQ for Ephemeral's sockets: key files, socket options, the ZAP handler.
 *
 * Owns the key file format (one parser, zsec_keys_parse), the allow-list (loaded from a folder for
 * the hub, given by the hub for a gateway's peer endpoint), and the answers to libzmq's ZAP
 * requests (RFC 27). It never blocks: the handler is drained by
 * the owner's event loop, and a malformed request gets a refusal, never a crash. Called by the
 * hub at start (main.c), by every socket that connects to the hub (gateway, frontend,
 * ephemeral-ctl), by a gateway's peer links (ws-gateway/peer.c), and by ephemeral-ctl keygen.
 */
#include "zsec.h"
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* Frames of a ZAP request up to the first credential (RFC 27): version, request id, domain,
 * address, routing id, mechanism, credentials. */
enum {
	ZAP_VERSION,
	ZAP_REQUEST_ID,
	ZAP_DOMAIN,
	ZAP_ADDRESS,
	ZAP_IDENTITY,
	ZAP_MECHANISM,
	ZAP_CREDENTIAL,
	ZAP_FRAMES
};
#define ZAP_FRAME_MAX 256 /* longer frames are cut: nothing we read is longer than a domain */
#define KEY_FILE_MAX  4096

int zsec_available(void)
{
	return zmq_has("curve");
}

int zsec_endpoint_is_loopback(const char *endpoint)
{
	if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
		return 1;
	if (strncmp(endpoint, "tcp://", 6) != 0)
		return 0;
	const char *host = endpoint + 6, *colon = strrchr(host, ':');
	char h[INET6_ADDRSTRLEN + 2];
	size_t len = colon ? (size_t)(colon - host) : 0;
	if (len == 0 || len >= sizeof(h))
		return 0;
	memcpy(h, host, len);
	h[len] = '\0';
	if (h[0] == '[' && h[len - 1] == ']') {
		memmove(h, h + 1, len - 2);
		h[len - 2] = '\0';
	}
	struct in_addr a4;
	struct in6_addr a6;
	if (strcmp(h, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

/* Reads `name = "value"` (quotes optional) from line if it names this key. 1 found, 0 not this
 * key, -1 malformed. */
static int key_line(const char *s, const char *e, const char *name, char out[ZSEC_Z85_LEN + 1])
{
	size_t n = strlen(name);
	if ((size_t)(e - s) < n || memcmp(s, name, n) != 0)
		return 0;
	s += n;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	if (s == e || *s != '=')
		return 0; /* another key that starts with the same letters */
	s++;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	const char *v = s;
	if (s < e && *s == '"') {
		v = ++s;
		while (s < e && *s != '"')
			s++;
		if (s == e)
			return -1;
	} else {
		while (s < e && !isspace((unsigned char)*s))
			s++;
	}
	uint8_t raw[ZSEC_KEY_LEN];
	if (s - v != ZSEC_Z85_LEN)
		return -1;
	memcpy(out, v, ZSEC_Z85_LEN);
	out[ZSEC_Z85_LEN] = '\0';
	return zmq_z85_decode(raw, out) ? 1 : -1;
}

int zsec_keys_parse(const char *text, size_t len, int need_secret, struct zsec_keys *out, char *err,
		    size_t errlen)
{
	static const char *const names[] = {"public-key", "secret-key"};
	char *fields[] = {out->public_z85, out->secret_z85};
	memset(out, 0, sizeof(*out));
	const char *p = text, *end = text + len;
	int lineno = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *s = p, *e = nl ? nl : end;
		p = nl ? nl + 1 : end;
		lineno++;
		while (s < e && isspace((unsigned char)*s))
			s++;
		for (int i = 0; i < 2; i++) {
			char value[ZSEC_Z85_LEN + 1];
			int rc = key_line(s, e, names[i], value);
			if (rc < 0) {
				snprintf(err, errlen, "line %d: %s is not 40 Z85 characters",
					 lineno, names[i]);
				return -1;
			}
			if (rc == 0)
				continue;
			if (fields[i][0] != '\0') {
				snprintf(err, errlen, "line %d: a second %s", lineno, names[i]);
				return -1;
			}
			memcpy(fields[i], value, sizeof(value));
		}
	}
	if (out->secret_z85[0] != '\0') {
		char derived[ZSEC_Z85_LEN + 1];
		if (zmq_curve_public(derived, out->secret_z85) < 0) {
			snprintf(err, errlen, "secret-key is not a CURVE key");
			return -1;
		}
		if (out->public_z85[0] == '\0')
			memcpy(out->public_z85, derived, sizeof(derived));
		else if (strcmp(derived, out->public_z85) != 0) {
			snprintf(err, errlen, "public-key and secret-key are not one key pair");
			return -1;
		}
	}
	if (need_secret && out->secret_z85[0] == '\0') {
		snprintf(err, errlen,
			 "no secret-key (give the " ZSEC_SECRET_SUFFIX
			 " file, not the " ZSEC_PUBLIC_SUFFIX " one)");
		return -1;
	}
	if (out->public_z85[0] == '\0') {
		snprintf(err, errlen, "no public-key line");
		return -1;
	}
	return 0;
}

int zsec_keys_load(const char *path, int need_secret, struct zsec_keys *out, char *err,
		   size_t errlen)
{
	char text[KEY_FILE_MAX], sub[200];
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	/* As ssh does with its keys: say so, but go on (the operator may mean it). */
	if (need_secret && fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
		log_warnx("%s: a secret key that group or others may read: chmod 600 it", path);
	size_t n = fread(text, 1, sizeof(text), f);
	int toolong = n == sizeof(text);
	fclose(f);
	if (toolong) {
		snprintf(err, errlen, "%s: longer than %d bytes: not a key file", path,
			 KEY_FILE_MAX);
		return -1;
	}
	if (zsec_keys_parse(text, n, need_secret, out, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "%s: %s", path, sub);
		return -1;
	}
	return 0;
}

static int write_key_file(const char *path, mode_t mode, const char *name, const char *what,
			  const struct zsec_keys *k, int with_secret, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
			 errno == EEXIST ? " (not overwriting a key)" : "");
		return -1;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f,
		"#   Ephemeral CurveZMQ %s \"%s\", made by ephemeral-ctl keygen (zcert format).\n"
		"#   %s\n\nmetadata\n    name = \"%s\"\ncurve\n    public-key = \"%s\"\n",
		what, name,
		with_secret
		    ? "SECRET: keep it on this machine, readable only by the programs that use "
		      "it."
		    : "Give it away: copy it into the hub's hub.allowed_keys folder.",
		name, k->public_z85);
	if (with_secret)
		fprintf(f, "    secret-key = \"%s\"\n", k->secret_z85);
	if (fclose(f) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int zsec_keygen(const char *base, struct zsec_keys *out, char *err, size_t errlen)
{
	const char *name = strrchr(base, '/');
	name = name ? name + 1 : base;
	size_t nlen = strlen(name);
	if (nlen == 0 || nlen > ZSEC_NAME_MAX ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
			 "nopqrstuvwxyz0123456789._-") != nlen) {
		snprintf(err, errlen,
			 "\"%s\": a key's name is 1 to %d letters, digits, '.', '_' or '-'", name,
			 ZSEC_NAME_MAX);
		return -1;
	}
	char pub[4096], sec[4096];
	if (snprintf(pub, sizeof(pub), "%s" ZSEC_PUBLIC_SUFFIX, base) >= (int)sizeof(pub) ||
	    snprintf(sec, sizeof(sec), "%s" ZSEC_SECRET_SUFFIX, base) >= (int)sizeof(sec)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if (zmq_curve_keypair(out->public_z85, out->secret_z85) < 0) {
		snprintf(err, errlen, "cannot make a key pair: %s", zmq_strerror(zmq_errno()));
		return -1;
	}
	if (access(pub, F_OK) == 0) {
		snprintf(err, errlen, "%s: exists (not overwriting a key)", pub);
		return -1;
	}
	if (write_key_file(sec, 0600, name, "key pair", out, 1, err, errlen) < 0)
		return -1;
	if (write_key_file(pub, 0644, name, "public key", out, 0, err, errlen) < 0) {
		unlink(sec);
		return -1;
	}
	return 0;
}

int zsec_server_socket(void *sock, const struct zsec_keys *own, const struct zsec_zap *zap,
		       const char *domain, char *err, size_t errlen)
{
	int one = 1;
	if (zap == NULL || zap->sock == NULL) {
		snprintf(err, errlen, "no ZAP handler: every client key would be let in");
		return -1;
	}
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, own->secret_z85, ZSEC_Z85_LEN) < 0 ||
	    zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) < 0) {
		snprintf(err, errlen, "cannot set CURVE options: %s", zmq_strerror(zmq_errno()));
		return -1;
	}
	return 0;
}

int zsec_client_socket(void *sock, const struct zsec_keys *own, const char *server_public_z85,
		       char *err, size_t errlen)
{
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public_z85, ZSEC_Z85_LEN) < 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, own->public_z85, ZSEC_Z85_LEN) < 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, own->secret_z85, ZSEC_Z85_LEN) < 0) {
		snprintf(err, errlen, "cannot set CURVE options: %s", zmq_strerror(zmq_errno()));
		return -1;
	}
	return 0;
}

int zsec_keys_from_config(const char *secret_setting, struct zsec_keys *own, struct zsec_keys *hub)
{
	const char *own_path = config_str(secret_setting), *hub_path = config_str("hub.public_key");
	struct zsec_keys hub_keys;
	char err[512];
	if (*own_path == '\0' && *hub_path == '\0')
		return 0;
	if (*own_path == '\0' || *hub_path == '\0') {
		log_errorx("%s: CurveZMQ needs both hub.public_key and %s (only %s is set)",
			   __func__, secret_setting, *own_path ? secret_setting : "hub.public_key");
		return -1;
	}
	if (!zsec_available()) {
		log_errorx("%s: %s is set, but this libzmq has no CURVE support", __func__,
			   secret_setting);
		return -1;
	}
	if (zsec_keys_load(hub_path, 0, hub ? hub : &hub_keys, err, sizeof(err)) < 0 ||
	    zsec_keys_load(own_path, 1, own, err, sizeof(err)) < 0) {
		log_errorx("%s: %s", __func__, err);
		return -1;
	}
	return 1;
}

int zsec_client_from_config(void *sock, const char *secret_setting)
{
	struct zsec_keys own, hub;
	char err[512];
	int rc = zsec_keys_from_config(secret_setting, &own, &hub);
	if (rc <= 0)
		return rc;
	if (zsec_client_socket(sock, &own, hub.public_z85, err, sizeof(err)) < 0) {
		log_errorx("%s: %s", __func__, err);
		return -1;
	}
	return 0;
}

/* --- the ZAP handler ------------------------------------------------------------------------ */

static void zap_free_values(struct map *m)
{
	void *v;
	for (size_t i = 0; (v = map_next(m, &i));)
		free(v);
	map_free(m);
}

int zsec_zap_reload(struct zsec_zap *z, char *err, size_t errlen)
{
	struct stat st;
	DIR *d = opendir(z->dir);
	if (d == NULL || fstat(dirfd(d), &st) < 0) {
		snprintf(err, errlen, "%s: %s", z->dir, strerror(errno));
		if (d)
			closedir(d);
		return -1;
	}
	struct map fresh;
	map_init(&fresh, offsetof(struct zsec_allowed, key), ZSEC_KEY_LEN);
	struct dirent *de;
	size_t slen = strlen(ZSEC_PUBLIC_SUFFIX);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (de->d_name[0] == '.' || n <= slen ||
		    strcmp(de->d_name + n - slen, ZSEC_PUBLIC_SUFFIX) != 0)
			continue;
		char path[4096], why[512];
		struct zsec_keys k;
		snprintf(path, sizeof(path), "%s/%s", z->dir, de->d_name);
		if (zsec_keys_load(path, 0, &k, why, sizeof(why)) < 0) {
			log_warnx("%s: skipped: %s", __func__, why);
			continue;
		}
		struct zsec_allowed *a = calloc(1, sizeof(*a));
		if (a == NULL || zmq_z85_decode(a->key, k.public_z85) == NULL) {
			free(a);
			continue;
		}
		size_t nlen = n - slen > ZSEC_NAME_MAX ? ZSEC_NAME_MAX : n - slen;
		memcpy(a->name, de->d_name, nlen);
		if (map_get(&fresh, a->key) != NULL) {
			log_warnx("%s: %s: the same key as another file", __func__, path);
			free(a);
		} else if (map_put(&fresh, a) < 0) {
			free(a);
		}
	}
	closedir(d);
	zap_free_values(&z->allowed);
	z->allowed = fresh;
	z->dir_mtime = st.st_mtim;
	log_info("%zu key%s allowed (the *" ZSEC_PUBLIC_SUFFIX " files of %s)", map_len(&fresh),
		 map_len(&fresh) == 1 ? "" : "s", z->dir);
	return 0;
}

/* Binds the handler's socket: the last step of either way to open one. */
static int zap_bind(struct zsec_zap *z, void *ctx, char *err, size_t errlen)
{
	int zero = 0;
	z->sock = zmq_socket(ctx, ZMQ_REP);
	if (z->sock == NULL || zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_bind(z->sock, ZSEC_ZAP_ENDPOINT) < 0) {
		snprintf(err, errlen, "cannot bind the ZAP handler: %s", zmq_strerror(zmq_errno()));
		zsec_zap_close(z);
		return -1;
	}
	return 0;
}

int zsec_zap_open(struct zsec_zap *z, void *ctx, const char *allow_dir, char *err, size_t errlen)
{
	memset(z, 0, sizeof(*z));
	map_init(&z->allowed, offsetof(struct zsec_allowed, key), ZSEC_KEY_LEN);
	map_init(&z->refused, offsetof(struct zsec_refused, key), ZSEC_KEY_LEN);
	if (allow_dir == NULL || *allow_dir == '\0') {
		snprintf(err, errlen, "no folder of allowed keys");
		return -1;
	}
	z->dir = strdup(allow_dir);
	z->source = strdup(allow_dir);
	if (z->dir == NULL || z->source == NULL || zsec_zap_reload(z, err, errlen) < 0) {
		if (z->dir && z->source == NULL)
			snprintf(err, errlen, "out of memory");
		zsec_zap_close(z);
		return -1;
	}
	return zap_bind(z, ctx, err, errlen);
}

int zsec_zap_open_given(struct zsec_zap *z, void *ctx, const char *source, char *err, size_t errlen)
{
	memset(z, 0, sizeof(*z));
	map_init(&z->allowed, offsetof(struct zsec_allowed, key), ZSEC_KEY_LEN);
	map_init(&z->refused, offsetof(struct zsec_refused, key), ZSEC_KEY_LEN);
	z->source = strdup(source);
	if (z->source == NULL) {
		snprintf(err, errlen, "out of memory");
		zsec_zap_close(z);
		return -1;
	}
	return zap_bind(z, ctx, err, errlen);
}

/* One allowed key, named name; NULL out of memory. */
static struct zsec_allowed *zap_allowed_new(const uint8_t *key, const char *name)
{
	struct zsec_allowed *a = calloc(1, sizeof(*a));
	if (a != NULL) {
		memcpy(a->key, key, ZSEC_KEY_LEN);
		snprintf(a->name, sizeof(a->name), "%s", name);
	}
	return a;
}

int zsec_zap_allow(struct zsec_zap *z, const uint8_t *keys, size_t n, const char *name, int replace)
{
	struct map fresh;
	size_t same = 0, added = 0;
	map_init(&fresh, offsetof(struct zsec_allowed, key), ZSEC_KEY_LEN);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *key = keys + i * ZSEC_KEY_LEN;
		struct map *into = replace ? &fresh : &z->allowed;
		if (map_get(into, key) != NULL)
			continue;
		struct zsec_allowed *a = zap_allowed_new(key, name);
		if (a == NULL || map_put(into, a) < 0) {
			free(a);
			zap_free_values(&fresh);
			return -1; /* replacing: the keys before stay; adding: those added so far */
		}
		added++;
		same += replace && map_get(&z->allowed, key) != NULL;
	}
	if (!replace)
		return added > 0;
	int changed = same != map_len(&fresh) || same != map_len(&z->allowed);
	zap_free_values(&z->allowed);
	z->allowed = fresh;
	return changed;
}

void zsec_zap_close(struct zsec_zap *z)
{
	if (z->sock)
		zmq_close(z->sock);
	z->sock = NULL;
	zap_free_values(&z->allowed);
	zap_free_values(&z->refused);
	free(z->dir);
	free(z->source);
	z->dir = z->source = NULL;
}

/* The folder changed since it was read (a key file added or removed): read it again. */
static void zap_refresh(struct zsec_zap *z)
{
	struct stat st;
	char err[512];
	if (z->dir == NULL)
		return; /* the owner gives the keys */
	if (stat(z->dir, &st) < 0) {
		log_warnx("%s: %s: %s (keeping the keys read before)", __func__, z->dir,
			  strerror(errno));
		return;
	}
	if (st.st_mtim.tv_sec == z->dir_mtime.tv_sec && st.st_mtim.tv_nsec == z->dir_mtime.tv_nsec)
		return;
	if (zsec_zap_reload(z, err, sizeof(err)) < 0)
		log_warnx("%s: %s (keeping the keys read before)", __func__, err);
}

/* A frame as a C string, cut to fit and with anything unprintable shown as '?'. */
static void zap_text(const char *frame, size_t len, char *out, size_t outlen)
{
	size_t n = len < outlen - 1 ? len : outlen - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = isprint((unsigned char)frame[i]) ? frame[i] : '?';
	out[n] = '\0';
}

static void zap_refused_log(struct zsec_zap *z, const uint8_t *key, const char *domain,
			    const char *address)
{
	if (map_get(&z->refused, key) != NULL)
		return;
	if (map_len(&z->refused) >= ZSEC_REFUSED_REMEMBER) {
		if (!z->refused_full_logged)
			log_warnx("refused more than %d unknown keys: no longer naming each one",
				  ZSEC_REFUSED_REMEMBER);
		z->refused_full_logged = 1;
		return;
	}
	struct zsec_refused *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return;
	memcpy(r->key, key, ZSEC_KEY_LEN);
	if (map_put(&z->refused, r) < 0) {
		free(r);
		return;
	}
	char z85[ZSEC_Z85_LEN + 1];
	zmq_z85_encode(z85, key, ZSEC_KEY_LEN);
	log_warnx("refused a connection to %s from %s: its key %s is not in %s (logged once per "
		  "key)",
		  domain, address, z85, z->source);
}

/* Decides on one request: fills status, reason and the User-Id (the key in Z85, so that the
 * owner of a socket knows who sent a message: zmq_msg_gets(msg, "User-Id")). */
static void zap_decide(struct zsec_zap *z, const zmq_msg_t *f, int nframes, const char **status,
		       const char **reason, char user[ZSEC_Z85_LEN + 1])
{
	char domain[ZAP_FRAME_MAX], address[ZAP_FRAME_MAX];
	*status = "400";
	*reason = "key not allowed";
	user[0] = '\0';
	if (nframes != ZAP_FRAMES || zmq_msg_size(&f[ZAP_VERSION]) != 3 ||
	    memcmp(zmq_msg_data((zmq_msg_t *)&f[ZAP_VERSION]), "1.0", 3) != 0) {
		*status = "500";
		*reason = "malformed ZAP request";
		return;
	}
	size_t mlen = zmq_msg_size(&f[ZAP_MECHANISM]);
	if (mlen != 5 || memcmp(zmq_msg_data((zmq_msg_t *)&f[ZAP_MECHANISM]), "CURVE", 5) != 0 ||
	    zmq_msg_size(&f[ZAP_CREDENTIAL]) != ZSEC_KEY_LEN) {
		*reason = "CURVE only";
		return;
	}
	const uint8_t *key = zmq_msg_data((zmq_msg_t *)&f[ZAP_CREDENTIAL]);
	zap_refresh(z);
	const struct zsec_allowed *a = map_get(&z->allowed, key);
	if (a != NULL) {
		z->accepted++;
		*status = "200";
		*reason = "OK";
		zmq_z85_encode(user, a->key, ZSEC_KEY_LEN);
		log_debug("let in %s (%s)", a->name, user);
		return;
	}
	z->refused_total++;
	zap_text(zmq_msg_data((zmq_msg_t *)&f[ZAP_DOMAIN]), zmq_msg_size(&f[ZAP_DOMAIN]), domain,
		 sizeof(domain));
	zap_text(zmq_msg_data((zmq_msg_t *)&f[ZAP_ADDRESS]), zmq_msg_size(&f[ZAP_ADDRESS]), address,
		 sizeof(address));
	zap_refused_log(z, key, domain, address);
}

int zsec_zap_drain(struct zsec_zap *z)
{
	int answered = 0;
	for (;;) {
		zmq_msg_t f[ZAP_FRAMES + 1];
		int nframes = 0, more = 1, failed = 0;
		while (more) {
			zmq_msg_t *m = &f[nframes < ZAP_FRAMES ? nframes : ZAP_FRAMES];
			zmq_msg_init(m);
			if (zmq_msg_recv(m, z->sock, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(m);
				failed = 1;
				break;
			}
			more = zmq_msg_more(m);
			if (nframes < ZAP_FRAMES)
				nframes++;
			else
				zmq_msg_close(m); /* extra credentials: not ours to read */
		}
		if (failed && nframes == 0)
			return answered; /* nothing waiting (EAGAIN) */
		const char *status = "500", *reason = "malformed ZAP request";
		char user[ZSEC_Z85_LEN + 1] = "";
		if (!failed)
			zap_decide(z, f, nframes, &status, &reason, user);
		const char *rid = nframes > ZAP_REQUEST_ID ? zmq_msg_data(&f[ZAP_REQUEST_ID]) : "";
		size_t rid_len = nframes > ZAP_REQUEST_ID ? zmq_msg_size(&f[ZAP_REQUEST_ID]) : 0;
		/* The reply: version, request id, status code, status text, user id, metadata. */
		zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
		zmq_send(z->sock, rid, rid_len, ZMQ_SNDMORE);
		zmq_send(z->sock, status, strlen(status), ZMQ_SNDMORE);
		zmq_send(z->sock, reason, strlen(reason), ZMQ_SNDMORE);
		zmq_send(z->sock, user, strlen(user), ZMQ_SNDMORE);
		zmq_send(z->sock, "", 0, 0);
		for (int i = 0; i < nframes; i++)
			zmq_msg_close(&f[i]);
		answered++;
	}
}
