/*
 * fuzz_wsmsg.c — libFuzzer target for the ephemeral.v1 text messages.
 *
 * The bytes go to both parsers. A rejected message must carry one of the protocol's codes and a
 * terminated message; an accepted one must come back the same through the matching builder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct wsmsg msg, back; /* 16 KiB each: not on the stack */

static void check_error(const struct wsmsg_error *err)
{
	if (err->code == NULL ||
	    (strcmp(err->code, "bad_request") != 0 && strcmp(err->code, "too_large") != 0))
		abort();
	if (memchr(err->message, '\0', sizeof(err->message)) == NULL)
		abort();
}

/* Parses text (which the builders made) with parse and frees it; aborts if it is refused. */
static void reparse(char *text, int server)
{
	struct wsmsg_error err;
	if (text == NULL)
		abort();
	int rc = server ? wsmsg_parse_server(text, strlen(text), &back, &err)
			: wsmsg_parse_client(text, strlen(text), &back, &err);
	free(text);
	if (rc != 0 || back.type != msg.type)
		abort();
}

static void check_client(void)
{
	if (msg.nhashes > WSMSG_MAX_HASHES)
		abort();
	switch (msg.type) {
	case WSMSG_HAVE:
	case WSMSG_DROP:
		reparse(wsmsg_client_hashes(msg.type, (const uint8_t(*)[HASH_LEN])msg.hashes,
					    msg.nhashes),
			0);
		if (back.nhashes != msg.nhashes ||
		    memcmp(back.hashes, msg.hashes, msg.nhashes * HASH_LEN) != 0)
			abort();
		break;
	case WSMSG_WANT:
	case WSMSG_DECLINE:
		if (!msg.has_hash)
			abort();
		reparse(wsmsg_client_hash(msg.type, msg.hash), 0);
		if (memcmp(back.hash, msg.hash, HASH_LEN) != 0)
			abort();
		break;
	case WSMSG_FILE:
		if (!msg.has_hash)
			abort();
		reparse(wsmsg_client_file(msg.sha256, msg.hash), 0);
		if (memcmp(back.hash, msg.hash, HASH_LEN) != 0 ||
		    memcmp(back.sha256, msg.sha256, HASH_LEN) != 0)
			abort();
		break;
	default:
		abort();
	}
}

static void check_server(void)
{
	switch (msg.type) {
	case WSMSG_WELCOME:
		if (msg.number == 0 || msg.welcome.max_blob != msg.number)
			abort();
		reparse(wsmsg_welcome(&msg.welcome), 1);
		if (back.number != msg.number ||
		    memcmp(&back.welcome, &msg.welcome, sizeof(msg.welcome)) != 0)
			abort();
		break;
	case WSMSG_REQUEST:
		reparse(wsmsg_request(msg.hash), 1);
		if (memcmp(back.hash, msg.hash, HASH_LEN) != 0)
			abort();
		break;
	case WSMSG_COUNT:
		if (msg.number > UINT32_MAX)
			break; /* the server never counts that far */
		reparse(wsmsg_count(msg.hash, (uint32_t)msg.number), 1);
		if (back.number != msg.number || memcmp(back.hash, msg.hash, HASH_LEN) != 0)
			abort();
		break;
	case WSMSG_ERROR: {
		if (memchr(msg.code, '\0', sizeof(msg.code)) == NULL ||
		    memchr(msg.message, '\0', sizeof(msg.message)) == NULL)
			abort();
		/* a code or message cut short inside a UTF-8 sequence is no longer valid JSON
		 * text: the builder refuses it, which is fine */
		char *text = wsmsg_error(msg.code, msg.has_hash ? msg.hash : NULL, msg.message);
		if (text == NULL)
			break;
		reparse(text, 1);
		if (strcmp(back.code, msg.code) != 0 || strcmp(back.message, msg.message) != 0 ||
		    back.has_hash != msg.has_hash ||
		    (msg.has_hash && memcmp(back.hash, msg.hash, HASH_LEN) != 0))
			abort();
		break;
	}
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wsmsg_error err;
	if (wsmsg_parse_client((const char *)data, size, &msg, &err) == 0)
		check_client();
	else
		check_error(&err);
	if (wsmsg_parse_server((const char *)data, size, &msg, &err) == 0)
		check_server();
	else
		check_error(&err);
	return 0;
}
