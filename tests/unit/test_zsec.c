/*
 * test_zsec.c — CurveZMQ: which endpoints count as loopback, the key file parser (cases as data),
 * keygen's files, and the ZAP handler over real TCP sockets: an allowed key gets through, an
 * unknown one is refused and remembered once, and a key file added later is let in without a
 * restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "util.h"
#include "zsec.h"

static void test_loopback(void **state)
{
	(void)state;
	static const struct {
		const char *endpoint;
		int loopback;
	} cases[] = {
	    {"tcp://127.0.0.1:5556", 1},
	    {"tcp://127.0.0.2:5556", 1},
	    {"tcp://127.255.255.254:1", 1},
	    {"tcp://localhost:5556", 1},
	    {"tcp://[::1]:5556", 1},
	    {"tcp://::1:5556", 1},
	    {"tcp://[::ffff:127.0.0.1]:5556", 1},
	    {"ipc:///run/ephemeral/hub.sock", 1},
	    {"inproc://hub", 1},
	    {"tcp://*:5556", 0},
	    {"tcp://0.0.0.0:5556", 0},
	    {"tcp://10.0.0.7:5556", 0},
	    {"tcp://128.0.0.1:5556", 0},
	    {"tcp://[::]:5556", 0},
	    {"tcp://eth0:5556", 0},
	    {"tcp://lo:5556", 0},
	    {"tcp://localhost.example.com:5556", 0},
	    {"tcp://127.0.0.1", 0},
	    {"tcp://:5556", 0},
	    {"ws://127.0.0.1:5556", 0},
	    {"pgm://127.0.0.1;239.192.1.1:5555", 0},
	    {"", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (zsec_endpoint_is_loopback(cases[i].endpoint) != cases[i].loopback)
			fail_msg("%s: expected %s", cases[i].endpoint,
				 cases[i].loopback ? "loopback" : "not loopback");
}

/* A key pair for the parser cases, and one that does not belong with it. */
static char pub[ZSEC_Z85_LEN + 1], sec[ZSEC_Z85_LEN + 1], other_pub[ZSEC_Z85_LEN + 1];

static int make_keys(void **state)
{
	(void)state;
	char other_sec[ZSEC_Z85_LEN + 1];
	if (zmq_curve_keypair(pub, sec) < 0 || zmq_curve_keypair(other_pub, other_sec) < 0)
		return -1;
	return 0;
}

static void test_parse(void **state)
{
	(void)state;
	static const struct {
		const char *text; /* %1$s public, %2$s secret, %3$s another public key */
		int need_secret;
		int ok;
		const char *error; /* part of the message */
	} cases[] = {
	    /* zcert's own layout */
	    {"#   ZeroMQ CURVE **Secret** Certificate\n\nmetadata\ncurve\n    public-key = "
	     "\"%1$s\"\n"
	     "    secret-key = \"%2$s\"\n",
	     1, 1, NULL},
	    {"curve\n    public-key = \"%1$s\"\n", 0, 1, NULL},
	    {"public-key=%1$s", 0, 1, NULL},
	    {"secret-key = \"%2$s\"\n", 1, 1, NULL}, /* the public key is derived */
	    {"curve\n    public-key = \"%1$s\"\n", 1, 0, "no secret-key"},
	    {"public-key = \"%3$s\"\nsecret-key = \"%2$s\"\n", 1, 0, "not one key pair"},
	    {"public-key = \"%1$s\"\npublic-key = \"%1$s\"\n", 0, 0, "a second public-key"},
	    {"public-key = \"abc\"\n", 0, 0, "not 40 Z85"},
	    {"public-key = \"%1$s\n", 0, 0, "not 40 Z85"},
	    {"public-key = \"%1$sX\"\n", 0, 0, "not 40 Z85"},
	    {"public-key = \"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\"\n", 0, 0, "not 40 Z85"},
	    {"# nothing here\n", 0, 0, "no public-key"},
	    {"", 0, 0, "no public-key"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512], err[256] = "";
		struct zsec_keys k;
		snprintf(text, sizeof(text), cases[i].text, pub, sec, other_pub);
		int rc =
		    zsec_keys_parse(text, strlen(text), cases[i].need_secret, &k, err, sizeof(err));
		if ((rc == 0) != cases[i].ok)
			fail_msg("case %zu: %s (%s)", i, cases[i].ok ? "refused" : "accepted", err);
		if (cases[i].ok) {
			assert_string_equal(k.public_z85, pub);
			if (cases[i].need_secret)
				assert_string_equal(k.secret_z85, sec);
		} else if (strstr(err, cases[i].error) == NULL) {
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].error);
		}
	}
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_zsec.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t len, const char *sub, const char *name)
{
	snprintf(out, len, "%s/%s%s%s", tmpdir, sub, *sub ? "/" : "", name);
}

static void test_keygen(void **state)
{
	(void)state;
	char base[256], path[300], err[512];
	struct zsec_keys made, pubk, seck;
	struct stat st;
	path_in(base, sizeof(base), "", "gw-b");
	assert_int_equal(zsec_keygen(base, &made, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s.secret", base);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(zsec_keys_load(path, 1, &seck, err, sizeof(err)), 0);
	assert_string_equal(seck.secret_z85, made.secret_z85);
	snprintf(path, sizeof(path), "%s.pub", base);
	assert_int_equal(zsec_keys_load(path, 0, &pubk, err, sizeof(err)), 0);
	assert_string_equal(pubk.public_z85, made.public_z85);
	assert_string_equal(pubk.secret_z85, "");
	/* The public file is no key pair, and nothing is ever overwritten. */
	assert_int_equal(zsec_keys_load(path, 1, &pubk, err, sizeof(err)), -1);
	assert_int_equal(zsec_keygen(base, &made, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not overwriting"));
	assert_int_equal(zsec_keys_load(path, 0, &pubk, err, sizeof(err)), 0);
	assert_string_equal(pubk.public_z85, seck.public_z85);
	path_in(base, sizeof(base), "", "a b");
	assert_int_equal(zsec_keygen(base, &made, err, sizeof(err)), -1);
}

/* --- the ZAP handler over TCP ---------------------------------------------------------------- */

struct zap_rig {
	void *ctx, *server;
	struct zsec_zap zap;
	struct zsec_keys server_keys;
	char endpoint[64];
	char user_id[ZSEC_Z85_LEN + 1]; /* of the last message received */
};

/* allow_dir NULL: the keys are given (zsec_zap_allow), as a gateway's peer endpoint has them. */
static void rig_open(struct zap_rig *r, const char *allow_dir)
{
	char err[512];
	memset(r, 0, sizeof(*r));
	r->ctx = zmq_ctx_new();
	assert_int_equal(zmq_curve_keypair(r->server_keys.public_z85, r->server_keys.secret_z85),
			 0);
	if (allow_dir)
		assert_int_equal(zsec_zap_open(&r->zap, r->ctx, allow_dir, err, sizeof(err)), 0);
	else
		assert_int_equal(
		    zsec_zap_open_given(&r->zap, r->ctx, "the hub's list", err, sizeof(err)), 0);
	r->server = zmq_socket(r->ctx, ZMQ_PULL);
	int zero = 0;
	zmq_setsockopt(r->server, ZMQ_LINGER, &zero, sizeof(zero));
	assert_int_equal(
	    zsec_server_socket(r->server, &r->server_keys, &r->zap, "test", err, sizeof(err)), 0);
	assert_int_equal(zmq_bind(r->server, "tcp://127.0.0.1:*"), 0);
	size_t len = sizeof(r->endpoint);
	zmq_getsockopt(r->server, ZMQ_LAST_ENDPOINT, r->endpoint, &len);
}

static void rig_close(struct zap_rig *r)
{
	zmq_close(r->server);
	zsec_zap_close(&r->zap);
	zmq_ctx_term(r->ctx);
}

/* Connects a PUSH with this key pair, sends "hi"; 1 if the server got it within ms. */
static int rig_try(struct zap_rig *r, const struct zsec_keys *client, int ms)
{
	char err[512], buf[8];
	int zero = 0, got = 0;
	void *c = zmq_socket(r->ctx, ZMQ_PUSH);
	zmq_setsockopt(c, ZMQ_LINGER, &zero, sizeof(zero));
	assert_int_equal(zsec_client_socket(c, client, r->server_keys.public_z85, err, sizeof(err)),
			 0);
	assert_int_equal(zmq_connect(c, r->endpoint), 0);
	while (zmq_recv(r->server, buf, sizeof(buf), ZMQ_DONTWAIT) >= 0)
		; /* what earlier clients left */
	/* A PUSH takes a message only once it has a connection: offer it until then. */
	int sent = 0;
	int64_t deadline = now_ms() + ms;
	while (!got && now_ms() < deadline) {
		if (!sent)
			sent = zmq_send(c, "hi", 2, ZMQ_DONTWAIT) == 2;
		zmq_pollitem_t items[] = {{r->server, 0, ZMQ_POLLIN, 0},
					  {r->zap.sock, 0, ZMQ_POLLIN, 0}};
		zmq_poll(items, 2, 20);
		zsec_zap_drain(&r->zap);
		zmq_msg_t msg;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, r->server, ZMQ_DONTWAIT) == 2) {
			const char *uid = zmq_msg_gets(&msg, "User-Id");
			snprintf(r->user_id, sizeof(r->user_id), "%s", uid ? uid : "");
			got = 1;
		}
		zmq_msg_close(&msg);
	}
	zmq_close(c);
	return got;
}

static void write_pub(const char *name, const struct zsec_keys *k)
{
	char path[300];
	path_in(path, sizeof(path), "allowed", name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "curve\n    public-key = \"%s\"\n", k->public_z85);
	fclose(f);
}

static void test_zap(void **state)
{
	(void)state;
	char dir[256];
	struct zsec_keys friend, stranger, late;
	assert_int_equal(zmq_curve_keypair(friend.public_z85, friend.secret_z85), 0);
	assert_int_equal(zmq_curve_keypair(stranger.public_z85, stranger.secret_z85), 0);
	assert_int_equal(zmq_curve_keypair(late.public_z85, late.secret_z85), 0);
	path_in(dir, sizeof(dir), "", "allowed");
	assert_int_equal(mkdir(dir, 0755), 0);
	write_pub("friend.pub", &friend);
	write_pub("stranger.txt", &stranger); /* not a .pub file: not read */

	struct zap_rig r;
	rig_open(&r, dir);
	assert_int_equal(map_len(&r.zap.allowed), 1);
	assert_true(rig_try(&r, &friend, 3000));
	assert_int_equal(r.zap.accepted, 1);
	assert_string_equal(r.user_id, friend.public_z85); /* who sent it, for the server */

	/* Refused, however often it tries; remembered (so logged) once. */
	assert_false(rig_try(&r, &stranger, 400));
	assert_false(rig_try(&r, &stranger, 400));
	assert_true(r.zap.refused_total >= 2);
	assert_int_equal(map_len(&r.zap.refused), 1);
	assert_false(rig_try(&r, &late, 400));
	assert_int_equal(map_len(&r.zap.refused), 2);

	/* A key file added to the folder counts at the next handshake. */
	usleep(20 * 1000); /* a modification time the folder has not had yet */
	write_pub("late.pub", &late);
	assert_true(rig_try(&r, &late, 3000));
	assert_int_equal(map_len(&r.zap.allowed), 2);
	rig_close(&r);

	/* No handler: no server socket, rather than one that lets every key in. */
	char err[256];
	struct zsec_zap closed;
	memset(&closed, 0, sizeof(closed));
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PULL);
	assert_int_equal(zsec_server_socket(s, &r.server_keys, &closed, "x", err, sizeof(err)), -1);
	assert_int_equal(zsec_server_socket(s, &r.server_keys, NULL, "x", err, sizeof(err)), -1);
	zmq_close(s);
	zmq_ctx_term(ctx);
}

/* A handler whose keys its owner gives (a gateway's peer endpoint, from the hub's PEER_KEYS). */
static void test_zap_given(void **state)
{
	(void)state;
	struct zsec_keys a, b;
	uint8_t keys[3][ZSEC_KEY_LEN];
	assert_int_equal(zmq_curve_keypair(a.public_z85, a.secret_z85), 0);
	assert_int_equal(zmq_curve_keypair(b.public_z85, b.secret_z85), 0);
	assert_non_null(zmq_z85_decode(keys[0], a.public_z85));
	assert_non_null(zmq_z85_decode(keys[1], b.public_z85));
	memcpy(keys[2], keys[1], ZSEC_KEY_LEN);

	struct zap_rig r;
	rig_open(&r, NULL);
	assert_null(r.zap.dir);
	assert_string_equal(r.zap.source, "the hub's list");
	assert_false(rig_try(&r, &a, 400)); /* nothing allowed until the owner says */
	assert_int_equal(zsec_zap_allow(&r.zap, keys[0], 1, "gateway", 1), 1);
	assert_int_equal(zsec_zap_allow(&r.zap, keys[0], 1, "gateway", 1), 0); /* the same set */
	assert_true(rig_try(&r, &a, 3000));
	assert_string_equal(r.user_id, a.public_z85);
	/* Replaced, not added to: a key left out is refused at its next handshake. Duplicates
	 * (gateways sharing a machine's key) count once. */
	assert_int_equal(zsec_zap_allow(&r.zap, keys[1], 2, "gateway", 1), 1);
	assert_int_equal(map_len(&r.zap.allowed), 1);
	assert_false(rig_try(&r, &a, 400));
	assert_true(rig_try(&r, &b, 3000));
	/* Added to (a gateway joined): the others stay. */
	assert_int_equal(zsec_zap_allow(&r.zap, keys[0], 1, "gateway", 0), 1);
	assert_int_equal(zsec_zap_allow(&r.zap, keys[1], 2, "gateway", 0), 0);
	assert_int_equal(map_len(&r.zap.allowed), 2);
	assert_true(rig_try(&r, &a, 3000));
	assert_true(rig_try(&r, &b, 3000));
	assert_int_equal(zsec_zap_allow(&r.zap, keys[0], 3, "gateway", 1), 0); /* the same two */
	rig_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_loopback),
	    cmocka_unit_test_setup(test_parse, make_keys),
	    cmocka_unit_test_setup_teardown(test_keygen, make_tmpdir, remove_tmpdir),
	    cmocka_unit_test_setup_teardown(test_zap, make_tmpdir, remove_tmpdir),
	    cmocka_unit_test(test_zap_given),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
