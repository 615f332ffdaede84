/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_IMG_H
#define HUTCH_IMG_H
/**
 * DOC: img - base images: aliases, download, verification, cache, overlays
 *
 * A base image is named by an alias (debian-12, ...), an https URL or a
 * local path.  Downloads go through libcurl into
 * $XDG_CACHE_HOME/hutch/images/ via a temporary file and rename(2),
 * resumable, with a progress bar when stderr is a terminal, sha256-verified
 * (image_sha256, or the alias's checksum file), decompressed (.xz .zst .gz).
 * A cached image is never modified.  A qcow2 base with a backing file of its
 * own is refused (it could point anywhere on the host).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/**
 * struct img_ref - a resolved, verified base image
 * @path:   absolute path in the cache (or the local file)
 * @format: "qcow2" or "raw"
 * @vsize:  virtual size in bytes
 * @dev, @ino: the file that was verified (img_overlay_create() checks that
 *          the path still names it)
 */
struct img_ref {
	char path[4096];
	char format[16];
	uint64_t vsize;
	dev_t dev;
	ino_t ino;
};

/**
 * img_resolve() - find or fetch a base image
 * @spec:        alias, https URL, or path (relative paths against @project_dir)
 * @sha256:      expected sha256 (64 hex) or NULL
 * @project_dir: directory of hutch.yaml
 * @progress:    draw a progress bar on stderr
 * @out:         filled on success
 * Return: 0, or a negative errno with the reason logged
 */
int img_resolve(const char *spec, const char *sha256, const char *project_dir, bool progress,
		struct img_ref *out);

/**
 * img_backing_check() - the base image a VM disk names is still one to use
 * @disk:        the VM's disk.qcow2
 * @project_dir: the project it belongs to
 *
 * QEMU opens the backing file by the name recorded in @disk at every boot.
 * A cached base must still be a private file of the cache (no symlink); a
 * local one must still pass trust_check() (a later `git pull` may have made
 * it a symlink to a host file).
 * Return: 0 (also when there is no disk or no backing file), -EPERM
 * (logged), or an errno
 */
int img_backing_check(const char *disk, const char *project_dir);

/**
 * img_overlay_create() - qcow2 overlay at @path over @base, grown to @disk_gib
 * (0 = the base's size; smaller than the base is an error)
 */
int img_overlay_create(const struct img_ref *base, const char *path, unsigned disk_gib);

/* The pieces below are used by `hutch images`, the tests and the fuzz targets. */

/** img_cache_dir() - $XDG_CACHE_HOME/hutch/images (not created here) */
int img_cache_dir(char *buf, size_t n);

/**
 * struct img_qcow2_hdr - the fields of a qcow2 header hutch looks at
 * @version:        2 or 3
 * @size:           virtual size in bytes
 * @backing_offset: file offset of the backing file name (0: none)
 * @backing_size:   its length
 * @crypt_method:   0 none, 1 AES, 2 LUKS
 * @incompatible:   incompatible feature bits (v3; 0 for v2)
 */
struct img_qcow2_hdr {
	uint32_t version;
	uint64_t size;
	uint64_t backing_offset;
	uint32_t backing_size;
	uint32_t crypt_method;
	uint64_t incompatible;
};

/* incompatible feature bit 2: the guest data lives in another file, named in the image */
#define IMG_QCOW2_INCOMPAT_DATA_FILE (1ull << 2)

/**
 * img_qcow2_parse() - parse a qcow2 header from untrusted bytes
 * @buf: the first bytes of the file
 * @n:   how many are there
 * Return: 0 with *@out filled, -EINVAL (not qcow2, truncated, bad field),
 * -ENOTSUP (version other than 2 or 3)
 */
int img_qcow2_parse(const void *buf, size_t n, struct img_qcow2_hdr *out);

/**
 * img_probe() - format and virtual size of an image file; refuses a qcow2
 * with a backing file or an external data file, or an encrypted one
 * Return: 0 with @out filled, -EPERM (refused, reason logged), or an errno
 */
int img_probe(const char *path, struct img_ref *out);

/**
 * img_qcow2_backing() - the backing file name recorded in a qcow2 (for
 * `images rm` to see which VM disks use an image)
 * Return: 0 with @buf set ("" when none), or a negative errno
 */
int img_qcow2_backing(const char *path, char *buf, size_t n);

/**
 * img_checksum_find() - look a file name up in a checksum file
 * @text, @n:  the checksum file (untrusted: from the network)
 * @fname:     the file name to find
 * @algo:      set to "sha256" or "sha512"
 * @hex:       set to the lower-case hex digest (at least 129 bytes)
 *
 * Understands GNU lines ("HEX  name", "HEX *name") and BSD lines
 * ("SHA256 (name) = HEX", Fedora's CHECKSUM files); other lines (PGP
 * armour, comments) are skipped.
 * Return: 0, or -ENOENT when @fname has no entry
 */
int img_checksum_find(const char *text, size_t n, const char *fname, char algo[8], char *hex,
		      size_t hexsz);

/** img_hash_file() - hex digest ("sha256" or "sha512") of a whole file (not through a symlink) */
int img_hash_file(const char *path, const char *algo, char *hex, size_t hexsz);

/** img_hash_fd() - img_hash_file() of what is left to read from @fd */
int img_hash_fd(int fd, const char *algo, char *hex, size_t hexsz);

/** img_hash_buf() - sha256 of @n bytes as 64 lower-case hex digits */
int img_hash_buf(const void *buf, size_t n, char hex[65]);

/**
 * img_cache_record() - write the sidecar files of a cached image
 * @path:    the image, inside the cache
 * @sha256:  its sha256 (64 hex)
 * @source:  where it came from (URL, "recipe:PATH", ...)
 * @fetched: "sha256:HEX" / "sha512:HEX" of the downloaded bytes, or NULL
 *
 * <path>.sha256 ("HEX  NAME", as sha256sum writes it), <path>.source and
 * <path>.verified (size and mtime when the sha256 was last checked).
 */
int img_cache_record(const char *path, const char *sha256, const char *source,
		     const char *fetched);

/** img_alias_names() - the built-in aliases, NULL-terminated */
const char *const *img_alias_names(void);

#endif
