// SPDX-License-Identifier: MIT
/*
 * t_iso: iso_write() read back by an independent reader of ECMA-119:
 * descriptors, both-endian fields, path tables, the Joliet root directory
 * (names exactly as given), the file bytes, and records never crossing a
 * sector.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images/iso.h"
#include "src/util.h"
#include "tap.h"

#define SEC 2048u

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static int both32_ok(const uint8_t *p) { return le32(p) == be32(p + 4); }
static int both16_ok(const uint8_t *p) { return le16(p) == be16(p + 2); }

/*
 * Find @name in the directory at @lba/@size of @img (Joliet when @joliet).
 * Return: the record, or NULL; *@bad set when a record crosses a sector.
 */
static const uint8_t *find(const uint8_t *img, size_t n, uint32_t lba, uint32_t size, bool joliet,
			   const char *name, int *bad)
{
	size_t off = (size_t)lba * SEC, end = off + size;

	if (end > n) {
		(*bad)++;
		return NULL;
	}
	while (off < end) {
		const uint8_t *r = img + off;
		size_t l = r[0];

		if (l == 0) { /* rest of the sector is padding */
			off = (off / SEC + 1) * SEC;
			continue;
		}
		if (off / SEC != (off + l - 1) / SEC || l < 34)
			(*bad)++;
		if (!both32_ok(r + 2) || !both32_ok(r + 10) || !both16_ok(r + 28))
			(*bad)++;
		if (joliet) {
			size_t il = r[32], k, nl = strlen(name);

			if (il == 2 * nl) {
				for (k = 0; k < nl; k++)
					if (r[33 + 2 * k] != 0 || r[34 + 2 * k] != (uint8_t)name[k])
						break;
				if (k == nl)
					return r;
			}
		} else if (r[32] == strlen(name) && !memcmp(r + 33, name, r[32])) {
			return r;
		}
		off += l;
	}
	return NULL;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	char *b;

	if (util_read_file(path, 1u << 26, &b, n))
		return NULL;
	return (uint8_t *)b;
}

static void check_file(const uint8_t *img, size_t n, uint32_t root, uint32_t rsize,
		       const struct iso_file *f, bool joliet, const char *pname)
{
	int bad = 0;
	const uint8_t *r = find(img, n, root, rsize, joliet, joliet ? f->name : pname, &bad);
	uint32_t lba, len;

	ok(r != NULL, "%s record for %s found", joliet ? "Joliet" : "primary",
	   joliet ? f->name : pname);
	ok(bad == 0, "%s directory records well formed", joliet ? "Joliet" : "primary");
	if (!r)
		return;
	lba = le32(r + 2);
	len = le32(r + 10);
	is_int(len, f->len, "%s: size recorded", f->name);
	ok(len == 0 || ((size_t)lba * SEC + len <= n &&
			!memcmp(img + (size_t)lba * SEC, f->data, len)),
	   "%s: bytes read back exactly", f->name);
	ok(!(r[25] & 2), "%s: not a directory", f->name);
}

int main(void)
{
	char dir[] = "/tmp/t_iso.XXXXXX", path[4096];
	static char big[5000], many_names[100][16];
	struct iso_file files[3], many[100];
	uint32_t proot, psize, jroot, jsize;
	uint8_t *img;
	size_t n, i;
	int bad = 0;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/seed.iso", dir);
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 3);
	files[0] = (struct iso_file){ "user-data", "#cloud-config\nusers: []\n", 24 };
	files[1] = (struct iso_file){ "meta-data", "", 0 };
	files[2] = (struct iso_file){ "network-config", big, sizeof(big) };
	is_int(iso_write(path, "cidata", files, 3), 0, "iso_write with 3 files (empty, >2048)");
	img = slurp(path, &n);
	ok(img && n % SEC == 0 && n >= 19 * SEC, "image is whole sectors, %zu bytes", n);
	if (!img)
		return tap_done();
	ok(img[16 * SEC] == 1 && !memcmp(img + 16 * SEC + 1, "CD001", 5) && img[16 * SEC + 6] == 1,
	   "primary volume descriptor at sector 16");
	ok(!memcmp(img + 16 * SEC + 40, "cidata ", 7), "volume id cidata");
	ok(both32_ok(img + 16 * SEC + 80) && le32(img + 16 * SEC + 80) == n / SEC,
	   "volume space size both-endian = image size");
	ok(both16_ok(img + 16 * SEC + 128) && le16(img + 16 * SEC + 128) == SEC, "block size 2048");
	ok(img[17 * SEC] == 2 && !memcmp(img + 17 * SEC + 88, "%/E", 3),
	   "Joliet supplementary descriptor (UCS-2 level 3) at 17");
	ok(!memcmp(img + 17 * SEC + 40, "\0c\0i\0d\0a\0t\0a\0 ", 14), "Joliet volume id cidata");
	ok(img[18 * SEC] == 255 && !memcmp(img + 18 * SEC + 1, "CD001", 5), "terminator at 18");
	{
		const uint8_t *pv = img + 16 * SEC;
		uint32_t lpt = le32(pv + 140), mpt = be32(pv + 148);

		ok(both32_ok(pv + 132) && le32(pv + 132) == 10, "path table size 10 (root only)");
		ok(lpt * SEC < n && mpt * SEC < n && le32(img + lpt * SEC + 2) == le32(pv + 158) &&
			   be32(img + mpt * SEC + 2) == le32(pv + 158) &&
			   img[lpt * SEC] == 1 && le16(img + lpt * SEC + 6) == 1,
		   "L and M path tables point at the root directory");
	}
	proot = le32(img + 16 * SEC + 156 + 2);
	psize = le32(img + 16 * SEC + 156 + 10);
	jroot = le32(img + 17 * SEC + 156 + 2);
	jsize = le32(img + 17 * SEC + 156 + 10);
	ok(img[16 * SEC + 156] == 34 && (img[16 * SEC + 156 + 25] & 2), "root record is a directory");
	ok(proot != jroot, "primary and Joliet roots are separate directories");
	check_file(img, n, jroot, jsize, &files[0], true, NULL);
	check_file(img, n, jroot, jsize, &files[1], true, NULL);
	check_file(img, n, jroot, jsize, &files[2], true, NULL);
	check_file(img, n, proot, psize, &files[0], false, "USER_DATA.;1");
	check_file(img, n, proot, psize, &files[2], false, "NETWORK_CONFIG.;1");
	ok(!find(img, n, jroot, jsize, true, "User-data", &bad), "Joliet lookup is exact");
	free(img);

	/* 100 files: directories span sectors, records never cross one */
	for (i = 0; i < 100; i++) {
		snprintf(many_names[i], sizeof(many_names[i]), "file-%03zu.txt", i);
		many[i] = (struct iso_file){ many_names[i], many_names[i], strlen(many_names[i]) };
	}
	is_int(iso_write(path, "cidata", many, 100), 0, "iso_write with 100 files");
	img = slurp(path, &n);
	if (img) {
		jroot = le32(img + 17 * SEC + 156 + 2);
		jsize = le32(img + 17 * SEC + 156 + 10);
		ok(jsize > SEC, "Joliet directory spans %u sectors", jsize / SEC);
		bad = 0;
		for (i = 0; i < 100; i++) {
			const uint8_t *r = find(img, n, jroot, jsize, true, many_names[i], &bad);

			if (!r || memcmp(img + (size_t)le32(r + 2) * SEC, many_names[i], le32(r + 10)))
				bad++;
		}
		is_int(bad, 0, "all 100 files found with their bytes, no record crosses a sector");
		free(img);
	}

	/* refusals, and no temp file left behind */
	files[0].name = "User-Data";
	is_int(iso_write(path, "cidata", files, 1), -EINVAL, "upper-case name refused");
	files[0].name = "a/b";
	is_int(iso_write(path, "cidata", files, 1), -EINVAL, "slash refused");
	files[0].name = "meta-data";
	is_int(iso_write(path, "cidata", files, 2), -EINVAL, "duplicate name refused");
	is_int(iso_write(path, "", files, 1), -EINVAL, "empty volume id refused");
	is_int(iso_write(path, "seventeen-chars-x", files, 1), -EINVAL, "volume id over 16 refused");
	snprintf(path, sizeof(path), "%s/missing/seed.iso", dir);
	ok(iso_write(path, "cidata", files, 1) == -ENOENT, "missing directory: -ENOENT");
	snprintf(path, sizeof(path), "%s/seed.iso", dir);
	unlink(path);
	ok(rmdir(dir) == 0, "nothing but the image left in the directory");
	return tap_done();
}
