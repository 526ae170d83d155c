#include "util/private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lw_file_private(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    !(st.st_mode & 077))
		return 0;
	return fchmod(fd, st.st_mode & 0700) == 0 ? 0 : -1;
}

static bool only_ours(int dfd, const char *const *prefixes, size_t n, char *who, size_t wn)
{
	DIR *d = fdopendir(dup(dfd));
	const struct dirent *e;
	bool ok = d != NULL;

	while (ok && (e = readdir(d))) {
		bool mine = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");

		for (size_t i = 0; i < n && !mine; i++)
			mine = !strncmp(e->d_name, prefixes[i], strlen(prefixes[i]));
		if (!mine) {
			snprintf(who, wn, "%s", e->d_name);
			ok = false;
		}
	}
	if (d)
		closedir(d);
	return ok;
}

int lw_dir_private(const char *dir, const char *const *prefixes, size_t n, char *err, size_t errlen)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char other[256] = "";
	struct stat st;
	int rc = 0;

	if (dfd < 0) {
		snprintf(err, errlen, "state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (fstat(dfd, &st) != 0 || !(st.st_mode & 077))
		goto out;
	if (st.st_uid != geteuid() || (st.st_mode & S_ISVTX) ||
	    !only_ours(dfd, prefixes, n, other, sizeof(other))) {
		snprintf(err, errlen,
			 "state directory %s is open to group or others (mode %04o)%s%s%s: "
			 "chmod 700 it, or use a directory of its own",
			 dir, (unsigned)(st.st_mode & 07777), *other ? " and holds " : "", other,
			 *other ? ", not ours" : "");
		rc = -1;
	} else if (fchmod(dfd, 0700) != 0) {
		snprintf(err, errlen, "state directory %s: cannot chmod 700: %s", dir,
			 strerror(errno));
		rc = -1;
	}
out:
	close(dfd);
	return rc;
}
