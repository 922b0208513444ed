/*
 * hubproto.c — builds and parses hub protocol messages (see hubproto.h, docs/HUB-PROTOCOL.md).
 *
 * One table describes every command: its name, the size of its list elements (0: no list frame)
 * and whether it carries a data frame. Both the parser and the sender follow that table, so a
 * message can only be built in the shape it is parsed in.
 */
#include "hubproto.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Where a ROUTE entry (HUBPROTO_ROUTE_ENTRY) has its fields: token at 0, hash at 8. */
#define HUBPROTO_ROUTE_CONN_AT (8 + HASH_LEN)
#define HUBPROTO_ROUTE_PEER_AT (16 + HASH_LEN)

struct hubproto_shape {
	uint8_t cmd;
	const char *name;
	size_t list_elem; /* 0: no list frame */
	int has_data;
	size_t max_data;
};

static const struct hubproto_shape hubproto_shapes[] = {
    {HUB_HELLO, "HELLO", 0, 1, HUBPROTO_MAX_NAME + 1 + HUBPROTO_MAX_ENDPOINT},
    {HUB_HEARTBEAT, "HEARTBEAT", 8, 0, 0},
    {HUB_CONN_OPEN, "CONN_OPEN", 0, 0, 0},
    {HUB_CONN_CLOSE, "CONN_CLOSE", 0, 0, 0},
    {HUB_HAVE, "HAVE", HASH_LEN, 0, 0},
    {HUB_DROP, "DROP", HASH_LEN, 0, 0},
    {HUB_WANT, "WANT", HUBPROTO_CONN_KEY_LEN, 0, 0},
    {HUB_BLOB, "BLOB", HUBPROTO_BLOB_ENTRY, 0, 0},
    {HUB_FAIL, "FAIL", 0, 0, 0},
    {HUB_DELIVERED, "DELIVERED", HUBPROTO_DELIVERED_ENTRY, 0, 0},
    {HUB_UNDELIVERED, "UNDELIVERED", 8, 1, HUBPROTO_MAX_ENDPOINT},
    {HUB_FILE, "FILE", HUBPROTO_FILE_ENTRY, 0, 0},
    {HUB_WELCOME, "WELCOME", 0, 0, 0},
    {HUB_PING, "PING", 0, 0, 0},
    {HUB_RESET, "RESET", 0, 0, 0},
    {HUB_REQUEST, "REQUEST", HUBPROTO_ROUTE_ENTRY, 1, HUBPROTO_MAX_ROUTE_DATA},
    {HUB_NOT_FOUND, "NOT_FOUND", 0, 0, 0},
    {HUB_COUNT, "COUNT", HUBPROTO_COUNT_ENTRY, 0, 0},
    {HUB_ROUTE, "ROUTE", HUBPROTO_ROUTE_ENTRY, 1, HUBPROTO_MAX_ROUTE_DATA},
    {HUB_PEER_KEYS, "PEER_KEYS", ZSEC_KEY_LEN, 0, 0},
    {HUB_LOOKUP, "LOOKUP", 0, 0, 0},
    {HUB_STATS, "STATS", 0, 0, 0},
    {HUB_FILES, "FILES", 0, 0, 0},
    {HUB_LOOKUP_REPLY, "LOOKUP_REPLY", 0, 0, 0},
    {HUB_STATS_REPLY, "STATS_REPLY", 0, 1, 1024 * 1024},
    {HUB_FILES_REPLY, "FILES_REPLY", HUBPROTO_COUNT_ENTRY, 0, 0},
    {HUB_DELIVER, "DELIVER", 8, 1, HASH_LEN + BLOB_MAX},
};

static const struct hubproto_shape *hubproto_shape(uint8_t cmd)
{
	for (size_t i = 0; i < sizeof(hubproto_shapes) / sizeof(hubproto_shapes[0]); i++)
		if (hubproto_shapes[i].cmd == cmd)
			return &hubproto_shapes[i];
	return NULL;
}

const char *hubproto_cmd_name(uint8_t cmd)
{
	const struct hubproto_shape *s = hubproto_shape(cmd);
	return s ? s->name : "UNKNOWN";
}

size_t hubproto_hello_data(char *buf, const char *name, const char *endpoint)
{
	size_t name_len = strnlen(name, HUBPROTO_MAX_NAME);
	size_t ep_len = strnlen(endpoint, HUBPROTO_MAX_ENDPOINT);
	memcpy(buf, name, name_len);
	buf[name_len] = '\0';
	memcpy(buf + name_len + 1, endpoint, ep_len);
	return name_len + 1 + ep_len;
}

int hubproto_hello_parse(const struct hubmsg *m, const char **name, size_t *name_len,
			 char endpoint[HUBPROTO_MAX_ENDPOINT + 1])
{
	const uint8_t *nul = memchr(m->data, '\0', m->data_len);
	size_t nlen = nul ? (size_t)(nul - m->data) : m->data_len;
	size_t ep_len = nul ? m->data_len - nlen - 1 : 0;
	if (nlen > HUBPROTO_MAX_NAME || ep_len > HUBPROTO_MAX_ENDPOINT)
		return -1;
	*name = (const char *)m->data;
	*name_len = nlen;
	if (ep_len)
		memcpy(endpoint, nul + 1, ep_len);
	endpoint[ep_len] = '\0';
	return 0;
}

int hubproto_parse(struct hubmsg *m, const uint8_t *header, size_t header_len, const uint8_t *list,
		   size_t list_len, int has_list, const uint8_t *data, size_t data_len,
		   int has_data)
{
	const struct hubproto_shape *s;

	m->error = NULL;
	if (header_len != HUBPROTO_HEADER_LEN || header[0] != 'E' || header[1] != 'P') {
		m->error = "bad header";
		return -1;
	}
	if (header[2] != HUBPROTO_VERSION) {
		m->error = "unsupported protocol version";
		return -1;
	}
	s = hubproto_shape(header[3]);
	if (s == NULL) {
		m->error = "unknown command";
		return -1;
	}
	if (has_list != (s->list_elem != 0) || has_data != s->has_data) {
		m->error = "wrong number of frames for command";
		return -1;
	}
	if (has_list && list_len % s->list_elem != 0) {
		m->error = "list frame is not a whole number of elements";
		return -1;
	}
	if (has_data && data_len > s->max_data) {
		m->error = "data frame too large";
		return -1;
	}
	m->cmd = header[3];
	m->id = get_u64(header + 4);
	memcpy(m->hash, header + 12, HASH_LEN);
	m->value = get_u32(header + 44);
	m->list = has_list ? list : NULL;
	m->list_count = has_list ? list_len / s->list_elem : 0;
	m->data = has_data ? data : NULL;
	m->data_len = has_data ? data_len : 0;
	return 0;
}

void hubmsg_close(struct hubmsg *m)
{
	for (int i = 0; i < m->nframes; i++)
		zmq_msg_close(&m->frames[i]);
	m->nframes = 0;
	m->data_frame = NULL;
}

/* Reads and discards the rest of a multipart message. */
static void hubproto_discard_rest(void *sock)
{
	int more = 1;
	size_t sz = sizeof(more);
	while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
		zmq_msg_t part;
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, sock, 0) < 0) {
			zmq_msg_close(&part);
			return;
		}
		zmq_msg_close(&part);
	}
}

int hubproto_recv(void *sock, struct hubmsg *m, int peer_frame)
{
	zmq_msg_t part;
	int more;

	m->nframes = 0;
	m->peer_len = 0;
	m->data_frame = NULL;
	m->error = NULL;
	zmq_msg_init(&part);
	if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&part);
		return 0;
	}
	if (peer_frame) {
		size_t n = zmq_msg_size(&part);
		more = zmq_msg_more(&part);
		if (n > HUBPROTO_MAX_PEER || !more) {
			zmq_msg_close(&part);
			if (more)
				hubproto_discard_rest(sock);
			m->error = "bad routing frame";
			return -1;
		}
		memcpy(m->peer, zmq_msg_data(&part), n);
		m->peer_len = n;
		zmq_msg_close(&part);
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, sock, 0) < 0) {
			zmq_msg_close(&part);
			m->error = "truncated message";
			return -1;
		}
	}
	for (;;) {
		more = zmq_msg_more(&part);
		if (m->nframes == 3) {
			zmq_msg_close(&part);
			if (more)
				hubproto_discard_rest(sock);
			hubmsg_close(m);
			m->error = "too many frames";
			return -1;
		}
		zmq_msg_init(&m->frames[m->nframes]);
		zmq_msg_move(&m->frames[m->nframes++], &part);
		zmq_msg_close(&part);
		if (!more)
			break;
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, sock, 0) < 0) {
			zmq_msg_close(&part);
			hubmsg_close(m);
			m->error = "truncated message";
			return -1;
		}
	}

	/* The header says whether a list frame comes before the data frame. */
	const uint8_t *h = zmq_msg_data(&m->frames[0]);
	size_t hlen = zmq_msg_size(&m->frames[0]);
	const struct hubproto_shape *s = hlen == HUBPROTO_HEADER_LEN ? hubproto_shape(h[3]) : NULL;
	int has_list = s && s->list_elem && m->nframes >= 2;
	int data_idx = has_list ? 2 : 1;
	int has_data = m->nframes > data_idx;
	if (m->nframes > 1 + has_list + has_data) {
		hubmsg_close(m);
		m->error = "wrong number of frames for command";
		return -1;
	}
	int rc = hubproto_parse(m, h, hlen, has_list ? zmq_msg_data(&m->frames[1]) : NULL,
				has_list ? zmq_msg_size(&m->frames[1]) : 0, has_list,
				has_data ? zmq_msg_data(&m->frames[data_idx]) : NULL,
				has_data ? zmq_msg_size(&m->frames[data_idx]) : 0, has_data);
	if (rc < 0) {
		const char *why = m->error;
		hubmsg_close(m);
		m->error = why;
		return -1;
	}
	if (has_data)
		m->data_frame = &m->frames[data_idx];
	return 1;
}

/* Makes the data frame of o. On success, o->data is zmq's if o->data_free was set (*passed). */
static int hubproto_data_frame(zmq_msg_t *data, const struct hubproto_out *o, int *passed)
{
	*passed = 0;
	if (o->data_msg) {
		zmq_msg_init(data);
		if (zmq_msg_copy(data, o->data_msg) < 0) {
			int saved = errno;
			zmq_msg_close(data);
			errno = saved;
			return -1;
		}
		return 0;
	}
	if (o->data_free) {
		if (zmq_msg_init_data(data, (void *)o->data, o->data_len, o->data_free,
				      o->data_hint) < 0)
			return -1;
		*passed = 1;
		return 0;
	}
	if (zmq_msg_init_size(data, o->data_len) < 0)
		return -1;
	if (o->data_len)
		memcpy(zmq_msg_data(data), o->data, o->data_len);
	return 0;
}

int hubproto_send(void *sock, const uint8_t *peer, size_t peer_len, const struct hubproto_out *o)
{
	const struct hubproto_shape *s = hubproto_shape(o->cmd);
	uint8_t header[HUBPROTO_HEADER_LEN] = {'E', 'P', HUBPROTO_VERSION, o->cmd};
	zmq_msg_t data;
	int has_data = 0, passed = 0;

	if (s == NULL) {
		errno = EINVAL;
		goto out;
	}
	put_u64(header + 4, o->id);
	if (o->hash)
		memcpy(header + 12, o->hash, HASH_LEN);
	put_u32(header + 44, o->value);

	/* The data frame is made before any frame is queued: ZeroMQ delivers a multipart message
	 * whole, so once its first frame is queued the rest cannot fail for lack of room, and
	 * nothing after that may fail for lack of memory either (it would leave half a message). */
	if (s->has_data) {
		if (hubproto_data_frame(&data, o, &passed) < 0)
			goto out;
		has_data = 1;
	}
	if (peer && zmq_send(sock, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		goto out;
	if (zmq_send(sock, header, sizeof(header),
		     ZMQ_DONTWAIT | (s->list_elem || s->has_data ? ZMQ_SNDMORE : 0)) < 0)
		goto out;
	if (s->list_elem && zmq_send(sock, o->list ? o->list : "", o->list_count * s->list_elem,
				     ZMQ_DONTWAIT | (s->has_data ? ZMQ_SNDMORE : 0)) < 0)
		goto out;
	if (has_data) {
		if (zmq_msg_send(&data, sock, ZMQ_DONTWAIT) < 0)
			goto out;
	} else if (o->data_free) {
		o->data_free((void *)o->data, o->data_hint); /* no data frame: nothing to keep */
	}
	return 0;
out : {
	int saved = errno;
	if (has_data)
		zmq_msg_close(&data); /* frees o->data through data_free if it was passed */
	if (!passed && o->data_free)
		o->data_free((void *)o->data, o->data_hint);
	errno = saved;
	return -1;
}
}

const char *hubmsg_user_id(struct hubmsg *m)
{
	const char *id = m->nframes > 0 ? zmq_msg_gets(&m->frames[0], "User-Id") : NULL;
	return id && *id ? id : NULL;
}

size_t hubproto_peer_address(uint8_t *out, const char *endpoint, const char *public_z85)
{
	size_t elen = strlen(endpoint), klen = public_z85 ? strlen(public_z85) : 0;
	if (elen > HUBPROTO_MAX_ENDPOINT || (klen != 0 && klen != ZSEC_Z85_LEN))
		return 0;
	memcpy(out, endpoint, elen);
	if (klen == 0)
		return elen;
	out[elen] = '\0';
	memcpy(out + elen + 1, public_z85, klen);
	return elen + 1 + klen;
}

int hubproto_peer_address_parse(const uint8_t *data, size_t len, struct hubproto_peer_address *out,
				const char **why)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return 0; /* the holder's own waiters (data may be NULL) */
	const uint8_t *nul = memchr(data, '\0', len);
	size_t elen = nul ? (size_t)(nul - data) : len;
	size_t klen = nul ? len - elen - 1 : 0;
	uint8_t raw[ZSEC_KEY_LEN];
	if (elen > HUBPROTO_MAX_ENDPOINT) {
		*why = "peer endpoint too long";
		return -1;
	}
	memcpy(out->endpoint, data, elen);
	if (nul == NULL)
		return 0;
	if (klen != ZSEC_Z85_LEN) {
		*why = "peer key is not 40 Z85 characters";
		return -1;
	}
	memcpy(out->public_z85, nul + 1, klen);
	if (strlen(out->public_z85) != ZSEC_Z85_LEN ||
	    zmq_z85_decode(raw, out->public_z85) == NULL) {
		*why = "peer key is not Z85";
		return -1;
	}
	return 0;
}

void *hubproto_socket(void *ctx, int type)
{
	void *sock = zmq_socket(ctx, type);
	int zero = 0, hwm = 100000;
	if (sock == NULL)
		return NULL;
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	return sock;
}

void hubproto_conn_key(uint8_t key[HUBPROTO_CONN_KEY_LEN], uint64_t conn,
		       const uint8_t hash[HASH_LEN])
{
	memcpy(key, &conn, 8);
	memcpy(HUBPROTO_CONN_KEY_HASH(key), hash, HASH_LEN);
}

void hubproto_conn_entry(uint8_t e[HUBPROTO_CONN_KEY_LEN], uint64_t conn,
			 const uint8_t hash[HASH_LEN])
{
	put_u64(e, conn);
	memcpy(HUBPROTO_CONN_KEY_HASH(e), hash, HASH_LEN);
}

/* Makes room for one more entry of elem bytes in a growing list; -1 when out of memory. */
static int hubproto_list_room(uint8_t **list, size_t len, size_t *cap, size_t elem)
{
	if (len + elem <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 64 * elem;
	uint8_t *n = realloc(*list, ncap);
	if (n == NULL)
		return -1;
	*list = n;
	*cap = ncap;
	return 0;
}

int hubproto_list_put(uint8_t **list, size_t *len, size_t *cap, const void *entry, size_t elem)
{
	if (hubproto_list_room(list, *len, cap, elem) < 0)
		return -1;
	memcpy(*list + *len, entry, elem);
	*len += elem;
	return 0;
}

int hubproto_count_put(uint8_t **list, size_t *len, size_t *cap, const uint8_t hash[HASH_LEN],
		       uint32_t viewers)
{
	if (hubproto_list_room(list, *len, cap, HUBPROTO_COUNT_ENTRY) < 0)
		return -1;
	memcpy(*list + *len, hash, HASH_LEN);
	put_u32(*list + *len + HASH_LEN, viewers);
	*len += HUBPROTO_COUNT_ENTRY;
	return 0;
}

json_t *hubproto_manifests_json(const uint8_t *list, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		char hex[HASH_HEX_LEN + 1];
		const uint8_t *e = list + i * HUBPROTO_COUNT_ENTRY;
		hash_to_hex(e, hex);
		json_array_append_new(arr, json_pack("{s:s, s:I}", "hash", hex, "viewers",
						     (json_int_t)get_u32(e + HASH_LEN)));
	}
	return arr;
}

int hubproto_delivered_put(uint8_t **list, size_t *len, size_t *cap, uint64_t token,
			   uint32_t deliveries)
{
	if (hubproto_list_room(list, *len, cap, HUBPROTO_DELIVERED_ENTRY) < 0)
		return -1;
	hubproto_delivered_entry(*list + *len, token, deliveries);
	*len += HUBPROTO_DELIVERED_ENTRY;
	return 0;
}

void hubproto_delivered_entry(uint8_t e[HUBPROTO_DELIVERED_ENTRY], uint64_t token,
			      uint32_t deliveries)
{
	put_u64(e, token);
	put_u32(e + 8, deliveries);
}

uint64_t hubproto_delivered_get(const uint8_t *list, size_t i, uint32_t *deliveries)
{
	const uint8_t *e = list + i * HUBPROTO_DELIVERED_ENTRY;
	*deliveries = get_u32(e + 8);
	return get_u64(e);
}

int hubproto_blob_put(uint8_t **list, size_t *len, size_t *cap, uint64_t token,
		      const uint8_t hash[HASH_LEN], uint32_t size, uint64_t holder,
		      uint32_t delivered)
{
	if (hubproto_list_room(list, *len, cap, HUBPROTO_BLOB_ENTRY) < 0)
		return -1;
	hubproto_blob_entry(*list + *len, token, hash, size, holder, delivered);
	*len += HUBPROTO_BLOB_ENTRY;
	return 0;
}

#define HUBPROTO_BLOB_SIZE_AT	(8 + HASH_LEN)
#define HUBPROTO_BLOB_HOLDER_AT (8 + HASH_LEN + 4)
#define HUBPROTO_BLOB_NAMED_AT	(8 + HASH_LEN + 4 + 8)

void hubproto_blob_entry(uint8_t e[HUBPROTO_BLOB_ENTRY], uint64_t token,
			 const uint8_t hash[HASH_LEN], uint32_t size, uint64_t holder,
			 uint32_t delivered)
{
	put_u64(e, token);
	memcpy(e + 8, hash, HASH_LEN);
	put_u32(e + HUBPROTO_BLOB_SIZE_AT, size);
	put_u64(e + HUBPROTO_BLOB_HOLDER_AT, holder);
	put_u32(e + HUBPROTO_BLOB_NAMED_AT, delivered);
}

void hubproto_blob_set_delivered(uint8_t *list, size_t i, uint32_t delivered)
{
	put_u32(list + i * HUBPROTO_BLOB_ENTRY + HUBPROTO_BLOB_NAMED_AT, delivered);
}

int hubproto_carries_settled(uint8_t cmd)
{
	return cmd == HUB_REQUEST || cmd == HUB_ROUTE || cmd == HUB_COUNT;
}

struct hubproto_blob hubproto_blob_get(const uint8_t *list, size_t i)
{
	const uint8_t *e = list + i * HUBPROTO_BLOB_ENTRY;
	return (struct hubproto_blob){.token = get_u64(e),
				      .hash = e + 8,
				      .size = get_u32(e + HUBPROTO_BLOB_SIZE_AT),
				      .holder = get_u64(e + HUBPROTO_BLOB_HOLDER_AT),
				      .delivered = get_u32(e + HUBPROTO_BLOB_NAMED_AT)};
}

int hubproto_routes_peer(struct hubproto_routes *r, const uint8_t *addr, size_t addr_len)
{
	if (addr_len == 0)
		return 0;
	size_t off = 0;
	for (size_t i = 0; i < r->npeers; i++) {
		size_t n = get_u16(r->peers + off);
		if (n == addr_len && memcmp(r->peers + off + 2, addr, n) == 0)
			return (int)i + 1;
		off += 2 + n;
	}
	if (addr_len > HUBPROTO_MAX_PEER_ADDRESS ||
	    r->peers_len + 2 + addr_len > HUBPROTO_MAX_ROUTE_DATA || r->npeers >= 0xffff)
		return -1;
	uint8_t entry[2 + HUBPROTO_MAX_PEER_ADDRESS];
	put_u16(entry, (uint16_t)addr_len);
	memcpy(entry + 2, addr, addr_len);
	if (hubproto_list_put(&r->peers, &r->peers_len, &r->peers_cap, entry, 2 + addr_len) < 0)
		return -1;
	return (int)++r->npeers;
}

int hubproto_routes_put(struct hubproto_routes *r, uint64_t token, const uint8_t hash[HASH_LEN],
			uint64_t conn, int peer)
{
	if (hubproto_list_room(&r->list, r->list_len, &r->list_cap, HUBPROTO_ROUTE_ENTRY) < 0)
		return -1;
	uint8_t *e = r->list + r->list_len;
	put_u64(e, token);
	memcpy(e + 8, hash, HASH_LEN);
	put_u64(e + HUBPROTO_ROUTE_CONN_AT, conn);
	put_u16(e + HUBPROTO_ROUTE_PEER_AT, (uint16_t)peer);
	r->list_len += HUBPROTO_ROUTE_ENTRY;
	return 0;
}

struct hubproto_out hubproto_routes_message(const struct hubproto_routes *r, uint8_t cmd)
{
	struct hubproto_out o = {.cmd = cmd,
				 .list = r->list,
				 .list_count = r->list_len / HUBPROTO_ROUTE_ENTRY,
				 .data = r->peers,
				 .data_len = r->peers_len};
	return o;
}

void hubproto_routes_clear(struct hubproto_routes *r)
{
	r->list_len = r->peers_len = r->npeers = 0;
}

void hubproto_routes_free(struct hubproto_routes *r)
{
	free(r->list);
	free(r->peers);
	memset(r, 0, sizeof(*r));
}

/* Whether two ROUTE entries are of one blob (token and hash). */
static int hubproto_route_same_blob(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, 8 + HASH_LEN) == 0;
}

/* The peer address numbered peer (1: the first) in ROUTE's table; -1 when there is none. */
static int hubproto_route_peer_find(const struct hubmsg *m, unsigned peer, const uint8_t **addr,
				    size_t *len)
{
	size_t off = 0;
	for (unsigned i = 1; off + 2 <= m->data_len; i++) {
		size_t n = get_u16(m->data + off);
		if (off + 2 + n > m->data_len)
			return -1;
		if (i == peer) {
			*addr = m->data + off + 2;
			*len = n;
			return 0;
		}
		off += 2 + n;
	}
	return -1;
}

int hubproto_route_next(const struct hubmsg *m, size_t *it, struct hubproto_route *r,
			uint8_t *conns, const char **why)
{
	if (*it >= m->list_count)
		return 0;
	const uint8_t *first = m->list + *it * HUBPROTO_ROUTE_ENTRY;
	unsigned peer = get_u16(first + HUBPROTO_ROUTE_PEER_AT);
	memset(r, 0, sizeof(*r));
	r->token = get_u64(first);
	r->hash = first + 8;
	if (peer != 0 && hubproto_route_peer_find(m, peer, &r->addr, &r->addr_len) < 0) {
		*why = "a route names a peer its table does not have";
		return -1;
	}
	size_t i = *it;
	for (; i < m->list_count; i++) {
		const uint8_t *e = m->list + i * HUBPROTO_ROUTE_ENTRY;
		if (!hubproto_route_same_blob(e, first) ||
		    get_u16(e + HUBPROTO_ROUTE_PEER_AT) != peer)
			break;
		if (get_u64(e + HUBPROTO_ROUTE_CONN_AT) != 0)
			memcpy(conns + 8 * r->nconns++, e + HUBPROTO_ROUTE_CONN_AT, 8);
	}
	*it = i;
	r->last = i == m->list_count ||
		  !hubproto_route_same_blob(m->list + i * HUBPROTO_ROUTE_ENTRY, first);
	return 1;
}
