// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Empty programs for the benchmark floor: the cost of a uprobe and a
 * uretprobe on the same call sites, with no work in them. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("uprobe")
int empty_enter(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int empty_leave(void *ctx)
{
	return 0;
}
