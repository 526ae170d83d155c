/*
 * Walking the BPF links a stage holds, for the agent's self-check: every
 * link of a skeleton (whatever programs the object gains), named after its
 * program.
 */
#ifndef LW_BPFLINK_H
#define LW_BPFLINK_H

struct bpf_link;
struct bpf_object_skeleton;

/* what: the program's name, or the hooked file for a uprobe; prog_fd: the
 * program the stage attached through l (-1 when not known), so a link
 * swapped before anyone looked is still found out */
typedef void (*lw_link_fn)(struct bpf_link *l, const char *what, int prog_fd, void *ud);

/* fn for each program of s that holds a link (attached by the skeleton or
 * stored in its links by the stage). */
void lw_skel_each_link(const struct bpf_object_skeleton *s, lw_link_fn fn, void *ud);

#endif
