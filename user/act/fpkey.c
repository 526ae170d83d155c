#include "act/fpkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t n, const char *path, const char *what, int e)
{
	snprintf(err, n, "%s: %s%s%s", path, what, e ? ": " : "", e ? strerror(e) : "");
	return -1;
}

static int read_key(int fd, const char *path, uint8_t key[LW_FPKEY_LEN], char *err, size_t n)
{
	struct stat st;
	ssize_t got;

	if (fstat(fd, &st) != 0)
		return fail(err, n, path, "cannot stat", errno);
	if (!S_ISREG(st.st_mode))
		return fail(err, n, path, "not a regular file", 0);
	if (st.st_uid != geteuid())
		return fail(err, n, path, "owned by another user", 0);
	if (st.st_mode & 077)
		return fail(err, n, path, "readable by group or others (chmod 600 it)", 0);
	if (st.st_size != LW_FPKEY_LEN)
		return fail(err, n, path, "not a 32-byte key", 0);
	got = pread(fd, key, LW_FPKEY_LEN, 0);
	if (got != LW_FPKEY_LEN)
		return fail(err, n, path, "cannot read", got < 0 ? errno : 0);
	return 0;
}

int lw_fpkey_load(const char *dir, uint8_t key[LW_FPKEY_LEN], char *err, size_t errlen)
{
	char path[4096], tmp[4096 + 16];
	int fd, rc;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return fail(err, errlen, dir, "cannot create the state directory", errno);
	snprintf(path, sizeof(path), "%s/%s", dir, LW_FPKEY_FILE);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		rc = read_key(fd, path, key, err, errlen);
		close(fd);
		return rc;
	}
	if (errno != ENOENT)
		return fail(err, errlen, path, "cannot open", errno);
	/* a new key: written whole under a temporary name, then renamed, so a
	 * crash never leaves a short key that would change every fingerprint */
	if (getrandom(key, LW_FPKEY_LEN, 0) != LW_FPKEY_LEN)
		return fail(err, errlen, path, "no random bytes", errno);
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(err, errlen, tmp, "cannot create", errno);
	rc = write(fd, key, LW_FPKEY_LEN) == LW_FPKEY_LEN && fsync(fd) == 0 ? 0 : -1;
	close(fd);
	/* link, not rename: a key another agent put there first is kept */
	if (rc != 0 || (link(tmp, path) != 0 && errno != EEXIST)) {
		int e = errno;

		unlink(tmp);
		return fail(err, errlen, path, "cannot write", e);
	}
	unlink(tmp);
	/* ours, or the one that won the race: what is on disk */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, path, "cannot open", errno);
	rc = read_key(fd, path, key, err, errlen);
	close(fd);
	return rc;
}
