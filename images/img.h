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

/**
 * struct img_ref - a resolved, verified base image
 * @path:   absolute path in the cache (or the local file)
 * @format: "qcow2" or "raw"
 * @vsize:  virtual size in bytes
 */
struct img_ref {
	char path[4096];
	char format[16];
	uint64_t vsize;
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
 * img_overlay_create() - qcow2 overlay at @path over @base, grown to @disk_gib
 * (0 = the base's size; smaller than the base is an error)
 */
int img_overlay_create(const struct img_ref *base, const char *path, unsigned disk_gib);

#endif
