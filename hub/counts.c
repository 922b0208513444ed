/*
 * counts.c — tells gateways the viewer counts of the hashes their connections care about.
 *
 * Changes are not sent one by one: registry.c marks a hash dirty, and once per turn of the event
 * loop counts_flush() sends each interested gateway one COUNT message listing every changed hash
 * (a gateway is interested while one of its connections holds or wants the hash). A gateway then
 * throttles per connection (at most 4 a second, the last value always delivered). Frontends hear
 * of the same changes through watch.c (for hashes they looked up recently). This module
 * also frees a hash entry once nobody holds, wants or watches it.
 */
#include "hub.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

void counts_queue(struct hub *hub, struct gateway *gw, const struct hashent *h)
{
	(void)hub;
	if (gw->counts_len + HUBPROTO_COUNT_ENTRY > gw->counts_cap) {
		size_t ncap = gw->counts_cap ? gw->counts_cap * 2 : 64 * HUBPROTO_COUNT_ENTRY;
		uint8_t *n = realloc(gw->counts, ncap);
		if (n == NULL)
			return;
		gw->counts = n;
		gw->counts_cap = ncap;
	}
	memcpy(gw->counts + gw->counts_len, h->hash, HASH_LEN);
	put_u32(gw->counts + gw->counts_len + HASH_LEN, h->viewers);
	gw->counts_len += HUBPROTO_COUNT_ENTRY;
}

void counts_flush(struct hub *hub)
{
	while (hub->dirty) {
		struct hashent *h = hub->dirty;
		hub->dirty = h->dirty_next;
		h->dirty = 0;
		h->dirty_next = NULL;
		watch_changed(hub, h);
		files_changed(hub, h);
		for (uint16_t i = 0; i < h->ngws; i++) {
			struct gateway *gw = hub->gateways[h->gws[i].slot];
			if (gw)
				counts_queue(hub, gw, h);
		}
		if (h->viewers == 0 && h->fetch == NULL && h->ngws == 0) {
			map_del(&hub->hashes, h->hash);
			free(h->gws);
			free(h);
		}
	}
	for (uint32_t i = 0; i < hub->ngateways; i++) {
		struct gateway *gw = hub->active[i];
		if (gw->counts_len == 0)
			continue;
		struct hubproto_out o = {.cmd = HUB_COUNT,
					 .list = gw->counts,
					 .list_count = gw->counts_len / HUBPROTO_COUNT_ENTRY};
		link_send(hub, gw, &o); /* a failure is logged there, once */
		gw->counts_len = 0;
	}
	watch_flush(hub);
}
