/*
 * How full a BPF ring buffer is, read from user space: the kernel keeps the
 * consumer and producer positions in the map's first two pages, which any
 * holder of the map may map read-only (libbpf 1.1 has no call for it). The
 * BPF programs are left alone: no counter of ours runs in the probes.
 */
#ifndef LW_RINGUSE_H
#define LW_RINGUSE_H

#include <stdint.h>

struct lw_ringuse;

/* NULL (errno set) when the map is not a ring buffer or cannot be mapped. */
struct lw_ringuse *lw_ringuse_open(int map_fd);
/* Bytes written by the kernel and not yet consumed (records and their
 * headers, also ones still being written). */
uint64_t lw_ringuse_used(const struct lw_ringuse *r);
uint64_t lw_ringuse_size(const struct lw_ringuse *r);
void lw_ringuse_close(struct lw_ringuse *r);

#endif
