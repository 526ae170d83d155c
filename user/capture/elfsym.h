/* Finding the file offsets of exported functions, for uprobes. */
#ifndef LW_ELFSYM_H
#define LW_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

/* For each names[i] defined as a function in the file's dynamic (exported)
 * or static symbol table, set offs[i] to its file offset; 0 when absent.
 * Returns how many were found, or -1 (errno set) when the file cannot be
 * read as ELF. */
int lw_elf_func_offsets(const char *path, const char *const *names, size_t n, uint64_t *offs);

#endif
