#include "util/ringuse.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/buf.h"

struct lw_ringuse {
	void *pages; /* consumer page, then producer page */
	size_t page;
	uint64_t size;
};

struct lw_ringuse *lw_ringuse_open(int map_fd)
{
	struct bpf_map_info info = {0};
	uint32_t len = sizeof(info);
	struct lw_ringuse *r;
	void *p;
	long page = sysconf(_SC_PAGESIZE);

	if (bpf_obj_get_info_by_fd(map_fd, &info, &len))
		return NULL;
	if (info.type != BPF_MAP_TYPE_RINGBUF) {
		errno = EINVAL;
		return NULL;
	}
	/* read-only: the kernel allows it over both pages, and nothing we do
	 * can move the consumer position libbpf owns */
	p = mmap(NULL, (size_t)page * 2, PROT_READ, MAP_SHARED, map_fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	r = lw_xcalloc(1, sizeof(*r));
	r->pages = p;
	r->page = (size_t)page;
	r->size = info.max_entries;
	return r;
}

uint64_t lw_ringuse_used(const struct lw_ringuse *r)
{
	const unsigned long *cons = r->pages;
	const unsigned long *prod = (const unsigned long *)((const char *)r->pages + r->page);
	/* consumer first: it never passes the producer, so the difference
	 * cannot go negative even when both move in between */
	unsigned long c = __atomic_load_n(cons, __ATOMIC_ACQUIRE);
	unsigned long p = __atomic_load_n(prod, __ATOMIC_ACQUIRE);

	return p >= c ? p - c : 0;
}

uint64_t lw_ringuse_size(const struct lw_ringuse *r)
{
	return r->size;
}

void lw_ringuse_close(struct lw_ringuse *r)
{
	if (!r)
		return;
	munmap(r->pages, r->page * 2);
	free(r);
}
