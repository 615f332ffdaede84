// SPDX-License-Identifier: MIT
#include "src/util.h"

#include "src/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int util_snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -EINVAL;
	if ((size_t)r >= n)
		return -ENAMETOOLONG;
	return 0;
}

int util_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s || *end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int util_parse_ulong_base(const char *s, int base, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s || *end != '\0')
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int util_read_file(const char *path, size_t max, char **bufp, size_t *lenp)
{
	size_t len = 0, cap = 4096;
	char *buf, *nb;
	ssize_t r;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		rc = -ENOMEM;
		goto err_close;
	}
	for (;;) {
		if (len + 1 >= cap) {
			if (cap > max + 1) {
				rc = -EFBIG;
				goto err_free;
			}
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				rc = -ENOMEM;
				goto err_free;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto err_free;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			rc = -EFBIG;
			goto err_free;
		}
	}
	buf[len] = '\0';
	close(fd);
	*bufp = buf;
	if (lenp)
		*lenp = len;
	return 0;

err_free:
	free(buf);
err_close:
	close(fd);
	return rc;
}

int util_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int util_write_atomic(const char *path, const void *buf, size_t n, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd, rc;

	rc = util_snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (rc)
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	rc = util_write_all(fd, buf, n);
	if (rc)
		goto err_unlink;
	if (fsync(fd) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	if (close(fd) < 0) {
		rc = -errno;
		fd = -1;
		goto err_unlink;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	return 0;

err_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int util_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *p;
	int rc;

	rc = util_snprintf(buf, sizeof(buf), "%s", path);
	if (rc)
		return rc;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int util_rm_at(int dfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((de = readdir(d))) {
		int r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = util_rm_at(dirfd(d), de->d_name);
		if (r && !rc)
			rc = r;
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !rc)
		rc = -errno;
	return rc;
}

int util_rm_rf(const char *path)
{
	return util_rm_at(AT_FDCWD, path);
}

static int util_xdg_dir(const char *var, const char *fallback, char *buf, size_t n)
{
	const char *v = getenv(var);
	const char *home;

	if (v && v[0] == '/')
		return util_snprintf(buf, n, "%s/hutch", v);
	home = getenv("HOME");
	if (!home || home[0] != '/') {
		struct passwd *pw = getpwuid(getuid());

		if (!pw)
			return -ENOENT;
		home = pw->pw_dir;
	}
	return util_snprintf(buf, n, "%s/%s/hutch", home, fallback);
}

int util_data_dir(char *buf, size_t n)
{
	return util_xdg_dir("XDG_DATA_HOME", ".local/share", buf, n);
}

int util_cache_dir(char *buf, size_t n)
{
	return util_xdg_dir("XDG_CACHE_HOME", ".cache", buf, n);
}

int util_vm_dir(const char *name, char *buf, size_t n)
{
	char data[PATH_MAX];
	int rc;

	if (!util_name_valid(name))
		return -EINVAL;
	rc = util_data_dir(data, sizeof(data));
	if (rc)
		return rc;
	return util_snprintf(buf, n, "%s/vms/%s", data, name);
}

int util_path_join(char *buf, size_t n, const char *a, const char *b)
{
	return util_snprintf(buf, n, "%s/%s", a, b);
}

uint64_t util_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int util_set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	if (fcntl(fd, F_SETFD, fl) < 0)
		return -errno;
	return 0;
}

int util_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -errno;
	return 0;
}

int util_flock_fd(int fd, int wait_ms, const char *waitmsg)
{
	uint64_t deadline = wait_ms > 0 ? util_monotonic_ms() + (uint64_t)wait_ms : 0;
	bool said = false;

	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (wait_ms == 0)
			return -EBUSY;
		if (waitmsg && !said)
			log_info("%s", waitmsg);
		said = true;
		if (wait_ms < 0) {
			if (flock(fd, LOCK_EX) == 0)
				return 0;
			if (errno != EINTR)
				return -errno;
			continue;
		}
		if (util_monotonic_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(5000);
	}
	return 0;
}

int util_flock(const char *path, bool wait, const char *waitmsg)
{
	int fd, rc;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == EISDIR)
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	rc = util_flock_fd(fd, wait ? -1 : 0, waitmsg);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

bool util_name_valid(const char *s)
{
	size_t i;

	if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (i = 1; s[i]; i++) {
		if (i > 30)
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	}
	return true;
}

int util_print_tail(const char *path, int lines, FILE *out, const char *prefix)
{
	enum { TAIL_MAX = 64 * 1024 };
	char *buf, *p, *end, esc[1024];
	ssize_t r;
	off_t size;
	int fd, rc = 0, seen = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size = lseek(fd, 0, SEEK_END);
	if (size < 0) {
		rc = -errno;
		goto out_close;
	}
	buf = malloc(TAIL_MAX + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	r = pread(fd, buf, TAIL_MAX, size > TAIL_MAX ? size - TAIL_MAX : 0);
	if (r < 0) {
		rc = -errno;
		goto out_free;
	}
	end = buf + r;
	/* walk back @lines line ends (a final newline does not count) */
	p = end;
	if (p > buf && p[-1] == '\n')
		p--;
	while (p > buf) {
		if (p[-1] == '\n' && ++seen >= lines)
			break;
		p--;
	}
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (n && p[n - 1] == '\r')
			n--;
		fprintf(out, "%s%s\n", prefix ? prefix : "", log_escape(esc, sizeof(esc), p, n));
		p += (nl ? (size_t)(nl - p) + 1 : n);
		if (!nl)
			break;
	}
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

void util_human_size(uint64_t b, char *buf, size_t n)
{
	if (b >= (1ull << 30))
		snprintf(buf, n, "%.1fG", (double)b / (double)(1ull << 30));
	else
		snprintf(buf, n, "%.1fM", (double)b / (double)(1ull << 20));
}
