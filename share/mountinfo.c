// SPDX-License-Identifier: MIT
/*
 * A bounded parser for /proc/<pid>/mountinfo (proc(5), "mountinfo"):
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
 *
 * (7) is zero or more optional fields ended by the single "-" (8).  Paths
 * are escaped by the kernel's seq_escape (space, tab, newline and backslash
 * as \ooo octal), so a folder name chosen by a guest or user cannot shift
 * the fields.  The file is trusted more than guest bytes, but mount point
 * names are user-chosen and the parser is fuzzed all the same.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "share/share.h"

struct mi_cur {
	const char *p;
	size_t n;
	size_t off;
};

/*
 * Next space-separated field, unescaped into @dst (NUL-terminated).
 * Return: 0, -EINVAL at the end of the line, on an empty field, on an
 * escaped NUL, or when it does not fit.
 */
static int mi_field(struct mi_cur *c, char *dst, size_t dstsz)
{
	size_t o = 0;

	if (c->off >= c->n || c->p[c->off] == ' ')
		return -EINVAL;
	while (c->off < c->n && c->p[c->off] != ' ') {
		unsigned char ch = (unsigned char)c->p[c->off];

		if (ch == '\0' || ch == '\n')
			return -EINVAL;
		if (ch == '\\' && c->n - c->off >= 4 && c->p[c->off + 1] >= '0' &&
		    c->p[c->off + 1] <= '3' && c->p[c->off + 2] >= '0' && c->p[c->off + 2] <= '7' &&
		    c->p[c->off + 3] >= '0' && c->p[c->off + 3] <= '7') {
			ch = (unsigned char)(((c->p[c->off + 1] - '0') << 6) |
					     ((c->p[c->off + 2] - '0') << 3) | (c->p[c->off + 3] - '0'));
			if (ch == '\0')
				return -EINVAL;
			c->off += 4;
		} else {
			c->off++;
		}
		if (o + 1 >= dstsz)
			return -EINVAL;
		dst[o++] = (char)ch;
	}
	dst[o] = '\0';
	if (c->off < c->n)	/* the separating space */
		c->off++;
	return 0;
}

/* a decimal number ending at @stop (a byte of @stop or the end), no overflow */
static int mi_num(struct mi_cur *c, char stop, unsigned *out)
{
	unsigned long v = 0;
	size_t start = c->off;

	while (c->off < c->n && c->p[c->off] >= '0' && c->p[c->off] <= '9') {
		v = v * 10 + (unsigned long)(c->p[c->off] - '0');
		if (v > 0xffffffffUL)
			return -EINVAL;
		c->off++;
	}
	if (c->off == start || c->off >= c->n || c->p[c->off] != stop)
		return -EINVAL;
	c->off++;
	*out = (unsigned)v;
	return 0;
}

int share_mountinfo_parse_line(const char *line, size_t n, struct share_mntent *e)
{
	struct mi_cur c = { .p = line, .n = n, .off = 0 };
	char opt[256];
	int rc;

	if (n && line[n - 1] == '\n')
		c.n--;
	if ((rc = mi_num(&c, ' ', &e->mnt_id)) || (rc = mi_num(&c, ' ', &e->parent_id)) ||
	    (rc = mi_num(&c, ':', &e->dev_major)) || (rc = mi_num(&c, ' ', &e->dev_minor)))
		return rc;
	if ((rc = mi_field(&c, e->root, sizeof(e->root))) ||
	    (rc = mi_field(&c, e->mountpoint, sizeof(e->mountpoint))) ||
	    (rc = mi_field(&c, e->mnt_opts, sizeof(e->mnt_opts))))
		return rc;
	/* optional fields up to the "-" separator; bounded by the line itself */
	for (;;) {
		if ((rc = mi_field(&c, opt, sizeof(opt))))
			return rc;
		if (strcmp(opt, "-") == 0)
			break;
	}
	if ((rc = mi_field(&c, e->fstype, sizeof(e->fstype))) ||
	    (rc = mi_field(&c, e->source, sizeof(e->source))) ||
	    (rc = mi_field(&c, e->super_opts, sizeof(e->super_opts))))
		return rc;
	if (c.off != c.n)	/* trailing fields: not a format we know */
		return -EINVAL;
	return 0;
}

int share_mountinfo_find(const char *buf, size_t n, const char *mountpoint,
			 struct share_mntent *e)
{
	struct share_mntent *tmp = malloc(sizeof(*tmp));	/* ~13 KiB: off the stack */
	bool found = false;
	size_t off = 0;

	if (!tmp)
		return -ENOMEM;

	while (off < n) {
		const char *nl = memchr(buf + off, '\n', n - off);
		size_t len = nl ? (size_t)(nl - (buf + off)) : n - off;

		if (share_mountinfo_parse_line(buf + off, len, tmp) == 0 &&
		    strcmp(tmp->mountpoint, mountpoint) == 0) {
			*e = *tmp;	/* later lines are mounted on top */
			found = true;
		}
		off += len + 1;
	}
	free(tmp);
	return found ? 0 : -ENOENT;
}

bool share_mnt_has_opt(const char *opts, const char *opt)
{
	size_t l = strlen(opt);
	const char *p = opts;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t fl = comma ? (size_t)(comma - p) : strlen(p);

		if (fl == l && memcmp(p, opt, l) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}
