// SPDX-License-Identifier: MIT
/**
 * DOC: img - base image cache
 *
 * Layout of $XDG_CACHE_HOME/hutch/images/:
 *
 *   <alias>.qcow2            an alias (debian-12, ...) pulled or built
 *   u-<h16>-<name>           an image fetched by URL (h16: sha256 of the URL)
 *   <image>.sha256           "HEX  <image>": the image's own sha256
 *   <image>.source           source=<URL or recipe>, fetched=<algo>:<hex of
 *                            the downloaded bytes> (differs when compressed)
 *   <image>.verified         "size mtime_s mtime_ns" when last hashed
 *   <sha256 of URL>.part     a download in progress (resumed with Range)
 *
 * Trust: every byte from the network is hashed before it is used.  Aliases
 * carry the distribution's checksum file (fetched over https); URLs carry
 * image_sha256.  A cached image is never modified: it is re-hashed when its
 * size or mtime moved since the last check, or when image_sha256 is given.
 * A qcow2 naming a backing file or an external data file is refused: the
 * name is chosen by whoever made the image and could be any file on the
 * host that QEMU would then open (and, for a data file, write).
 *
 * http:// is refused except for 127.0.0.1/localhost with
 * HUTCH_ALLOW_HTTP_LOCAL=1 (tests).  Redirects are followed by hand, at
 * most IMG_MAX_REDIRS, each target checked by the same rule, so a https
 * server cannot bounce us to plain http.  HUTCH_IMAGES_MIRROR replaces
 * the scheme and host of the alias URLs (a local mirror, and the tests).
 * HUTCH_IMAGES_MAX_BYTES lowers the 64 GiB cap on downloads and on
 * decompressed sizes.
 *
 * Two hutch processes needing the same image (two `up` at once) serialise
 * on flock(2) of the cache directory and look at the cache again once they
 * hold it, so an image is fetched once and a .part has one writer.
 */
#include "images/img.h"

#include "src/cfg.h"
#include "src/lazy.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/trust.h"
#include "src/util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lzma.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define IMG_MAX_BYTES   (64ull << 30) /* download and decompressed size cap */
#define IMG_SUMS_MAX    (1u << 20)    /* checksum files */
#define IMG_MAX_REDIRS  5
#define IMG_HEX_MAX     129

struct img_alias {
	const char *name;
	const char *url;  /* the qcow2 */
	const char *sums; /* checksum file listing it */
};

/*
 * Official cloud images.  Debian publishes SHA512SUMS, Ubuntu SHA256SUMS
 * (its .img is qcow2), Fedora a BSD-style CHECKSUM, Arch a .SHA256 file.
 */
static const struct img_alias img_aliases[] = {
	{ "debian-12",
	  "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
	  "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS" },
	{ "debian-13",
	  "https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2",
	  "https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS" },
	{ "ubuntu-24.04",
	  "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
	  "https://cloud-images.ubuntu.com/noble/current/SHA256SUMS" },
	{ "fedora-41",
	  "https://download.fedoraproject.org/pub/fedora/linux/releases/41/Cloud/x86_64/images/"
	  "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2",
	  "https://download.fedoraproject.org/pub/fedora/linux/releases/41/Cloud/x86_64/images/"
	  "Fedora-Cloud-41-1.4-x86_64-CHECKSUM" },
	{ "arch", "https://geo.mirror.pkgbuild.com/images/latest/Arch-Linux-x86_64-cloudimg.qcow2",
	  "https://geo.mirror.pkgbuild.com/images/latest/Arch-Linux-x86_64-cloudimg.qcow2.SHA256" },
};

const char *const *img_alias_names(void)
{
	static const char *names[UTIL_ARRAY_SIZE(img_aliases) + 1];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(img_aliases); i++)
		names[i] = img_aliases[i].name;
	return names;
}

static uint64_t img_max_bytes(void)
{
	const char *v = getenv("HUTCH_IMAGES_MAX_BYTES");
	unsigned long m;

	if (v && util_parse_ulong_base(v, 10, ULONG_MAX, &m) == 0 && m > 0)
		return m;
	return IMG_MAX_BYTES;
}

int img_cache_dir(char *buf, size_t n)
{
	char c[PATH_MAX];
	int rc = util_cache_dir(c, sizeof(c));

	if (rc)
		return rc;
	return util_path_join(buf, n, c, "images");
}

/* ---- hashing ------------------------------------------------------------ */

static void img_hex(const unsigned char *d, unsigned n, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (unsigned i = 0; i < n; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[2 * n] = '\0';
}

int img_hash_buf(const void *buf, size_t n, char hex[65])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	const struct lazy_crypto *cr;
	unsigned dl = 0;
	int rc = lazy_crypto(&cr);

	if (rc)
		return rc;
	if (!cr->digest(buf, n, d, &dl, cr->sha256(), NULL))
		return -EIO;
	img_hex(d, dl, hex);
	return 0;
}

int img_hash_fd(int fd, const char *algo, char *hex, size_t hexsz)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	static unsigned char buf[1 << 20];
	const struct lazy_crypto *cr;
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md;
	unsigned dl = 0;
	int rc;

	if (strcmp(algo, "sha256") && strcmp(algo, "sha512"))
		return -EINVAL;
	rc = lazy_crypto(&cr);
	if (rc)
		return rc;
	md = !strcmp(algo, "sha256") ? cr->sha256() : cr->sha512();
	if (!md)
		return -EINVAL;
	if (hexsz < (size_t)cr->md_get_size(md) * 2 + 1)
		return -ENAMETOOLONG;
	ctx = cr->md_ctx_new();
	if (!ctx || !cr->digest_init_ex(ctx, md, NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		if (!cr->digest_update(ctx, buf, (size_t)r)) {
			rc = -EIO;
			goto out;
		}
	}
	if (!cr->digest_final_ex(ctx, d, &dl)) {
		rc = -EIO;
		goto out;
	}
	img_hex(d, dl, hex);
out:
	cr->md_ctx_free(ctx);
	return rc;
}

int img_hash_file(const char *path, const char *algo, char *hex, size_t hexsz)
{
	int fd, rc;

	/* a cache entry or a download: never through a symlink */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = img_hash_fd(fd, algo, hex, hexsz);
	close(fd);
	return rc;
}

/* the @len bytes at @s are hex digits; copied lower-case into @out (NUL-terminated) */
static bool img_hex_copy(const char *s, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[len] = '\0';
	return true;
}

/*
 * @s, a NUL-terminated string, starts with exactly @len hex digits (the
 * byte after them is read, so never use this on a slice of a buffer)
 */
static bool img_hex_norm(const char *s, size_t len, char *out)
{
	if (!img_hex_copy(s, len, out))
		return false;
	return s[len] == '\0' || !isxdigit((unsigned char)s[len]);
}

/* ---- checksum files ----------------------------------------------------- */

/* one line [p, p+len) without the newline; 0 on a match for @fname */
static int img_sums_line(const char *p, size_t len, const char *fname, char algo[8], char *hex)
{
	size_t fl = strlen(fname), i = 0, hl;

	while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	/* BSD: "SHA256 (name) = HEX" */
	if (len > 7 && (!strncmp(p, "SHA256 (", 8) || !strncmp(p, "SHA512 (", 8))) {
		bool is512 = p[3] == '5';

		hl = is512 ? 128 : 64;
		if (len != 8 + fl + 4 + hl || memcmp(p + 8, fname, fl) || memcmp(p + 8 + fl, ") = ", 4))
			return -ENOENT;
		/* a slice of the file: the length was checked exactly above */
		if (!img_hex_copy(p + 8 + fl + 4, hl, hex))
			return -ENOENT;
		memcpy(algo, is512 ? "sha512" : "sha256", 7);
		return 0;
	}
	/* GNU: "HEX  name" or "HEX *name" */
	while (i < len && isxdigit((unsigned char)p[i]))
		i++;
	if (i != 64 && i != 128)
		return -ENOENT;
	hl = i;
	if (len - i < 2 || p[i] != ' ' || (p[i + 1] != ' ' && p[i + 1] != '*'))
		return -ENOENT;
	i += 2;
	if (len - i >= 2 && p[i] == '.' && p[i + 1] == '/')
		i += 2;
	if (len - i != fl || memcmp(p + i, fname, fl))
		return -ENOENT;
	for (size_t k = 0; k < hl; k++)
		hex[k] = (char)tolower((unsigned char)p[k]);
	hex[hl] = '\0';
	memcpy(algo, hl == 128 ? "sha512" : "sha256", 7);
	return 0;
}

int img_checksum_find(const char *text, size_t n, const char *fname, char algo[8], char *hex,
		      size_t hexsz)
{
	char a[8], h[IMG_HEX_MAX];
	size_t off = 0;

	if (!fname || !*fname)
		return -EINVAL;
	while (off < n) {
		const char *nl = memchr(text + off, '\n', n - off);
		size_t len = nl ? (size_t)(nl - (text + off)) : n - off;

		if (img_sums_line(text + off, len, fname, a, h) == 0) {
			if (strlen(h) + 1 > hexsz)
				return -ENAMETOOLONG;
			memcpy(algo, a, sizeof(a));
			memcpy(hex, h, strlen(h) + 1);
			return 0;
		}
		off += len + 1;
	}
	return -ENOENT;
}

/* ---- qcow2 -------------------------------------------------------------- */

static uint32_t rd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd_be64(const uint8_t *p)
{
	return (uint64_t)rd_be32(p) << 32 | rd_be32(p + 4);
}

/* qcow2 header: docs/interop/qcow2.txt in QEMU's tree; v2 is 72 bytes, v3 at least 104 */
int img_qcow2_parse(const void *buf, size_t n, struct img_qcow2_hdr *out)
{
	const uint8_t *p = buf;
	struct img_qcow2_hdr h = { 0 };
	uint32_t cluster_bits;

	if (n < 72 || memcmp(p, "QFI\xfb", 4))
		return -EINVAL;
	h.version = rd_be32(p + 4);
	if (h.version != 2 && h.version != 3)
		return -ENOTSUP;
	h.backing_offset = rd_be64(p + 8);
	h.backing_size = rd_be32(p + 16);
	cluster_bits = rd_be32(p + 20);
	h.size = rd_be64(p + 24);
	h.crypt_method = rd_be32(p + 32);
	if (cluster_bits < 9 || cluster_bits > 21)
		return -EINVAL;
	/* the name is at most 1023 bytes and must lie inside the first cluster */
	if (h.backing_size > 1023 ||
	    (h.backing_offset && (h.backing_offset > (1ull << cluster_bits) ||
				  h.backing_size > (1ull << cluster_bits) - h.backing_offset)))
		return -EINVAL;
	if (h.version == 3) {
		if (n < 104)
			return -EINVAL;
		h.incompatible = rd_be64(p + 72);
		if (rd_be32(p + 100) < 104)
			return -EINVAL;
	}
	*out = h;
	return 0;
}

static int img_read_head_fd(int fd, uint8_t *buf, size_t n, size_t *got, uint64_t *fsize)
{
	struct stat st;
	size_t have = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	while (have < n) {
		ssize_t r = pread(fd, buf + have, n - have, (off_t)have);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		have += (size_t)r;
	}
	*got = have;
	*fsize = (uint64_t)st.st_size;
	return 0;
}

/* an image file of ours: never through a symlink, never blocking on a FIFO */
static int img_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int img_read_head(const char *path, uint8_t *buf, size_t n, size_t *got, uint64_t *fsize)
{
	int fd = img_open(path), rc;

	if (fd < 0)
		return fd;
	rc = img_read_head_fd(fd, buf, n, got, fsize);
	close(fd);
	return rc;
}

/* img_probe() of the file open at @fd, named @path (for messages and @out) */
static int img_probe_fd(int fd, const char *path, struct img_ref *out)
{
	struct img_qcow2_hdr h;
	struct img_ref r = { 0 };
	struct stat st;
	uint8_t head[4096];
	uint64_t fsize = 0;
	size_t got = 0;
	int rc;

	rc = img_read_head_fd(fd, head, sizeof(head), &got, &fsize);
	if (!rc && fstat(fd, &st) < 0)
		rc = -errno;
	if (rc) {
		log_errno(rc, "image %s", path);
		return rc;
	}
	rc = util_snprintf(r.path, sizeof(r.path), "%s", path);
	if (rc)
		return rc;
	r.dev = st.st_dev;
	r.ino = st.st_ino;
	if (got >= 4 && !memcmp(head, "QFI\xfb", 4)) {
		rc = img_qcow2_parse(head, got, &h);
		if (rc) {
			log_errno(rc, "image %s: not a usable qcow2 header", path);
			return rc;
		}
		if (h.backing_offset || h.backing_size) {
			log_err("image %s has a backing file of its own: refused (it could name any "
				"file on this host); flatten it with qemu-img convert",
				path);
			return -EPERM;
		}
		if (h.incompatible & IMG_QCOW2_INCOMPAT_DATA_FILE) {
			log_err("image %s keeps its data in an external file: refused", path);
			return -EPERM;
		}
		if (h.crypt_method) {
			log_err("image %s is encrypted: not supported", path);
			return -EPERM;
		}
		memcpy(r.format, "qcow2", 6);
		r.vsize = h.size;
	} else {
		memcpy(r.format, "raw", 4);
		r.vsize = fsize;
	}
	if (r.vsize == 0) {
		log_err("image %s is empty", path);
		return -EINVAL;
	}
	*out = r;
	return 0;
}

int img_probe(const char *path, struct img_ref *out)
{
	int fd = img_open(path), rc;

	if (fd == -ELOOP) {
		log_err("image %s is a symbolic link: refused", path);
		return -EPERM;
	}
	if (fd < 0) {
		log_errno(fd, "image %s", path);
		return fd;
	}
	rc = img_probe_fd(fd, path, out);
	close(fd);
	return rc;
}

int img_qcow2_backing(const char *path, char *buf, size_t n)
{
	struct img_qcow2_hdr h;
	uint8_t head[4096];
	uint64_t fsize = 0;
	size_t got = 0;
	int rc;

	rc = img_read_head(path, head, sizeof(head), &got, &fsize);
	if (rc)
		return rc;
	rc = img_qcow2_parse(head, got, &h);
	if (rc)
		return rc;
	if (!h.backing_offset || !h.backing_size) {
		if (n)
			buf[0] = '\0';
		return 0;
	}
	if (h.backing_offset + h.backing_size > got)
		return -EINVAL;
	if ((size_t)h.backing_size + 1 > n)
		return -ENAMETOOLONG;
	memcpy(buf, head + h.backing_offset, h.backing_size);
	buf[h.backing_size] = '\0';
	return 0;
}

/* ---- cache records ------------------------------------------------------ */

static int img_sidecar(char *buf, size_t n, const char *path, const char *ext)
{
	return util_snprintf(buf, n, "%s.%s", path, ext);
}

/*
 * A file in the cache is trusted only when nobody but the user (or root)
 * could have written it: a regular file, not a symlink, owned by the user
 * or root, not writable by group or others.  The cache directory is 0700
 * (img_cache_prepare()), so this catches what someone else put there
 * before, or a cache shared by mistake.
 */
static bool img_cache_file_ok(const struct stat *st)
{
	return S_ISREG(st->st_mode) && (st->st_uid == 0 || trust_uid_ok(st->st_uid)) &&
	       !(st->st_mode & 022);
}

/* <path>.<ext>'s text, or -ENOENT; -EPERM when it is not only the user's */
static int img_sidecar_read(const char *path, const char *ext, size_t max, char **txt)
{
	char side[PATH_MAX];
	struct stat st;
	int fd, rc;

	rc = img_sidecar(side, sizeof(side), path, ext);
	if (rc)
		return rc;
	fd = img_open(side);
	if (fd < 0)
		return fd == -ELOOP ? -EPERM : fd;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (!img_cache_file_ok(&st))
		rc = -EPERM;
	else
		rc = trust_read_fd(fd, max, txt, NULL);
	close(fd);
	return rc;
}

static int img_mark_verified(const char *path, const struct stat *st)
{
	char side[PATH_MAX], line[96];
	int rc;

	rc = img_sidecar(side, sizeof(side), path, "verified");
	if (!rc)
		rc = util_snprintf(line, sizeof(line), "%lld %lld %ld\n", (long long)st->st_size,
				   (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
	if (!rc)
		rc = util_write_atomic(side, line, strlen(line), 0644);
	return rc;
}

/* the .verified record matches @st, and was written by the user (or root) */
static bool img_verified_fresh(const char *path, const struct stat *st)
{
	char want[96], *got = NULL;
	bool fresh;

	if (util_snprintf(want, sizeof(want), "%lld %lld %ld\n", (long long)st->st_size,
			  (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec))
		return false;
	if (img_sidecar_read(path, "verified", 256, &got))
		return false;	/* missing, or someone else's: hash it */
	fresh = !strcmp(got, want);
	free(got);
	return fresh;
}

int img_cache_record(const char *path, const char *sha256, const char *source,
		     const char *fetched)
{
	char side[PATH_MAX], text[8192];
	const char *base = strrchr(path, '/');
	struct stat st;
	int rc;

	base = base ? base + 1 : path;
	rc = img_sidecar(side, sizeof(side), path, "sha256");
	if (!rc)
		rc = util_snprintf(text, sizeof(text), "%s  %s\n", sha256, base);
	if (!rc)
		rc = util_write_atomic(side, text, strlen(text), 0644);
	if (rc)
		return rc;
	rc = img_sidecar(side, sizeof(side), path, "source");
	if (!rc)
		rc = util_snprintf(text, sizeof(text), "source=%s\n%s%s%s", source,
				   fetched ? "fetched=" : "", fetched ? fetched : "",
				   fetched ? "\n" : "");
	if (!rc)
		rc = util_write_atomic(side, text, strlen(text), 0644);
	if (rc)
		return rc;
	if (lstat(path, &st) < 0)
		return -errno;
	return img_mark_verified(path, &st);
}

/* read "<hex>" from <path>.sha256; -ENOENT when there is no record, -EPERM when not ours */
static int img_recorded_sha(const char *path, char hex[65])
{
	char *txt = NULL;
	int rc;

	rc = img_sidecar_read(path, "sha256", 8192, &txt);
	if (rc)
		return rc;
	rc = img_hex_norm(txt, 64, hex) ? 0 : -EINVAL;
	free(txt);
	return rc;
}

/* "fetched=sha256:HEX" from <path>.source, when that is a sha256 */
static bool img_recorded_fetched(const char *path, char hex[65])
{
	char *txt = NULL, *p;
	bool found = false;

	if (img_sidecar_read(path, "source", 16384, &txt))
		return false;
	p = strstr(txt, "\nfetched=sha256:");
	if (p && strlen(p + 16) >= 64)
		found = img_hex_norm(p + 16, 64, hex);
	free(txt);
	return found;
}

static void img_cache_remove(const char *path)
{
	static const char *const exts[] = { "sha256", "source", "verified" };
	char side[PATH_MAX];

	unlink(path);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(exts); i++)
		if (!img_sidecar(side, sizeof(side), path, exts[i]))
			unlink(side);
}

/* open a cached image as img_cache_file_ok() wants it; -EPERM (logged) when not */
static int img_cache_open(const char *path, struct stat *st)
{
	int fd = img_open(path);

	if (fd == -ELOOP) {
		log_err("cached image %s is a symbolic link: refused (the cache holds files of "
			"hutch's own, not links to others)", path);
		return -EPERM;
	}
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	if (!img_cache_file_ok(st)) {
		log_err("cached image %s is not a private file of yours (owner uid %u, mode %03o): "
			"refused, someone else could have put it there", path, (unsigned)st->st_uid,
			(unsigned)(st->st_mode & 0777));
		close(fd);
		return -EPERM;
	}
	return fd;
}

/*
 * A cached image is used when its bytes still hash to the recorded value;
 * hashing is skipped when nothing asks for it (no @want) and the file's
 * size and mtime are those of the last check, as recorded by the user.
 * @want may name the image's own sha256 or that of the downloaded
 * (compressed) bytes.  What is hashed is the file opened, not a name.
 * Return: 0, -ENOENT (no record), -EBADMSG (changed, or not @want),
 * -EPERM (a symlink, or a file or record someone else could have written)
 */
static int img_cache_check(const char *path, const char *want)
{
	char rec[65], got[65], fetched[65];
	struct stat st;
	int fd, rc;

	fd = img_cache_open(path, &st);
	if (fd < 0)
		return fd;
	rc = img_recorded_sha(path, rec);
	if (rc == -EPERM)
		log_err("the sha256 record of %s is not a private file of yours: refused", path);
	if (rc)
		goto out;
	if (!want && img_verified_fresh(path, &st))
		goto out;
	log_info("verifying %s", path);
	rc = img_hash_fd(fd, "sha256", got, sizeof(got));
	if (rc)
		goto out;
	if (strcmp(got, rec)) {
		log_err("cached image %s changed: sha256 expected %s, got %s (remove it with "
			"'hutch images rm')",
			path, rec, got);
		rc = -EBADMSG;
		goto out;
	}
	if (want && strcmp(want, got) &&
	    !(img_recorded_fetched(path, fetched) && !strcmp(want, fetched))) {
		rc = -EBADMSG;
		goto out;
	}
	rc = img_mark_verified(path, &st);
out:
	close(fd);
	return rc;
}

/*
 * img_cache_prepare() - the cache directory, created 0700 when missing, on
 * a path nobody but the user and root can write (trust_dir())
 * Return: 0 with @dir set, -EPERM (logged), or an errno (logged)
 */
static int img_cache_prepare(char *dir, size_t n)
{
	char why[TRUST_WHY_MAX];
	int rc;

	rc = img_cache_dir(dir, n);
	if (!rc)
		rc = trust_dir(dir, 2, why, sizeof(why));	/* "hutch/images" are ours */
	if (rc == -EPERM)
		log_err("image cache %s: %s", dir, why);
	else if (rc)
		log_errno(rc, "image cache %s", dir);
	return rc;
}

/* ---- downloads ---------------------------------------------------------- */

/* https anywhere; http only to this host and only when the tests ask for it */
static bool img_url_allowed(const char *url)
{
	static const char *const local[] = { "http://127.0.0.1/", "http://127.0.0.1:",
					     "http://localhost/", "http://localhost:" };
	const char *allow = getenv("HUTCH_ALLOW_HTTP_LOCAL");

	if (!strncmp(url, "https://", 8))
		return url[8] != '\0' && url[8] != '/';
	if (!allow || strcmp(allow, "1"))
		return false;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(local); i++)
		if (!strncmp(url, local[i], strlen(local[i])))
			return true;
	return false;
}

struct img_dl {
	const struct lazy_curl *cu;
	CURL *c;
	int fd;
	uint64_t have;  /* bytes in the file before this response */
	uint64_t got;   /* bytes written from this response */
	uint64_t cap;
	long code;
	bool ranged;    /* Range was asked for */
	bool cr_ok;     /* Content-Range starts where we asked */
	bool started;
	int err;
	bool progress;
	uint64_t last_draw;
	const char *label;
};

static size_t img_dl_header(char *b, size_t sz, size_t nm, void *opaque)
{
	struct img_dl *d = opaque;
	size_t n = sz * nm;
	char want[64];

	if (n >= 5 && !strncasecmp(b, "HTTP/", 5)) {
		d->cr_ok = false; /* a new response (after 1xx or a redirect) */
		return n;
	}
	if (n > 20 && !strncasecmp(b, "Content-Range: bytes ", 21) &&
	    !util_snprintf(want, sizeof(want), "%llu-", (unsigned long long)d->have) &&
	    n - 21 >= strlen(want) && !strncmp(b + 21, want, strlen(want)))
		d->cr_ok = true;
	return n;
}

static size_t img_dl_write(char *b, size_t sz, size_t nm, void *opaque)
{
	struct img_dl *d = opaque;
	size_t n = sz * nm;
	int rc;

	if (!d->started) {
		d->started = true;
		d->cu->easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &d->code);
		if (d->code == 206 && !(d->ranged && d->cr_ok)) {
			d->err = -EPROTO; /* a range we did not ask for */
			return 0;
		}
		if (d->code == 200 && d->have) {
			/* the server ignored Range: start over */
			if (ftruncate(d->fd, 0) < 0 || lseek(d->fd, 0, SEEK_SET) < 0) {
				d->err = -errno;
				return 0;
			}
			d->have = 0;
		}
	}
	if (d->code != 200 && d->code != 206)
		return n; /* body of a redirect or an error page: dropped */
	if (d->have + d->got + n > d->cap) {
		d->err = -EFBIG;
		return 0;
	}
	rc = util_write_all(d->fd, b, n);
	if (rc) {
		d->err = rc;
		return 0;
	}
	d->got += n;
	return n;
}

static int img_dl_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut,
			   curl_off_t un)
{
	struct img_dl *d = opaque;
	uint64_t now = util_monotonic_ms(), total, done;
	char bar[31];
	int pct, fill;

	(void)ut;
	(void)un;
	if (!d->progress || !d->started || (d->code != 200 && d->code != 206) ||
	    now - d->last_draw < 200)
		return 0;
	d->last_draw = now;
	done = d->have + (uint64_t)dlnow;
	total = dltotal > 0 ? d->have + (uint64_t)dltotal : 0;
	pct = total ? (int)(done * 100 / total) : 0;
	fill = pct * 30 / 100;
	memset(bar, '=', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(30 - fill));
	bar[30] = '\0';
	if (total)
		fprintf(stderr, "\r%s [%s] %3d%% %.1f/%.1f MiB", d->label, bar, pct,
			(double)done / 1048576.0, (double)total / 1048576.0);
	else
		fprintf(stderr, "\r%s %.1f MiB", d->label, (double)done / 1048576.0);
	return 0;
}

/*
 * One request of img_fetch(): every option set afresh.  Range by hand, not
 * CURLOPT_RESUME_FROM: a server that ignores it answers 200 and the write
 * callback starts the file over.
 */
static int img_dl_setup(struct img_dl *d, const char *url, char *errbuf, char *range, size_t rn)
{
	const struct lazy_curl *cu = d->cu;
	CURL *c = d->c;

	d->got = 0;
	d->code = 0;
	d->started = false;
	d->cr_ok = false;
	d->err = 0;
	d->ranged = d->have > 0;
	errbuf[0] = '\0';
	cu->easy_reset(c);
	cu->easy_setopt(c, CURLOPT_URL, url);
	cu->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	cu->easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(c, CURLOPT_FAILONERROR, 0L);
	cu->easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	cu->easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	cu->easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	cu->easy_setopt(c, CURLOPT_USERAGENT, "hutch/" HUTCH_VERSION);
	cu->easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	cu->easy_setopt(c, CURLOPT_HEADERFUNCTION, img_dl_header);
	cu->easy_setopt(c, CURLOPT_HEADERDATA, d);
	cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, img_dl_write);
	cu->easy_setopt(c, CURLOPT_WRITEDATA, d);
	cu->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, img_dl_progress);
	cu->easy_setopt(c, CURLOPT_XFERINFODATA, d);
	cu->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (d->have) {
		if (util_snprintf(range, rn, "%llu-", (unsigned long long)d->have))
			return -EINVAL;
		cu->easy_setopt(c, CURLOPT_RANGE, range);
	}
	return 0;
}

/* the bar is throttled: finish it with the final count */
static void img_dl_bar_done(struct img_dl *d, bool ok)
{
	if (d->last_draw) {
		if (ok && (d->code == 200 || d->code == 206))
			fprintf(stderr, "\r%s [%.30s] 100%% %.1f MiB", d->label,
				"==============================",
				(double)(d->have + d->got) / 1048576.0);
		fputc('\n', stderr);
	}
	d->last_draw = 0;
}

/* a transfer libcurl gave up on: the reason, logged, as a negative errno */
static int img_dl_failed(const struct img_dl *d, CURLcode cr, const char *errbuf)
{
	if (d->err == -EPROTO)
		return d->err;
	if (d->err == -EFBIG)
		log_err("%s: larger than the %llu byte limit", d->label, (unsigned long long)d->cap);
	else if (d->err)
		log_errno(d->err, "%s: download", d->label);
	else
		log_err("%s: download failed: %s", d->label,
			errbuf[0] ? errbuf : d->cu->easy_strerror(cr));
	return d->err ? d->err : -EIO;
}

/*
 * img_fetch() - download @url into @part, resuming what is there
 * @resume: keep and continue an existing @part (else start from empty)
 *
 * The caller holds the cache lock (img_cache_lock), so no other hutch
 * writes to @part meanwhile.
 * Return: 0 with @part complete, or a negative errno (logged); @part is
 * kept on network errors so that the next attempt resumes.
 */
static int img_fetch(const char *url, const char *part, bool resume, bool progress,
		     const char *label)
{
	char cur[4096], errbuf[CURL_ERROR_SIZE], esc[256], range[32];
	struct img_dl d = { .fd = -1, .cap = img_max_bytes(), .progress = progress, .label = label };
	bool retried = false;
	const struct lazy_curl *cu;
	CURL *c = NULL;
	struct stat st;
	int rc, hops;

	if (util_snprintf(cur, sizeof(cur), "%s", url))
		return -ENAMETOOLONG;
	rc = lazy_curl(&cu);
	if (rc)
		return rc;
	d.cu = cu;
	d.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (d.fd < 0) {
		rc = -errno;
		log_errno(rc, "%s", part);
		return rc;
	}
	if (!resume && ftruncate(d.fd, 0) < 0) {
		rc = -errno;
		goto out;
	}
	c = cu->easy_init();
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	d.c = c;
	for (hops = 0;; hops++) {
		CURLcode cr;

		if (!img_url_allowed(cur)) {
			log_err("refusing to download %s: only https:// URLs are allowed",
				log_escape(esc, sizeof(esc), cur, strlen(cur)));
			rc = -EPERM;
			goto out;
		}
		if (fstat(d.fd, &st) < 0 || lseek(d.fd, 0, SEEK_END) < 0) {
			rc = -errno;
			goto out;
		}
		d.have = (uint64_t)st.st_size;
		rc = img_dl_setup(&d, cur, errbuf, range, sizeof(range));
		if (rc)
			goto out;
		cr = cu->easy_perform(c);
		cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &d.code);
		img_dl_bar_done(&d, cr == CURLE_OK);
		if (cr != CURLE_OK) {
			rc = img_dl_failed(&d, cr, errbuf);
			goto out;
		}
		if (d.code >= 300 && d.code < 400) {
			char *loc = NULL;

			cu->easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
			if (!loc || hops >= IMG_MAX_REDIRS) {
				log_err("%s: too many redirects or no Location", label);
				rc = -ELOOP;
				goto out;
			}
			if (util_snprintf(cur, sizeof(cur), "%s", loc)) {
				rc = -ENAMETOOLONG;
				goto out;
			}
			continue;
		}
		if (d.code == 416 && d.have && !retried) {
			/* our partial file is no prefix of what the server has now */
			retried = true;
			if (ftruncate(d.fd, 0) < 0) {
				rc = -errno;
				goto out;
			}
			continue;
		}
		if (d.code != 200 && d.code != 206) {
			log_err("%s: HTTP status %ld from %s", label, d.code,
				log_escape(esc, sizeof(esc), cur, strlen(cur)));
			rc = -EIO;
			goto out;
		}
		if (d.code == 206 && !d.cr_ok) {
			rc = -EPROTO;
			goto out;
		}
		break;
	}
	if (fsync(d.fd) < 0) {
		rc = -errno;
		goto out;
	}
	rc = 0;
out:
	if (rc == -EPROTO) {
		/* resuming cannot work against this server: start over next time */
		log_err("%s: server answered a range we did not ask for", label);
		if (ftruncate(d.fd, 0) < 0)
			log_warno(-errno, "%s", part);
	}
	if (c)
		cu->easy_cleanup(c);
	close(d.fd);
	return rc;
}

/* ---- decompression ------------------------------------------------------ */

enum img_comp { IMG_COMP_NONE, IMG_COMP_XZ, IMG_COMP_ZSTD, IMG_COMP_GZ };

static enum img_comp img_comp_magic(const char *path)
{
	uint8_t h[8];
	uint64_t fsize = 0;
	size_t got = 0;

	if (img_read_head(path, h, sizeof(h), &got, &fsize))
		return IMG_COMP_NONE;
	if (got >= 6 && !memcmp(h, "\xfd" "7zXZ\0", 6))
		return IMG_COMP_XZ;
	if (got >= 4 && !memcmp(h, "\x28\xb5\x2f\xfd", 4))
		return IMG_COMP_ZSTD;
	if (got >= 2 && h[0] == 0x1f && h[1] == 0x8b)
		return IMG_COMP_GZ;
	return IMG_COMP_NONE;
}

struct img_out {
	int fd;
	uint64_t n, cap;
};

static int img_out_write(struct img_out *o, const void *b, size_t n)
{
	if (o->n + n > o->cap)
		return -EFBIG;
	o->n += n;
	return util_write_all(o->fd, b, n);
}

/* streaming decompression of @in (fd) into @o, whatever the format */
/* struct img_codec - one decompressor's state across read()s */
struct img_codec {
	enum img_comp kind;
	lzma_stream xz;
	ZSTD_DStream *zs;
	z_stream gz;
	size_t zret;		/* zstd: 0 once a frame is decoded and flushed */
	bool in_member;		/* gzip: inside a member */
	bool done;
};

static uint8_t img_ob[1 << 17];

/* feed @r bytes of @ib (@eof: the last) to xz */
static int img_xz_step(struct img_codec *k, const uint8_t *ib, ssize_t r, bool eof,
		       struct img_out *o)
{
	int rc;

	k->xz.next_in = ib;
	k->xz.avail_in = (size_t)r;
	do {
		lzma_ret lr;

		k->xz.next_out = img_ob;
		k->xz.avail_out = sizeof(img_ob);
		lr = lzma_code(&k->xz, eof ? LZMA_FINISH : LZMA_RUN);
		rc = img_out_write(o, img_ob, sizeof(img_ob) - k->xz.avail_out);
		if (rc)
			return rc;
		if (lr == LZMA_STREAM_END) {
			k->done = true;
			return 0;
		}
		if (lr != LZMA_OK && lr != LZMA_BUF_ERROR)
			return -EBADMSG;
		if (lr == LZMA_BUF_ERROR && eof)
			return -EBADMSG; /* truncated */
	} while (k->xz.avail_in || k->xz.avail_out == 0);
	return 0;
}

static int img_zstd_step(struct img_codec *k, const uint8_t *ib, ssize_t r, bool eof,
			 struct img_out *o)
{
	ZSTD_inBuffer zin = { ib, (size_t)r, 0 };
	int rc;

	/* an empty call would reset zret: only call with input */
	while (r > 0) {
		ZSTD_outBuffer zout = { img_ob, sizeof(img_ob), 0 };

		k->zret = ZSTD_decompressStream(k->zs, &zout, &zin);
		if (ZSTD_isError(k->zret))
			return -EBADMSG;
		rc = img_out_write(o, img_ob, zout.pos);
		if (rc)
			return rc;
		if (zin.pos == zin.size && zout.pos < zout.size)
			break;
	}
	if (eof) {
		k->done = true;
		if (k->zret != 0)
			return -EBADMSG; /* truncated frame */
	}
	return 0;
}

static int img_gz_step(struct img_codec *k, const uint8_t *ib, ssize_t r, bool eof,
		       struct img_out *o)
{
	int rc;

	if (r > 0) {
		if (!k->in_member && inflateReset(&k->gz) != Z_OK)
			return -EBADMSG;
		k->in_member = true;
	}
	k->gz.next_in = (Bytef *)ib;
	k->gz.avail_in = (uInt)r;
	while (k->in_member) {
		int zr;

		k->gz.next_out = img_ob;
		k->gz.avail_out = sizeof(img_ob);
		zr = inflate(&k->gz, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
			return -EBADMSG;
		rc = img_out_write(o, img_ob, sizeof(img_ob) - k->gz.avail_out);
		if (rc)
			return rc;
		if (zr == Z_STREAM_END) {
			/* another gzip member may follow (RFC 1952 2.2) */
			k->in_member = false;
			if (k->gz.avail_in) {
				if (inflateReset(&k->gz) != Z_OK)
					return -EBADMSG;
				k->in_member = true;
			}
			continue;
		}
		if (k->gz.avail_in == 0 && k->gz.avail_out != 0)
			break;
	}
	if (eof)
		k->done = true;
	if (eof && (k->in_member || o->n == 0))
		return -EBADMSG; /* ended inside a member, or nothing at all */
	return 0;
}

static int img_codec_init(struct img_codec *k, enum img_comp kind)
{
	lzma_stream xz = LZMA_STREAM_INIT;

	memset(k, 0, sizeof(*k));
	k->kind = kind;
	k->xz = xz;
	k->zret = 1;
	switch (kind) {
	case IMG_COMP_XZ:
		return lzma_stream_decoder(&k->xz, UINT64_MAX, LZMA_CONCATENATED) == LZMA_OK ? 0 :
											     -ENOMEM;
	case IMG_COMP_ZSTD:
		k->zs = ZSTD_createDStream();
		return k->zs ? 0 : -ENOMEM;
	case IMG_COMP_GZ:
		return inflateInit2(&k->gz, 16 + MAX_WBITS) == Z_OK ? 0 : -ENOMEM;
	case IMG_COMP_NONE:
		break;
	}
	return -EINVAL;
}

static void img_codec_end(struct img_codec *k)
{
	if (k->kind == IMG_COMP_XZ)
		lzma_end(&k->xz);
	else if (k->kind == IMG_COMP_ZSTD)
		ZSTD_freeDStream(k->zs);
	else
		inflateEnd(&k->gz);
}

static int img_inflate(int in, enum img_comp kind, struct img_out *o)
{
	static uint8_t ib[1 << 17];
	struct img_codec k;
	bool eof = false;
	int rc;

	rc = img_codec_init(&k, kind);
	if (rc)
		return rc;
	while (!k.done) {
		ssize_t r = 0;

		if (!eof) {
			r = read(in, ib, sizeof(ib));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rc = -errno;
				break;
			}
			if (r == 0)
				eof = true;
		}
		if (kind == IMG_COMP_XZ)
			rc = img_xz_step(&k, ib, r, eof, o);
		else if (kind == IMG_COMP_ZSTD)
			rc = img_zstd_step(&k, ib, r, eof, o);
		else
			rc = img_gz_step(&k, ib, r, eof, o);
		if (rc)
			break;
		if (eof && !k.done) {
			rc = -EBADMSG;
			break;
		}
	}
	img_codec_end(&k);
	return rc;
}

/* decompress @src into @dst (through @dst.tmp.<pid> + rename) */
static int img_decompress(const char *src, const char *dst, enum img_comp kind)
{
	struct img_out o = { .fd = -1, .cap = img_max_bytes() };
	char tmp[PATH_MAX];
	int in, rc;

	rc = util_snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", dst, (long)getpid());
	if (rc)
		return rc;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (o.fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = img_inflate(in, kind, &o);
	if (!rc && fsync(o.fd) < 0)
		rc = -errno;
	if (close(o.fd) < 0 && !rc)
		rc = -errno;
	o.fd = -1;
	if (!rc && rename(tmp, dst) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
out:
	close(in);
	return rc;
}

/* ---- resolve ------------------------------------------------------------ */

static int img_sha256_url(const char *url, char hex[65])
{
	return img_hash_buf(url, strlen(url), hex);
}

/* alias URL, with the scheme and host replaced by $HUTCH_IMAGES_MIRROR */
static int img_alias_url(const char *url, char *buf, size_t n)
{
	const char *mirror = getenv("HUTCH_IMAGES_MIRROR");
	const char *path;

	if (!mirror || !*mirror)
		return util_snprintf(buf, n, "%s", url);
	path = strchr(url + 8, '/');
	return util_snprintf(buf, n, "%s%s", mirror, path ? path : "/");
}

static const char *img_basename(const char *url)
{
	const char *q = strrchr(url, '/');

	return q ? q + 1 : url;
}

/*
 * Fetch @url into the cache, check it (@want_algo/@want_hex from a
 * checksum file, and/or @sha256 from the user), decompress it, and move it
 * to @final with its records.  @part is deleted on a mismatch.
 */
static int img_download(const char *url, const char *final, const char *want_algo,
			const char *want_hex, const char *sha256, bool progress, const char *label)
{
	char dir[PATH_MAX], part[PATH_MAX], uhex[65], got[IMG_HEX_MAX], got256[65];
	char fetched[IMG_HEX_MAX + 8];
	enum img_comp kind;
	int rc;

	rc = img_cache_prepare(dir, sizeof(dir));
	if (rc)
		return rc;
	rc = img_sha256_url(url, uhex);
	if (!rc)
		rc = util_snprintf(part, sizeof(part), "%s/%s.part", dir, uhex);
	if (rc) {
		log_errno(rc, "image cache %s", dir);
		return rc;
	}
	log_info("downloading %s", url);
	rc = img_fetch(url, part, true, progress, label);
	if (rc)
		return rc;
	rc = img_hash_file(part, "sha256", got256, sizeof(got256));
	if (rc)
		goto err_part;
	if (sha256 && strcmp(sha256, got256)) {
		log_err("%s: sha256 mismatch: expected %s, got %s", url, sha256, got256);
		rc = -EBADMSG;
		goto err_part;
	}
	memcpy(fetched, "sha256:", 7);
	memcpy(fetched + 7, got256, sizeof(got256));
	if (want_algo) {
		if (strcmp(want_algo, "sha256")) {
			rc = img_hash_file(part, want_algo, got, sizeof(got));
			if (rc)
				goto err_part;
		} else {
			memcpy(got, got256, sizeof(got256));
		}
		if (strcmp(want_hex, got)) {
			log_err("%s: %s mismatch: expected %s, got %s", url, want_algo, want_hex, got);
			rc = -EBADMSG;
			goto err_part;
		}
	}
	if (!sha256 && !want_algo)
		log_warn("%s: no image_sha256 given; trusting the TLS connection alone", url);
	kind = img_comp_magic(part);
	if (kind != IMG_COMP_NONE) {
		log_info("decompressing %s", label);
		rc = img_decompress(part, final, kind);
		if (rc) {
			log_errno(rc, "%s: decompression failed", url);
			goto err_part;
		}
		unlink(part);
	} else if (rename(part, final) < 0) {
		rc = -errno;
		goto err_part;
	}
	/* the image's own sha256: that of the download unless it was decompressed */
	rc = kind == IMG_COMP_NONE ? 0 : img_hash_file(final, "sha256", got256, sizeof(got256));
	if (!rc)
		rc = img_cache_record(final, got256, url, fetched);
	if (rc) {
		img_cache_remove(final);
		log_errno(rc, "%s: recording it in the cache", final);
	}
	return rc;

err_part:
	unlink(part);
	return rc;
}

/* the entry for @alias in its distribution's checksum file */
static int img_alias_sums(const struct img_alias *a, const char *url, char algo[8], char *hex,
			  size_t hexsz)
{
	char dir[PATH_MAX], tmp[PATH_MAX], uhex[65], sums_url[4096], *txt = NULL;
	size_t len;
	int rc;

	rc = img_alias_url(a->sums, sums_url, sizeof(sums_url));
	if (!rc)
		rc = img_cache_prepare(dir, sizeof(dir));
	if (!rc)
		rc = img_sha256_url(sums_url, uhex);
	if (!rc)
		rc = util_snprintf(tmp, sizeof(tmp), "%s/%s.sums", dir, uhex);
	if (rc)
		return rc;
	rc = img_fetch(sums_url, tmp, false, false, img_basename(sums_url));
	if (!rc)
		rc = util_read_file(tmp, IMG_SUMS_MAX, &txt, &len);
	unlink(tmp);
	if (rc) {
		log_errno(rc, "%s: checksum file %s", a->name, sums_url);
		return rc;
	}
	rc = img_checksum_find(txt, len, img_basename(url), algo, hex, hexsz);
	if (rc)
		log_err("%s: %s has no entry for %s", a->name, sums_url, img_basename(url));
	free(txt);
	return rc;
}

static const struct img_alias *img_alias_find(const char *name)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(img_aliases); i++)
		if (!strcmp(img_aliases[i].name, name))
			return &img_aliases[i];
	return NULL;
}

/*
 * img_cache_lock() - serialise downloads into the cache between hutch
 * processes (two `hutch up` of the same image), with flock(2) on the cache
 * directory.  The caller checks the cache again once it holds the lock.
 * Return: the locked fd (close it to unlock), or a negative errno
 */
static int img_cache_lock(void)
{
	char dir[PATH_MAX], msg[PATH_MAX + 64];
	int rc;

	rc = img_cache_prepare(dir, sizeof(dir));
	if (rc)
		return rc;
	if (util_snprintf(msg, sizeof(msg), "waiting for another hutch downloading into %s", dir))
		msg[0] = 0;
	return util_flock(dir, true, msg[0] ? msg : NULL);
}

/*
 * img_cached() - is @final usable as it is?
 * @refetch: a cached copy that does not match may be replaced (URLs);
 *           for aliases a mismatch is an error (it may be a local build)
 * Return: 0 (use it), -ENOENT (fetch it), or an error (logged)
 */
static int img_cached(const char *final, const char *sha256, bool refetch)
{
	struct stat st;
	int rc;

	if (lstat(final, &st) != 0)
		return -ENOENT;
	rc = img_cache_check(final, sha256);
	if (rc == 0 || rc == -ENOENT) /* -ENOENT: no record, a leftover */
		return rc;
	if (rc == -EBADMSG && refetch) {
		log_info("%s: cached copy does not match, fetching again", final);
		img_cache_remove(final);
		return -ENOENT;
	}
	if (rc == -EBADMSG && sha256)
		log_err("%s: cached copy does not have sha256 %s", final, sha256);
	return rc;
}

static int img_finish(const char *path, struct img_ref *out, bool drop_on_refusal)
{
	struct img_ref r;
	int rc = img_probe(path, &r);

	if (rc) {
		if (drop_on_refusal)
			img_cache_remove(path);
		return rc;
	}
	*out = r;
	return 0;
}

static int img_resolve_alias(const char *name, const struct img_alias *a, const char *sha256,
			     bool progress, struct img_ref *out)
{
	char dir[PATH_MAX], final[PATH_MAX], url[4096], algo[8], hex[IMG_HEX_MAX], file[80];
	int rc, lock;

	rc = img_cache_prepare(dir, sizeof(dir));
	if (!rc)
		rc = util_snprintf(file, sizeof(file), "%s.qcow2", name);
	if (!rc)
		rc = util_path_join(final, sizeof(final), dir, file);
	if (rc)
		return rc;
	rc = img_cached(final, sha256, false);
	if (rc != -ENOENT)
		return rc ? rc : img_finish(final, out, false);
	if (!a) {
		log_err("image '%s': not a known alias, not in the cache (try 'hutch images build %s'), "
			"and no such file",
			name, name);
		return -ENOENT;
	}
	rc = img_alias_url(a->url, url, sizeof(url));
	if (rc)
		return rc;
	lock = img_cache_lock();
	if (lock < 0)
		return lock;
	rc = img_cached(final, sha256, false); /* another hutch may have fetched it */
	if (rc != -ENOENT)
		goto out;
	rc = img_alias_sums(a, url, algo, hex, sizeof(hex));
	if (!rc)
		rc = img_download(url, final, algo, hex, sha256, progress, name);
out:
	close(lock);
	if (rc)
		return rc;
	return img_finish(final, out, true);
}

static int img_resolve_url(const char *url, const char *sha256, bool progress,
			   struct img_ref *out)
{
	static const char *const comp_ext[] = { ".xz", ".zst", ".gz" };
	char dir[PATH_MAX], final[PATH_MAX], uhex[65], name[128];
	const char *base = img_basename(url);
	size_t bl, i;
	int rc, lock;

	if (!img_url_allowed(url)) {
		log_err("image URL %s: only https:// is allowed", url);
		return -EPERM;
	}
	rc = img_cache_prepare(dir, sizeof(dir));
	if (!rc)
		rc = img_sha256_url(url, uhex);
	if (rc)
		return rc;
	/* u-<16 hex>-<basename without query, compression suffix, odd bytes> */
	memcpy(name, "u-", 2);
	memcpy(name + 2, uhex, 16);
	name[18] = '-';
	for (bl = 0; base[bl] && base[bl] != '?' && base[bl] != '#' && bl < 64; bl++)
		name[19 + bl] = (isalnum((unsigned char)base[bl]) || base[bl] == '.' ||
				 base[bl] == '_' || base[bl] == '-') ?
					base[bl] :
					'_';
	name[19 + bl] = '\0';
	for (i = 0; i < UTIL_ARRAY_SIZE(comp_ext); i++) {
		size_t el = strlen(comp_ext[i]);

		if (bl > el && !strcmp(name + 19 + bl - el, comp_ext[i]))
			name[19 + bl - el] = '\0';
	}
	if (bl == 0)
		memcpy(name + 19, "image", 6);
	rc = util_path_join(final, sizeof(final), dir, name);
	if (rc)
		return rc;
	rc = img_cached(final, sha256, true);
	if (rc != -ENOENT)
		return rc ? rc : img_finish(final, out, false);
	lock = img_cache_lock();
	if (lock < 0)
		return lock;
	rc = img_cached(final, sha256, true);
	if (rc == -ENOENT)
		rc = img_download(url, final, NULL, NULL, sha256, progress, base);
	close(lock);
	if (rc)
		return rc;
	return img_finish(final, out, true);
}

/*
 * A local image: a path the project names, so held to trust_open(): inside
 * the project without a symlink (a regular file of the user's), or in a
 * place the user's config allows.  Hashed and probed through that one fd.
 */
static int img_resolve_path(const char *spec, const char *sha256, const char *project_dir,
			    struct img_ref *out)
{
	char cwd[PATH_MAX], got[65], why[TRUST_WHY_MAX], *norm = NULL;
	int fd, rc;

	if (!project_dir && !(project_dir = getcwd(cwd, sizeof(cwd))))
		return -errno;
	rc = cfg_path_abs(project_dir, spec, &norm);
	if (rc)
		return rc;
	rc = trust_open(project_dir, norm, O_RDONLY, &fd, NULL, why, sizeof(why));
	if (rc == -EPERM)
		log_err("image %s %s", norm, why);
	else if (rc)
		log_errno(rc, "image %s", norm);
	if (rc) {
		free(norm);
		return rc;
	}
	if (sha256) {
		rc = img_hash_fd(fd, "sha256", got, sizeof(got));
		if (rc)
			log_errno(rc, "image %s", norm);
		else if (strcmp(got, sha256)) {
			log_err("image %s: sha256 mismatch: expected %s, got %s", norm, sha256, got);
			rc = -EBADMSG;
		}
	}
	if (!rc)
		rc = img_probe_fd(fd, norm, out);
	close(fd);
	free(norm);
	return rc;
}

static bool img_alias_like(const char *s)
{
	if (!isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; s[i]; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return strlen(s) <= 64;
}

int img_resolve(const char *spec, const char *sha256, const char *project_dir, bool progress,
		struct img_ref *out)
{
	char want[65], local[PATH_MAX];
	const struct img_alias *a;

	if (!spec || !*spec)
		return -EINVAL;
	if (sha256) {
		if (strlen(sha256) != 64 || !img_hex_norm(sha256, 64, want)) {
			log_err("image_sha256 must be 64 hex digits");
			return -EINVAL;
		}
		sha256 = want;
	}
	if (!strncmp(spec, "https://", 8) || !strncmp(spec, "http://", 7))
		return img_resolve_url(spec, sha256, progress, out);
	if (img_alias_like(spec)) {
		a = img_alias_find(spec);
		if (a)
			return img_resolve_alias(spec, a, sha256, progress, out);
		/* a name built by `hutch images build`, unless a file of that name is here */
		if (util_path_join(local, sizeof(local), project_dir ? project_dir : ".", spec) ||
		    access(local, F_OK) != 0)
			return img_resolve_alias(spec, NULL, sha256, progress, out);
	}
	return img_resolve_path(spec, sha256, project_dir, out);
}

/* ---- overlays ----------------------------------------------------------- */

int img_backing_check(const char *disk, const char *project_dir)
{
	char backing[PATH_MAX], cache[PATH_MAX], why[TRUST_WHY_MAX];
	const char *rel;
	struct stat st;
	size_t cl;
	int fd, rc;

	rc = img_qcow2_backing(disk, backing, sizeof(backing));
	if (rc == -ENOENT || (!rc && !backing[0]))
		return 0;	/* no disk (kernel boot), or no backing file */
	if (rc)
		return rc;
	rc = img_cache_dir(cache, sizeof(cache));
	if (rc)
		return rc;
	cl = strlen(cache);
	rel = !strncmp(backing, cache, cl) && backing[cl] == '/' ? backing + cl + 1 : NULL;
	if (rel && !strchr(rel, '/')) {
		/* in the cache: a file of ours, as img_cache_check() wants it */
		fd = img_cache_open(backing, &st);
		if (fd < 0)
			return fd;
		close(fd);
		return 0;
	}
	/* a local image: still the project's own file (or one the user allows) */
	rc = trust_check(project_dir, backing, TRUST_FILE, TRUST_MUST_EXIST, why, sizeof(why));
	if (rc == -EPERM)
		log_err("%s: its base image %s %s", disk, backing, why);
	else if (rc)
		log_errno(rc, "%s: its base image %s", disk, backing);
	return rc;
}

/*
 * The base's path still names the file that was verified (same device and
 * inode, not a symlink): nobody swapped it between the check and now.
 */
static int img_overlay_base_same(const struct img_ref *base)
{
	struct stat st;

	if (!base->ino)
		return 0;	/* an img_ref made by hand (tests) */
	if (lstat(base->path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_dev != base->dev || st.st_ino != base->ino) {
		log_err("image %s changed after it was verified: refused", base->path);
		return -EPERM;
	}
	return 0;
}

int img_overlay_create(const struct img_ref *base, const char *path, unsigned disk_gib)
{
	char size[32], *out = NULL;
	const char *argv[14];
	size_t n = 0;
	int rc, st;

	if (strcmp(base->format, "qcow2") && strcmp(base->format, "raw"))
		return -EINVAL;
	if (disk_gib && ((uint64_t)disk_gib << 30) < base->vsize) {
		log_err("disk size %u GiB is smaller than the image (%.1f GiB)", disk_gib,
			(double)base->vsize / (double)(1ull << 30));
		return -EINVAL;
	}
	/* never clobber a VM's disk */
	if (access(path, F_OK) == 0) {
		log_err("%s already exists", path);
		return -EEXIST;
	}
	rc = img_overlay_base_same(base);
	if (rc)
		return rc;
	/*
	 * -u: qemu-img does not open the base at all (it would by name, after
	 * our check); the size it would have read is the one we verified.
	 */
	if (disk_gib)
		rc = util_snprintf(size, sizeof(size), "%uG", disk_gib);
	else
		rc = util_snprintf(size, sizeof(size), "%llu", (unsigned long long)base->vsize);
	if (rc)
		return rc;
	argv[n++] = "qemu-img";
	argv[n++] = "create";
	argv[n++] = "-q";
	argv[n++] = "-f";
	argv[n++] = "qcow2";
	argv[n++] = "-F";
	argv[n++] = base->format;
	argv[n++] = "-b";
	argv[n++] = base->path;
	argv[n++] = "-u";
	argv[n++] = path;
	argv[n++] = size;
	argv[n] = NULL;
	rc = proc_run(argv, NULL, &out, 4096, &st);
	if (rc) {
		log_errno(rc, "qemu-img");
		return rc == -ENOENT ? -ENOENT : rc;
	}
	if (proc_exit_code(st) != 0) {
		char esc[1024];

		log_err("qemu-img create %s failed: %s", path,
			log_escape(esc, sizeof(esc), out ? out : "", out ? strlen(out) : 0));
		unlink(path);
		rc = -EIO;
	}
	free(out);
	return rc;
}
