/*
 * rxbuf.c — lws's receive buffer of each WebSocket, kept where an idle connection pays only for
 * the bytes lws writes into it.
 *
 * lws 4.1 allocates rx_buffer_size + LWS_PRE bytes for every connection at the handshake
 * (lib/roles/ws/ops-ws.c, "rx_ubuf") and reads up to that many bytes per recv() into its own
 * per-thread buffer; data payload goes to our callback from there, and the connection's buffer
 * receives only control-frame payloads (at most 125 bytes). From malloc those buffers lie side by
 * side with the allocator's headers between them, so each one costs at least the page its header
 * is on: with 16 KiB reads (GW_RX_CHUNK then) an idle connection cost 6.0 KB, 2 KB more than with
 * 2 KiB reads (docs/BENCHMARKS.md, "Idle memory"). Here each such buffer is a page-aligned slot of
 * one region reserved at start (MAP_NORESERVE): a page of it is resident only once lws writes
 * into it, and a slot goes back to the kernel (MADV_DONTNEED) when its connection closes, so a
 * reused slot starts empty. Nothing depends on what lws writes where: a buffer lws filled would
 * only cost its pages. Every other allocation of lws goes to malloc as before; past the region's
 * slots (sized for gateway.max_conns), or if it cannot be reserved, malloc serves these too.
 * Installed with lws_set_allocator() before the context exists; main.c owns the calls.
 */
#include "gateway.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RXBUF_REASON	"rx_ubuf" /* lws 4.1's name for the allocation */
#define RXBUF_MAX_SLOTS (1u << 20)
#define RXBUF_LWS_EXTRA 4 /* lws asks for rx_buffer_size + LWS_PRE + 4 */

static struct {
	uint8_t *base;
	size_t slot, nslots;
	size_t fresh;	/* slots from here on were never handed out */
	uint32_t *free; /* slots handed back, a stack */
	size_t nfree, in_use;
} rxbuf;

static int rxbuf_owns(const void *p)
{
	const uint8_t *b = p;
	return rxbuf.base && b >= rxbuf.base && b < rxbuf.base + rxbuf.nslots * rxbuf.slot;
}

static void *rxbuf_take(size_t size)
{
	size_t i;
	if (rxbuf.base == NULL || size > rxbuf.slot)
		return NULL;
	if (rxbuf.nfree)
		i = rxbuf.free[--rxbuf.nfree];
	else if (rxbuf.fresh < rxbuf.nslots)
		i = rxbuf.fresh++;
	else
		return NULL;
	rxbuf.in_use++;
	return rxbuf.base + i * rxbuf.slot;
}

static void rxbuf_give_back(void *p)
{
	size_t i = (size_t)((uint8_t *)p - rxbuf.base) / rxbuf.slot;
	madvise(rxbuf.base + i * rxbuf.slot, rxbuf.slot, MADV_DONTNEED);
	rxbuf.free[rxbuf.nfree++] = (uint32_t)i;
	rxbuf.in_use--;
}

/*
 * lws's own allocations go to libc as they did before this allocator was installed: through
 * reallocarray, which `make oomtest`'s shim (tests/unit/oom.c, wrapping malloc, calloc and
 * realloc of our code) leaves alone, so that it fails our allocations and not lws's.
 */
static void *rxbuf_libc(void *ptr, size_t size)
{
	return reallocarray(ptr, 1, size);
}

/* lws's allocator: realloc's contract, with size 0 freeing. */
static void *rxbuf_realloc(void *ptr, size_t size, const char *reason)
{
	if (ptr && rxbuf_owns(ptr)) {
		if (size == 0) {
			rxbuf_give_back(ptr);
			return NULL;
		}
		if (size <= rxbuf.slot)
			return ptr;
		void *v = rxbuf_libc(NULL, size);
		if (v) {
			memcpy(v, ptr, rxbuf.slot);
			rxbuf_give_back(ptr);
		}
		return v;
	}
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	if (ptr == NULL && reason && strcmp(reason, RXBUF_REASON) == 0) {
		void *v = rxbuf_take(size);
		if (v)
			return v;
	}
	return rxbuf_libc(ptr, size);
}

int rxbuf_init(size_t conns)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t n = conns + conns / 8 + 64; /* connections still closing hold theirs a while */
	if (page <= 0)
		return -1;
	rxbuf.slot = (GW_RX_CHUNK + LWS_PRE + RXBUF_LWS_EXTRA + (size_t)page - 1) / (size_t)page *
		     (size_t)page;
	rxbuf.nslots = n < RXBUF_MAX_SLOTS ? n : RXBUF_MAX_SLOTS;
	rxbuf.free = malloc(rxbuf.nslots * sizeof(*rxbuf.free));
	void *base = rxbuf.free ? mmap(NULL, rxbuf.nslots * rxbuf.slot, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
				: MAP_FAILED;
	if (base == MAP_FAILED) {
		log_warnx("%s: cannot reserve %zu receive buffers: lws's own allocation serves",
			  __func__, rxbuf.nslots);
		free(rxbuf.free);
		memset(&rxbuf, 0, sizeof(rxbuf));
		return -1;
	}
	rxbuf.base = base;
	lws_set_allocator(rxbuf_realloc);
	return 0;
}

/* After lws_context_destroy(): with every buffer back (else the region stays: lws holds one). */
void rxbuf_free(void)
{
	if (rxbuf.base == NULL || rxbuf.in_use)
		return;
	munmap(rxbuf.base, rxbuf.nslots * rxbuf.slot);
	free(rxbuf.free);
	memset(&rxbuf, 0, sizeof(rxbuf));
}
