/*
 * counts.c — tells gateways the viewer counts of the hashes their connections care about.
 *
 * Changes are not sent one by one: registry.c marks a hash dirty, and once per turn of the event
 * loop counts_flush() sends each interested gateway one COUNT message listing every changed hash
 * (a gateway is interested while one of its connections holds or wants the hash). A gateway then
 * throttles per connection (at most 4 a second, the last value always delivered). Frontends hear
 * of the same changes through watch.c (for hashes they looked up recently). After the flush
 * of a hash, registry_hash_release() frees its entry if nobody holds, wants or watches it.
 */
#include "hub.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

void counts_queue(struct gateway *gw, const struct hashent *h)
{
	hubproto_count_put(&gw->counts, &gw->counts_len, &gw->counts_cap, h->hash, h->viewers);
}

void counts_flush(struct hub *hub)
{
	while (!SLIST_EMPTY(&hub->dirty)) {
		struct hashent *h = SLIST_FIRST(&hub->dirty);
		SLIST_REMOVE_HEAD(&hub->dirty, dirty_entry);
		h->dirty = 0;
		watch_changed(hub, h);
		files_changed(hub, h);
		for (uint16_t i = 0; i < h->ngws; i++) {
			struct gateway *gw = hub->gateways[h->gws[i].slot];
			if (gw)
				counts_queue(gw, h);
		}
		registry_hash_release(hub, h);
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
