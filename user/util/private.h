/*
 * Keeping the agent's own files to root: what it finds looser than it
 * would have created them is tightened, where that cannot hurt anyone
 * else's files.
 */
#ifndef LW_PRIVATE_H
#define LW_PRIVATE_H

#include <stddef.h>

/* A regular file of ours (fd) readable or writable by group or others ->
 * 0600. Anything else is left alone. 0, or -1 (errno) when chmod failed. */
int lw_file_private(int fd);
/* dir, ours and looser than 0700 -> 0700, but only when every entry in it
 * starts with one of the prefixes (the agent's files: a directory that
 * holds anything else, such as /tmp or /etc, is someone else's too). 0 when
 * it is private now; -1 with the reason in err. */
int lw_dir_private(const char *dir, const char *const *prefixes, size_t n, char *err,
		   size_t errlen);

#endif
