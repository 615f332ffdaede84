// SPDX-License-Identifier: MIT
/**
 * DOC: iso - ISO 9660 (ECMA-119) writer with a Joliet supplementary volume
 *
 * The NoCloud seed holds a handful of small files in the root directory,
 * so the layout is fixed and computed up front:
 *
 *   sector  0..15  system area (zeros)
 *   sector  16     primary volume descriptor (ECMA-119 8.4)
 *   sector  17     Joliet supplementary volume descriptor (escape "%/E",
 *                  UCS-2 level 3)
 *   sector  18     volume descriptor set terminator (8.3)
 *   sector  19..22 path tables: primary L, primary M, Joliet L, Joliet M
 *                  (one record each: the root directory)
 *   then           primary root directory, Joliet root directory,
 *                  then each file's data, sector aligned
 *
 * The primary directory carries level 2 names (upper case d-characters,
 * ";1" version), because that is all ECMA-119 allows.  cloud-init reads
 * the Joliet names, where "user-data" keeps its case and its dash: Linux'
 * isofs driver and blkid prefer the Joliet tree when it is present.
 * Joliet names are written without the ";1" version suffix.
 */
#include "images/iso.h"

#include "src/log.h"
#include "src/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ISO_SECTOR    2048u
#define ISO_PVD_LBA   16u
#define ISO_PT_LBA    19u /* 4 path tables, one sector each */
#define ISO_ROOT_LBA  23u
#define ISO_NAME_MAX  64u
#define ISO_FILES_MAX 1024u
#define ISO_L2_MAX    30u /* ECMA-119 7.5.1 level 2: name + extension */

/* one file as laid out: both names, data position */
struct iso_ent {
	const struct iso_file *f;
	char pname[ISO_L2_MAX + 4];   /* primary "NAME.EXT;1" */
	uint8_t jname[ISO_NAME_MAX * 2]; /* UCS-2BE */
	size_t jlen;                  /* bytes */
	uint32_t lba;
};

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* "both-byte orders" fields (ECMA-119 7.2.3, 7.3.3): LE then BE */
static void put_both16(uint8_t *p, uint16_t v)
{
	put_le16(p, v);
	put_be16(p + 2, v);
}

static void put_both32(uint8_t *p, uint32_t v)
{
	put_le32(p, v);
	put_be32(p + 4, v);
}

/* a-/d-character field padded with spaces */
static void put_str(uint8_t *p, size_t n, const char *s)
{
	size_t l = strlen(s);

	memset(p, ' ', n);
	memcpy(p, s, l < n ? l : n);
}

/* UCS-2BE field padded with U+0020 (Joliet fields are padded with spaces too) */
static void put_ucs2(uint8_t *p, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2) {
		p[i] = 0;
		p[i + 1] = ' ';
	}
	for (i = 0; s[i] && 2 * i + 1 < n; i++)
		p[2 * i + 1] = (uint8_t)s[i];
}

static bool iso_name_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		char c = s[i];

		if (i >= ISO_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return i > 0;
}

/*
 * Primary (level 2) name: upper case, d-characters only, the last dot kept
 * as the separator, name + extension at most 30 characters, ";1" version.
 * The file must have a dot (7.5.1: the separator is always recorded).
 */
static void iso_primary_name(const char *s, char *out, size_t outsz)
{
	const char *dot = strrchr(s, '.');
	size_t nl = dot ? (size_t)(dot - s) : strlen(s);
	size_t el = dot ? strlen(dot + 1) : 0;
	char base[ISO_L2_MAX + 1], ext[ISO_L2_MAX + 1];
	size_t i;

	if (el > ISO_L2_MAX - 1)
		el = ISO_L2_MAX - 1;
	if (nl + el > ISO_L2_MAX)
		nl = ISO_L2_MAX - el;
	for (i = 0; i < nl; i++) {
		char c = s[i];

		base[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') :
			  (c >= '0' && c <= '9') ? c : '_';
	}
	base[nl] = '\0';
	for (i = 0; i < el; i++) {
		char c = dot[1 + i];

		ext[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') :
			 (c >= '0' && c <= '9') ? c : '_';
	}
	ext[el] = '\0';
	/* sizes are bounded above: 30 + '.' + ";1" + NUL fits outsz */
	(void)util_snprintf(out, outsz, "%s.%s;1", base, ext);
}

static int iso_cmp_primary(const void *a, const void *b)
{
	const struct iso_ent *x = *(const struct iso_ent *const *)a;
	const struct iso_ent *y = *(const struct iso_ent *const *)b;

	return strcmp(x->pname, y->pname);
}

/* Joliet records sort by UCS-2 code points; our names are ASCII */
static int iso_cmp_joliet(const void *a, const void *b)
{
	const struct iso_ent *x = *(const struct iso_ent *const *)a;
	const struct iso_ent *y = *(const struct iso_ent *const *)b;

	return strcmp(x->f->name, y->f->name);
}

/* length of a directory record with an identifier of @idl bytes (9.1.12 pad) */
static uint32_t iso_rec_len(size_t idl)
{
	return (uint32_t)(33 + idl + (idl % 2 == 0 ? 1 : 0));
}

/*
 * Directory record (ECMA-119 9.1).  @id/@idlen is the file identifier.
 * Return: the record's length.
 */
static uint32_t iso_dirrec(uint8_t *p, uint32_t lba, uint32_t size, bool dir, const uint8_t *id,
			   size_t idlen, const uint8_t date[7])
{
	uint32_t len = iso_rec_len(idlen);

	memset(p, 0, len);
	p[0] = (uint8_t)len;
	put_both32(p + 2, lba);
	put_both32(p + 10, size);
	memcpy(p + 18, date, 7);
	p[25] = dir ? 2 : 0;
	put_both16(p + 28, 1);
	p[32] = (uint8_t)idlen;
	memcpy(p + 33, id, idlen);
	return len;
}

static void iso_ent_id(const struct iso_ent *e, bool joliet, const uint8_t **id, size_t *idl)
{
	if (joliet) {
		*id = e->jname;
		*idl = e->jlen;
	} else {
		*id = (const uint8_t *)e->pname;
		*idl = strlen(e->pname);
	}
}

/*
 * Lay out (when @buf is NULL: only count) one directory; a record never
 * crosses a sector boundary (6.8.1.1).
 * Return: the number of sectors the directory takes.
 */
static uint32_t iso_dir(uint8_t *buf, uint32_t self_lba, uint32_t sectors, struct iso_ent **order,
			size_t n, bool joliet, const uint8_t date[7])
{
	static const uint8_t dot = 0, dotdot = 1;
	uint32_t used = 2 * iso_rec_len(1), sec = 0;
	size_t i;

	if (buf) {
		iso_dirrec(buf, self_lba, sectors * ISO_SECTOR, true, &dot, 1, date);
		iso_dirrec(buf + iso_rec_len(1), self_lba, sectors * ISO_SECTOR, true, &dotdot, 1,
			   date);
	}
	for (i = 0; i < n; i++) {
		const uint8_t *id;
		size_t idl;
		uint32_t len;

		iso_ent_id(order[i], joliet, &id, &idl);
		len = iso_rec_len(idl);
		if (used + len > ISO_SECTOR) {
			sec++;
			used = 0;
		}
		if (buf)
			iso_dirrec(buf + (size_t)sec * ISO_SECTOR + used, order[i]->lba,
				   (uint32_t)order[i]->f->len, false, id, idl, date);
		used += len;
	}
	return sec + 1;
}

/* path table with the root only (9.4); @be selects the M (big-endian) table */
static void iso_path_table(uint8_t *p, uint32_t root_lba, bool be)
{
	p[0] = 1; /* identifier length */
	p[1] = 0;
	if (be) {
		put_be32(p + 2, root_lba);
		put_be16(p + 6, 1);
	} else {
		put_le32(p + 2, root_lba);
		put_le16(p + 6, 1);
	}
	p[8] = 0; /* root's identifier */
	p[9] = 0; /* pad to even length */
}

/* volume descriptor: primary (@joliet false) or Joliet supplementary (8.4, 8.5) */
static void iso_vd(uint8_t *p, bool joliet, const char *volid, uint32_t total, uint32_t root_lba,
		   uint32_t root_sectors, uint32_t pt_lba, const uint8_t date7[7], const char *date17)
{
	static const uint8_t root_id = 0;
	void (*put)(uint8_t *, size_t, const char *) = joliet ? put_ucs2 : put_str;

	p[0] = joliet ? 2 : 1;
	memcpy(p + 1, "CD001", 5);
	p[6] = 1;
	put(p + 8, 32, "LINUX");
	put(p + 40, 32, volid);
	put_both32(p + 80, total);
	if (joliet)
		memcpy(p + 88, "%/E", 3); /* UCS-2 level 3 */
	put_both16(p + 120, 1);
	put_both16(p + 124, 1);
	put_both16(p + 128, ISO_SECTOR);
	put_both32(p + 132, 10);
	put_le32(p + 140, pt_lba);
	put_be32(p + 148, pt_lba + 1);
	iso_dirrec(p + 156, root_lba, root_sectors * ISO_SECTOR, true, &root_id, 1, date7);
	put(p + 190, 128, "");
	put(p + 318, 128, "");
	put(p + 446, 128, "");
	put(p + 574, 128, "HUTCH");
	put(p + 702, 37, "");
	put(p + 739, 37, "");
	put(p + 776, 37, "");
	memcpy(p + 813, date17, 17);
	memcpy(p + 830, date17, 17);
	memset(p + 847, '0', 16); /* expiration: not specified (8.4.28) */
	p[863] = 0;
	memset(p + 864, '0', 16); /* effective: not specified */
	p[880] = 0;
	p[881] = 1;
}

/* the time recorded: SOURCE_DATE_EPOCH when set (reproducible seeds), else now */
static void iso_dates(uint8_t date7[7], char date17[18])
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	unsigned long v;
	time_t t = time(NULL);
	struct tm tm;

	if (sde && util_parse_ulong_base(sde, 10, 253402300799ul, &v) == 0)
		t = (time_t)v;
	gmtime_r(&t, &tm);
	date7[0] = (uint8_t)tm.tm_year;
	date7[1] = (uint8_t)(tm.tm_mon + 1);
	date7[2] = (uint8_t)tm.tm_mday;
	date7[3] = (uint8_t)tm.tm_hour;
	date7[4] = (uint8_t)tm.tm_min;
	date7[5] = (uint8_t)tm.tm_sec;
	date7[6] = 0;
	{
		unsigned v4[6] = { (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)tm.tm_mon + 1,
				   (unsigned)tm.tm_mday, (unsigned)tm.tm_hour, (unsigned)tm.tm_min,
				   (unsigned)tm.tm_sec };
		char *q = date17;

		for (int d = 1000; d; d /= 10)
			*q++ = (char)('0' + v4[0] / (unsigned)d % 10u);
		for (int k = 1; k < 6; k++) {
			*q++ = (char)('0' + v4[k] / 10u % 10u);
			*q++ = (char)('0' + v4[k] % 10u);
		}
		*q++ = '0';
		*q++ = '0';
	}
	date17[16] = 0; /* GMT offset */
}

/* give every file a unique primary name (mangling can collide: a-b, a_b) */
static void iso_unique_names(struct iso_ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned k = 0;
		bool dup;

		do {
			dup = false;
			for (size_t j = 0; j < i; j++)
				if (!strcmp(e[i].pname, e[j].pname))
					dup = true;
			if (dup)
				(void)util_snprintf(e[i].pname, sizeof(e[i].pname), "F%05u.;1", k++);
		} while (dup);
	}
}

/**
 * iso_write() - write a flat ISO 9660 + Joliet image
 * @path:  destination; written as @path.tmp.<pid>, fsync'd, renamed
 * @volid: volume identifier (at most 16 characters: the Joliet field's size)
 * @files: the root directory's files; names [a-z0-9._-]{1,64}, unique
 * @n:     how many (at most 1024)
 *
 * Return: 0, -EINVAL (bad name, duplicate, volid), -EFBIG (a file of 4 GiB
 * or more: ISO 9660 sizes are 32 bits), or the errno of the write.
 */
/* the volume id and the files: printable, bounded, unique names */
static int iso_check_args(const char *volid, const struct iso_file *files, size_t n)
{
	size_t i, j, vl;

	if (!volid || (vl = strlen(volid)) == 0 || vl > 16 || n > ISO_FILES_MAX)
		return -EINVAL;
	for (i = 0; i < vl; i++)
		if ((unsigned char)volid[i] < 0x20 || (unsigned char)volid[i] > 0x7e)
			return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!files[i].name || !iso_name_valid(files[i].name) || (files[i].len && !files[i].data))
			return -EINVAL;
		if (files[i].len > UINT32_MAX)
			return -EFBIG;
		for (j = 0; j < i; j++)
			if (!strcmp(files[i].name, files[j].name))
				return -EINVAL;
	}
	return 0;
}

/*
 * The metadata, then each file padded to a sector, into a temporary file
 * renamed over @path once synced: a reader never sees half an image.
 */
static int iso_write_file(const char *path, const uint8_t *meta, size_t meta_len,
			  const struct iso_file *files, size_t n)
{
	static const uint8_t zeros[ISO_SECTOR];
	char tmp[PATH_MAX];
	int fd, rc;

	rc = util_snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (rc)
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	rc = util_write_all(fd, meta, meta_len);
	for (size_t i = 0; !rc && i < n; i++) {
		size_t pad = (ISO_SECTOR - files[i].len % ISO_SECTOR) % ISO_SECTOR;

		if (!files[i].len)
			continue;
		rc = util_write_all(fd, files[i].data, files[i].len);
		if (!rc)
			rc = util_write_all(fd, zeros, pad);
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

int iso_write(const char *path, const char *volid, const struct iso_file *files, size_t n)
{
	uint32_t proot_sec, jroot_sec, proot_lba, jroot_lba, next, total, meta_sec;
	struct iso_ent *ents = NULL, **pord = NULL, **jord = NULL;
	uint8_t *meta = NULL, date7[7];
	char date17[18];
	uint64_t lba64;
	size_t i, j;
	int rc;

	rc = iso_check_args(volid, files, n);
	if (rc)
		return rc;

	ents = calloc(n ? n : 1, sizeof(*ents));
	pord = calloc(n ? n : 1, sizeof(*pord));
	jord = calloc(n ? n : 1, sizeof(*jord));
	if (!ents || !pord || !jord) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *s = files[i].name;

		ents[i].f = &files[i];
		iso_primary_name(s, ents[i].pname, sizeof(ents[i].pname));
		for (j = 0; s[j]; j++) {
			ents[i].jname[2 * j] = 0;
			ents[i].jname[2 * j + 1] = (uint8_t)s[j];
		}
		ents[i].jlen = 2 * j;
		pord[i] = jord[i] = &ents[i];
	}
	iso_unique_names(ents, n);
	qsort(pord, n, sizeof(*pord), iso_cmp_primary);
	qsort(jord, n, sizeof(*jord), iso_cmp_joliet);

	proot_sec = iso_dir(NULL, 0, 0, pord, n, false, NULL);
	jroot_sec = iso_dir(NULL, 0, 0, jord, n, true, NULL);
	proot_lba = ISO_ROOT_LBA;
	jroot_lba = proot_lba + proot_sec;
	meta_sec = jroot_lba + jroot_sec;
	lba64 = meta_sec;
	for (i = 0; i < n; i++) {
		/* an empty file points at the end of the image: no extent (9.1.4) */
		ents[i].lba = (uint32_t)lba64;
		lba64 += (files[i].len + ISO_SECTOR - 1) / ISO_SECTOR;
		if (lba64 > UINT32_MAX) {
			rc = -EFBIG;
			goto out;
		}
	}
	total = (uint32_t)lba64;
	next = total;
	for (i = 0; i < n; i++)
		if (!files[i].len)
			ents[i].lba = next;
	iso_dates(date7, date17);

	meta = calloc(meta_sec, ISO_SECTOR);
	if (!meta) {
		rc = -ENOMEM;
		goto out;
	}
	iso_vd(meta + ISO_PVD_LBA * ISO_SECTOR, false, volid, total, proot_lba, proot_sec, ISO_PT_LBA,
	       date7, date17);
	iso_vd(meta + (ISO_PVD_LBA + 1) * ISO_SECTOR, true, volid, total, jroot_lba, jroot_sec,
	       ISO_PT_LBA + 2, date7, date17);
	meta[(ISO_PVD_LBA + 2) * ISO_SECTOR] = 255;
	memcpy(meta + (ISO_PVD_LBA + 2) * ISO_SECTOR + 1, "CD001", 5);
	meta[(ISO_PVD_LBA + 2) * ISO_SECTOR + 6] = 1;
	iso_path_table(meta + ISO_PT_LBA * ISO_SECTOR, proot_lba, false);
	iso_path_table(meta + (ISO_PT_LBA + 1) * ISO_SECTOR, proot_lba, true);
	iso_path_table(meta + (ISO_PT_LBA + 2) * ISO_SECTOR, jroot_lba, false);
	iso_path_table(meta + (ISO_PT_LBA + 3) * ISO_SECTOR, jroot_lba, true);
	iso_dir(meta + (size_t)proot_lba * ISO_SECTOR, proot_lba, proot_sec, pord, n, false, date7);
	iso_dir(meta + (size_t)jroot_lba * ISO_SECTOR, jroot_lba, jroot_sec, jord, n, true, date7);

	rc = iso_write_file(path, meta, (size_t)meta_sec * ISO_SECTOR, files, n);
out:
	free(meta);
	free(jord);
	free(pord);
	free(ents);
	return rc;
}
