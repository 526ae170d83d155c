#include "util/bpflink.h"

#include <bpf/libbpf.h>

void lw_skel_each_link(const struct bpf_object_skeleton *s, lw_link_fn fn, void *ud)
{
	for (int i = 0; i < s->prog_cnt; i++) {
		const struct bpf_prog_skeleton *p =
			(const void *)((const char *)s->progs +
				       (size_t)i * (size_t)s->prog_skel_sz);

		if (p->link && *p->link)
			fn(*p->link, p->name, p->prog && *p->prog ? bpf_program__fd(*p->prog) : -1,
			   ud);
	}
}
