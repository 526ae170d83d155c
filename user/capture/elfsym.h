/* What a file offers to uprobes: the file offsets (and sizes) of its
 * functions, and the facts that say why a file cannot be hooked. */
#ifndef LW_ELFSYM_H
#define LW_ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lw_elf_func {
	uint64_t off;  /* file offset of the first instruction, 0: absent */
	uint64_t size; /* bytes, as the symbol table says (0: unknown) */
};

struct lw_elf_info {
	int machine;		/* EM_X86_64, EM_AARCH64, ... */
	bool has_symtab;	/* .symtab (a stripped file has .dynsym at most) */
	bool go;		/* a Go executable (.go.buildinfo) */
	int go_major, go_minor; /* from the build info, 0 when unreadable */
	char go_version[32];	/* "go1.19.8" */
};

/* For each names[i] defined as a function in the file's dynamic (exported)
 * or static symbol table, fill funcs[i]; {0, 0} when absent. Returns how
 * many were found, or -1 (errno set) when the file cannot be read as ELF.
 * info (may be NULL) gets the file's facts. */
int lw_elf_funcs(const char *path, const char *const *names, size_t n, struct lw_elf_func *funcs,
		 struct lw_elf_info *info);

/* The same, offsets only. */
int lw_elf_func_offsets(const char *path, const char *const *names, size_t n, uint64_t *offs);

/* Offsets of the return instructions in [off, off+size) of the file, for a
 * function that must not get a uretprobe (Go). Returns how many were put in
 * out (at most max), -1 when the code cannot be read or decoded. */
int lw_elf_ret_offsets(const char *path, int machine, uint64_t off, uint64_t size, uint64_t *out,
		       int max);

/* Whether the file contains one of the byte strings (a TLS library linked
 * in without symbols leaves its version and error strings). Returns the
 * index of the first found, -1 when none (or unreadable). */
int lw_file_contains(const char *path, const char *const *needles, size_t n);

#endif
