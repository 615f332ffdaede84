// SPDX-License-Identifier: MIT
/*
 * cfg: hutch.yaml -> struct cfg.
 *
 * Two passes.  First libyaml's event parser builds a small tree of our own
 * (scalars, mappings, lists, each with its 1-based line and column), which
 * is where the untrusted-input rules live: a size cap on the file, a depth
 * cap, a node cap, anchors/aliases/tags refused (an alias bomb expands
 * exponentially in whoever walks the tree), duplicate keys refused, one
 * document only.  Then the tree is walked against the schema of SPEC.md:
 * every key is known, typed and range-checked here, so a typo is an error
 * that names file:line:col instead of a setting silently ignored.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "src/cfg.h"
#include "src/log.h"
#include "src/util.h"

#define CFG_MAX_BYTES	(1024 * 1024)	/* a real hutch.yaml is a few hundred bytes */
#define CFG_MAX_DEPTH	16		/* the schema nests 4 deep; headroom for errors */
#define CFG_MAX_NODES	10000
#define CFG_MAX_ITEMS	256		/* entries in one mapping or list */
#define CFG_MAX_VMS	64
#define CFG_MAX_STR	4096		/* paths, cmdline */

enum ynode_type { YN_SCALAR, YN_MAP, YN_SEQ };

/*
 * struct ynode - one node of the parsed document.  A mapping keeps its
 * keys and values interleaved in @kids (key, value, key, value...).
 */
struct ynode {
	enum ynode_type type;
	unsigned line, col;	/* 1-based */
	char *str;		/* YN_SCALAR: NUL-free, NUL-terminated */
	bool plain;		/* YN_SCALAR: unquoted, so it may be a number/bool */
	struct ynode **kids;
	size_t n;
};

/* struct ld - one load: where messages point, and what they fill */
struct ld {
	const char *mpath;	/* the file as the user named it, for messages */
	const char *dir;	/* absolute project directory */
	const char *buf;	/* the bytes, for positions of reader errors */
	size_t len;
	struct cfg_error *e;
	unsigned nodes;
};

/* The keys valid at each level; also the candidates for "did you mean". */
static const char *const vm_keys[] = {
	"name", "image", "image_sha256", "cpus", "memory", "disk", "accel", "firmware",
	"kernel", "network", "shared_folders", "ssh", "autoconnect", "cloud_init_wait",
	"timeouts", "warm", "vms",
};
#define VM_KEYS_N (UTIL_ARRAY_SIZE(vm_keys) - 1)	/* "vms" only at the top */
static const char *const kernel_keys[] = { "path", "initrd", "cmdline" };
static const char *const net_keys[] = { "mode", "isolation", "ipv6", "host_access", "forward" };
static const char *const share_keys[] = { "host", "guest", "tag", "size", "isolation" };
static const char *const ssh_keys[] = { "user", "key" };
static const char *const timeout_keys[] = { "boot", "ssh", "cloud_init", "shutdown" };

static const char *const accel_names[] = { "auto", "kvm", "tcg" };
static const char *const fw_names[] = { "bios", "uefi" };
static const char *const mode_names[] = { "nat", "user", "none" };
static const char *const auto_names[] = { "none", "ssh", "console" };
static const char *const proto_names[] = { "tcp", "udp" };

/* ---- messages ---------------------------------------------------------- */

/* Bounded, escaped copy of a user-supplied value for a message. */
static const char *esc(char *buf, size_t n, const char *s)
{
	return log_escape(buf, n, s, strlen(s));
}

static void __attribute__((format(printf, 3, 4)))
file_err(struct cfg_error *e, const char *mpath, const char *fmt, ...)
{
	char m[900], p[256];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(m, sizeof(m), fmt, ap) >= (int)sizeof(m))
		memcpy(m + sizeof(m) - 4, "...", 4);
	va_end(ap);
	/* @e is only written here; callers need not initialise it */
	// cppcheck-suppress ctuuninitvar
	snprintf(e->msg, sizeof(e->msg), "%s: %s", esc(p, sizeof(p), mpath), m);
}

/* Format "FILE:LINE:COL: message" for @n; returns -EINVAL for the caller. */
static int __attribute__((format(printf, 3, 4)))
ld_err(struct ld *ld, const struct ynode *n, const char *fmt, ...)
{
	char m[900], p[256];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(m, sizeof(m), fmt, ap) >= (int)sizeof(m))
		memcpy(m + sizeof(m) - 4, "...", 4);
	va_end(ap);
	snprintf(ld->e->msg, sizeof(ld->e->msg), "%s:%u:%u: %s", esc(p, sizeof(p), ld->mpath),
		 n ? n->line : 1, n ? n->col : 1, m);
	return -EINVAL;
}

static const char *node_kind(const struct ynode *n)
{
	switch (n->type) {
	case YN_MAP:
		return "a mapping";
	case YN_SEQ:
		return "a list";
	case YN_SCALAR:
		break;
	}
	if (n->plain && (!n->str[0] || !strcmp(n->str, "~") || !strcmp(n->str, "null")))
		return "nothing (null)";
	return "a string";
}

/*
 * Optimal string alignment distance (Levenshtein + adjacent swaps), for
 * "did you mean": "cpu" -> "cpus", "memroy" -> "memory".  Only short
 * strings are compared; a key longer than 40 bytes is not a typo of ours.
 */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned d[41][41];
	size_t la = strlen(a), lb = strlen(b), i, j;

	if (la > 40 || lb > 40)
		return 99;
	for (i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1], v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

static const char *did_you_mean(const char *s, const char *const *cands, size_t n)
{
	const char *best = NULL;
	unsigned bd = 3, d;
	size_t i;

	for (i = 0; i < n; i++) {
		d = edit_distance(s, cands[i]);
		if (d < bd) {
			bd = d;
			best = cands[i];
		}
	}
	return best;
}

static int unknown_key(struct ld *ld, const struct ynode *k, const char *where,
		       const char *const *cands, size_t n)
{
	const char *m = did_you_mean(k->str, cands, n);
	char b[80];

	if (m)
		return ld_err(ld, k, "unknown key '%s'%s%s (did you mean '%s'?)",
			      esc(b, sizeof(b), k->str), where ? " in " : "", where ? where : "", m);
	return ld_err(ld, k, "unknown key '%s'%s%s", esc(b, sizeof(b), k->str),
		      where ? " in " : "", where ? where : "");
}

/* ---- the tree ------------------------------------------------------------ */

static void ynode_free(struct ynode *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->n; i++)
		ynode_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

static struct ynode *ynode_new(struct ld *ld, enum ynode_type t, const yaml_mark_t *m)
{
	struct ynode *n;

	if (++ld->nodes > CFG_MAX_NODES)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->type = t;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	return n;
}

static int ynode_add(struct ynode *p, struct ynode *k)
{
	struct ynode **kids;

	kids = realloc(p->kids, (p->n + 1) * sizeof(*kids));
	if (!kids)
		return -ENOMEM;
	p->kids = kids;
	p->kids[p->n++] = k;
	return 0;
}

/* Line/column of a byte offset, for reader errors that carry only an offset. */
static void offset_pos(const struct ld *ld, size_t off, unsigned *line, unsigned *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && i < ld->len; i++) {
		if (ld->buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int parser_err(struct ld *ld, const yaml_parser_t *p)
{
	struct ynode at = { .line = (unsigned)p->problem_mark.line + 1,
			    .col = (unsigned)p->problem_mark.column + 1 };
	const char *prob = p->problem ? p->problem : "unknown problem", *hint = "";

	if (p->error == YAML_MEMORY_ERROR) {
		file_err(ld->e, ld->mpath, "out of memory while parsing");
		return -ENOMEM;
	}
	if (p->error == YAML_READER_ERROR) {
		offset_pos(ld, p->problem_offset, &at.line, &at.col);
		return ld_err(ld, &at, "YAML syntax error: %s (the file must be UTF-8 text)", prob);
	}
	/* the two mistakes people make: a tab, or a key indented off its siblings */
	if (p->problem_mark.index < ld->len && ld->buf[p->problem_mark.index] == '\t')
		hint = "; YAML indents with spaces, not tabs";
	else if (strstr(prob, "expected key"))
		hint = "; check the indentation";
	else if (strstr(prob, "mapping values are not allowed"))
		hint = "; quote a value that contains ': ', or check the indentation";
	if (p->context)
		return ld_err(ld, &at, "YAML syntax error: %s (%s at line %u)%s", prob, p->context,
			      (unsigned)p->context_mark.line + 1, hint);
	return ld_err(ld, &at, "YAML syntax error: %s%s", prob, hint);
}

static int next_event(struct ld *ld, yaml_parser_t *p, yaml_event_t *ev)
{
	if (!yaml_parser_parse(p, ev))
		return parser_err(ld, p);
	return 0;
}

static int parse_node(struct ld *ld, yaml_parser_t *p, yaml_event_t *ev, unsigned depth,
		      struct ynode **out);

/* Why: anchors and aliases are how a 1 KiB file becomes gigabytes (billion laughs). */
static int refuse_anchor(struct ld *ld, const yaml_event_t *ev, const yaml_char_t *anchor,
			 const yaml_char_t *tag)
{
	struct ynode at = { .line = (unsigned)ev->start_mark.line + 1,
			    .col = (unsigned)ev->start_mark.column + 1 };

	if (anchor)
		return ld_err(ld, &at, "YAML anchors (&name) are not allowed in hutch.yaml");
	if (tag)
		return ld_err(ld, &at, "YAML tags (!tag) are not allowed in hutch.yaml");
	return 0;
}

static int parse_collection(struct ld *ld, yaml_parser_t *p, struct ynode *n, unsigned depth,
			    yaml_event_type_t end)
{
	yaml_event_t ev;
	struct ynode *k;
	size_t i;
	int rc;

	for (;;) {
		rc = next_event(ld, p, &ev);
		if (rc)
			return rc;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return 0;
		}
		rc = parse_node(ld, p, &ev, depth + 1, &k);
		if (rc)
			return rc;
		if (n->type == YN_MAP && !(n->n & 1)) {
			/* a key: must be a plain string, and not seen before */
			if (k->type != YN_SCALAR) {
				rc = ld_err(ld, k, "a key must be a plain string, not %s", node_kind(k));
				ynode_free(k);
				return rc;
			}
			for (i = 0; i < n->n; i += 2) {
				if (!strcmp(n->kids[i]->str, k->str)) {
					char b[80];

					rc = ld_err(ld, k, "duplicate key '%s' (first at line %u)",
						    esc(b, sizeof(b), k->str), n->kids[i]->line);
					ynode_free(k);
					return rc;
				}
			}
		}
		if (n->n >= 2 * CFG_MAX_ITEMS) {
			rc = ld_err(ld, k, "too many entries (at most %d)", CFG_MAX_ITEMS);
			ynode_free(k);
			return rc;
		}
		rc = ynode_add(n, k);
		if (rc) {
			ynode_free(k);
			file_err(ld->e, ld->mpath, "out of memory");
			return rc;
		}
	}
}

/*
 * parse_node() - build the node that starts with @ev (consumed here) and
 * everything below it.  On success *@out is owned by the caller.
 */
static int parse_node(struct ld *ld, yaml_parser_t *p, yaml_event_t *ev, unsigned depth,
		      struct ynode **out)
{
	struct ynode *n = NULL;
	struct ynode at = { .line = (unsigned)ev->start_mark.line + 1,
			    .col = (unsigned)ev->start_mark.column + 1 };
	int rc;

	if (depth > CFG_MAX_DEPTH) {
		rc = ld_err(ld, &at, "nested too deeply (at most %d levels)", CFG_MAX_DEPTH);
		goto err_ev;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		rc = ld_err(ld, &at, "YAML aliases (*name) are not allowed in hutch.yaml");
		goto err_ev;
	case YAML_SCALAR_EVENT:
		rc = refuse_anchor(ld, ev, ev->data.scalar.anchor, ev->data.scalar.tag);
		if (rc)
			goto err_ev;
		if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
			rc = ld_err(ld, &at, "NUL bytes are not allowed in a value");
			goto err_ev;
		}
		n = ynode_new(ld, YN_SCALAR, &ev->start_mark);
		if (!n)
			goto err_nodes;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		n->str = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		if (!n->str) {
			ynode_free(n);
			rc = -ENOMEM;
			file_err(ld->e, ld->mpath, "out of memory");
			goto err_ev;
		}
		yaml_event_delete(ev);
		*out = n;
		return 0;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (ev->type == YAML_SEQUENCE_START_EVENT)
			rc = refuse_anchor(ld, ev, ev->data.sequence_start.anchor,
					   ev->data.sequence_start.tag);
		else
			rc = refuse_anchor(ld, ev, ev->data.mapping_start.anchor,
					   ev->data.mapping_start.tag);
		if (rc)
			goto err_ev;
		n = ynode_new(ld, ev->type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP,
			      &ev->start_mark);
		if (!n)
			goto err_nodes;
		rc = parse_collection(ld, p, n, depth,
				      ev->type == YAML_SEQUENCE_START_EVENT ? YAML_SEQUENCE_END_EVENT
									    : YAML_MAPPING_END_EVENT);
		yaml_event_delete(ev);
		if (rc) {
			ynode_free(n);
			return rc;
		}
		*out = n;
		return 0;
	case YAML_NO_EVENT:
	case YAML_STREAM_START_EVENT:
	case YAML_STREAM_END_EVENT:
	case YAML_DOCUMENT_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		break;
	}
	rc = ld_err(ld, &at, "unexpected YAML event");
	goto err_ev;

err_nodes:
	rc = ld_err(ld, &at, "too many YAML nodes (at most %d)", CFG_MAX_NODES);
err_ev:
	yaml_event_delete(ev);
	return rc;
}

/* tree_parse() - the single document of @ld->buf as a tree; *@out owned by the caller */
static int tree_parse(struct ld *ld, struct ynode **out)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct ynode *root = NULL;
	int rc;

	if (!yaml_parser_initialize(&p)) {
		file_err(ld->e, ld->mpath, "out of memory");
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)ld->buf, ld->len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);

	rc = next_event(ld, &p, &ev);		/* stream start */
	if (rc)
		goto out;
	yaml_event_delete(&ev);
	rc = next_event(ld, &p, &ev);
	if (rc)
		goto out;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		rc = ld_err(ld, NULL, "the file is empty; it needs at least 'name:'");
		goto out;
	}
	yaml_event_delete(&ev);			/* document start */
	rc = next_event(ld, &p, &ev);
	if (rc)
		goto out;
	rc = parse_node(ld, &p, &ev, 0, &root);
	if (rc)
		goto out;
	rc = next_event(ld, &p, &ev);		/* document end */
	if (rc)
		goto out;
	yaml_event_delete(&ev);
	rc = next_event(ld, &p, &ev);
	if (rc)
		goto out;
	if (ev.type != YAML_STREAM_END_EVENT) {
		struct ynode at = { .line = (unsigned)ev.start_mark.line + 1,
				    .col = (unsigned)ev.start_mark.column + 1 };

		yaml_event_delete(&ev);
		rc = ld_err(ld, &at, "only one YAML document is allowed (remove this '---')");
		goto out;
	}
	yaml_event_delete(&ev);
	*out = root;
	root = NULL;
out:
	ynode_free(root);
	yaml_parser_delete(&p);
	return rc;
}

/* ---- typed getters ------------------------------------------------------- */

static bool is_null(const struct ynode *n)
{
	return n->type == YN_SCALAR && n->plain &&
	       (!n->str[0] || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
		!strcmp(n->str, "Null") || !strcmp(n->str, "NULL"));
}

static int get_uint(struct ld *ld, const struct ynode *n, const char *key, long min, long max,
		    const char *unit, unsigned *out)
{
	char b[80];
	long v;
	int rc;

	if (n->type != YN_SCALAR || !n->plain || is_null(n))
		return ld_err(ld, n, "%s: expected an integer, got %s", key, node_kind(n));
	rc = util_parse_long(n->str, min, max, &v);
	if (rc == -ERANGE || (rc == -EINVAL && n->str[0] == '-' && strspn(n->str + 1, "0123456789") ==
				 strlen(n->str + 1) && n->str[1]))
		return ld_err(ld, n, "%s: %s is out of range %ld..%ld%s%s", key,
			      esc(b, sizeof(b), n->str), min, max, unit ? " " : "", unit ? unit : "");
	if (rc)
		return ld_err(ld, n, "%s: expected an integer, got '%s'", key, esc(b, sizeof(b), n->str));
	*out = (unsigned)v;
	return 0;
}

/* YAML 1.2 booleans only: "yes"/"no"/"on" mean different things to different parsers. */
static int get_bool(struct ld *ld, const struct ynode *n, const char *key, bool *out)
{
	char b[80];

	if (n->type == YN_SCALAR && n->plain) {
		if (!strcmp(n->str, "true") || !strcmp(n->str, "True") || !strcmp(n->str, "TRUE")) {
			*out = true;
			return 0;
		}
		if (!strcmp(n->str, "false") || !strcmp(n->str, "False") || !strcmp(n->str, "FALSE")) {
			*out = false;
			return 0;
		}
	}
	if (n->type != YN_SCALAR || is_null(n))
		return ld_err(ld, n, "%s: expected true or false, got %s", key, node_kind(n));
	return ld_err(ld, n, "%s: expected true or false, got '%s' (yes/no/on/off are not accepted)",
		      key, esc(b, sizeof(b), n->str));
}

/*
 * A string value: any scalar style, no control characters (they would end
 * up in argv, file names or the user's terminal), bounded length.
 */
static int get_str(struct ld *ld, const struct ynode *n, const char *key, size_t max,
		   const char **out)
{
	const unsigned char *s;

	if (n->type != YN_SCALAR || is_null(n))
		return ld_err(ld, n, "%s: expected a string, got %s", key, node_kind(n));
	if (!n->str[0])
		return ld_err(ld, n, "%s: must not be empty", key);
	if (strlen(n->str) > max)
		return ld_err(ld, n, "%s: too long (at most %zu bytes)", key, max);
	for (s = (const unsigned char *)n->str; *s; s++) {
		/* C0, DEL, and the C1 controls U+0080..U+009F (0xc2 0x80..0x9f) */
		if (*s < 0x20 || *s == 0x7f || (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f))
			return ld_err(ld, n, "%s: control characters are not allowed", key);
	}
	*out = n->str;
	return 0;
}

static int get_enum(struct ld *ld, const struct ynode *n, const char *key,
		    const char *const *names, size_t nn, int *out)
{
	char list[128] = "", b[80];
	const char *m;
	size_t i;

	if (n->type == YN_SCALAR) {
		for (i = 0; i < nn; i++) {
			if (!strcmp(n->str, names[i])) {
				*out = (int)i;
				return 0;
			}
		}
	}
	for (i = 0; i < nn; i++) {
		strcat(list, i ? (i + 1 == nn ? " or " : ", ") : "");
		strcat(list, names[i]);
	}
	if (n->type != YN_SCALAR || is_null(n))
		return ld_err(ld, n, "%s: expected %s, got %s", key, list, node_kind(n));
	m = did_you_mean(n->str, names, nn);
	if (m)
		return ld_err(ld, n, "%s: expected %s, got '%s' (did you mean '%s'?)", key, list,
			      esc(b, sizeof(b), n->str), m);
	return ld_err(ld, n, "%s: expected %s, got '%s'", key, list, esc(b, sizeof(b), n->str));
}

static int want_map(struct ld *ld, const struct ynode *n, const char *key)
{
	if (n->type != YN_MAP)
		return ld_err(ld, n, "%s: expected a mapping, got %s", key, node_kind(n));
	return 0;
}

static int want_seq(struct ld *ld, const struct ynode *n, const char *key)
{
	if (n->type != YN_SEQ)
		return ld_err(ld, n, "%s: expected a list, got %s", key, node_kind(n));
	return 0;
}

static int key_index(const char *k, const char *const *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(k, keys[i]))
			return (int)i;
	return -1;
}

/* ---- paths ----------------------------------------------------------------- */

/*
 * path_abs() - @p made absolute against @dir and normalised lexically
 * ("." and ".." and repeated slashes removed; nothing is looked up, so the
 * file need not exist yet).  *@out is malloc'd.
 */
static int path_abs(const char *dir, const char *p, char **out)
{
	size_t cap = strlen(dir) + strlen(p) + 3, o = 0;
	const char *s, *seg;
	char *r, *joined;
	size_t sl;

	if (cap > PATH_MAX + 2)
		return -ENAMETOOLONG;
	joined = malloc(cap);
	r = malloc(cap);
	if (!joined || !r) {
		free(joined);
		free(r);
		return -ENOMEM;
	}
	/* cap covers dir + '/' + p + NUL */
	if (p[0] == '/') {
		memcpy(joined, p, strlen(p) + 1);
	} else {
		sl = strlen(dir);
		memcpy(joined, dir, sl);
		joined[sl] = '/';
		memcpy(joined + sl + 1, p, strlen(p) + 1);
	}
	for (s = joined; *s;) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		seg = s;
		while (*s && *s != '/')
			s++;
		sl = (size_t)(s - seg);
		if (sl == 1 && seg[0] == '.')
			continue;
		if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
			while (o > 0 && r[o - 1] != '/')
				o--;
			if (o > 0)
				o--;	/* drop the slash too */
			continue;
		}
		r[o++] = '/';
		memcpy(r + o, seg, sl);
		o += sl;
	}
	if (!o)
		r[o++] = '/';
	r[o] = '\0';
	free(joined);
	if (o > PATH_MAX - 1) {
		free(r);
		return -ENAMETOOLONG;
	}
	*out = r;
	return 0;
}

static int get_path(struct ld *ld, const struct ynode *n, const char *key, char **out)
{
	const char *s;
	char *p;
	int rc;

	rc = get_str(ld, n, key, PATH_MAX - 1, &s);
	if (rc)
		return rc;
	if (s[0] == '~' && s[1] && s[1] != '/')
		return ld_err(ld, n, "%s: '~user/' paths are not supported; use ~/ or an absolute path",
			      key);
	if (s[0] == '~') {
		/* ~/ is the invoking user's home, as a shell would have it */
		const char *home = getenv("HOME");

		if (!home || home[0] != '/')
			return ld_err(ld, n, "%s: '~' needs $HOME to be set to an absolute path", key);
		rc = path_abs(home, s[1] ? s + 2 : "", &p);
	} else {
		rc = path_abs(ld->dir, s, &p);
	}
	if (rc == -ENAMETOOLONG)
		return ld_err(ld, n, "%s: path too long", key);
	if (rc) {
		file_err(ld->e, ld->mpath, "out of memory");
		return rc;
	}
	free(*out);
	*out = p;
	return 0;
}

static int set_str(struct ld *ld, const struct ynode *n, const char *key, size_t max, char **out)
{
	const char *s;
	char *d;
	int rc;

	rc = get_str(ld, n, key, max, &s);
	if (rc)
		return rc;
	d = strdup(s);
	if (!d) {
		file_err(ld->e, ld->mpath, "out of memory");
		return -ENOMEM;
	}
	free(*out);
	*out = d;
	return 0;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

/* A local image: has a slash, or a disk image's extension (optionally compressed). */
static bool image_is_path(const char *s)
{
	static const char *const ext[] = { ".qcow2", ".img", ".raw" };
	static const char *const comp[] = { "", ".xz", ".zst", ".gz" };
	char buf[64];
	size_t i, j;

	if (strchr(s, '/'))
		return true;
	for (i = 0; i < UTIL_ARRAY_SIZE(ext); i++)
		for (j = 0; j < UTIL_ARRAY_SIZE(comp); j++)
			if (!util_snprintf(buf, sizeof(buf), "%s%s", ext[i], comp[j]) &&
			    ends_with(s, buf))
				return true;
	return false;
}

static bool alias_valid(const char *s)
{
	size_t i;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	      (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (i = 1; s[i]; i++)
		if (i >= 64 || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
				      s[i]))
			return false;
	return true;
}

static int get_image(struct ld *ld, const struct ynode *n, char **out)
{
	const char *s, *sep;
	char b[80], b2[80], *d;
	int rc;

	rc = get_str(ld, n, "image", CFG_MAX_STR, &s);
	if (rc)
		return rc;
	sep = strstr(s, "://");
	if (sep) {
		if (!strncmp(s, "http://", 7))
			return ld_err(ld, n, "image: plain http:// is not allowed; use https:// "
					     "(or download it and give a local path)");
		if (strncmp(s, "https://", 8) || !s[8] || strchr(s, ' '))
			return ld_err(ld, n, "image: '%s' is not an https:// URL, an alias or a local path",
				      esc(b, sizeof(b), s));
		d = strdup(s);
		if (!d) {
			file_err(ld->e, ld->mpath, "out of memory");
			return -ENOMEM;
		}
		free(*out);
		*out = d;
		return 0;
	}
	if (image_is_path(s))
		return get_path(ld, n, "image", out);
	if (!alias_valid(s))
		return ld_err(ld, n, "image: '%s' is not a valid alias (letters, digits, '.', '_', '-'); "
				     "a local file needs a '/' (e.g. ./%s) or a .qcow2/.img/.raw name",
			      esc(b, sizeof(b), s), esc(b2, sizeof(b2), s));
	return set_str(ld, n, "image", 64, out);
}

/* ---- the schema ---------------------------------------------------------- */

/* struct vm_seen - what a VM's mappings set, for defaults that depend on it */
struct vm_seen {
	bool image;
	const struct ynode *kernel;	/* the last kernel: mapping, for errors */
	const struct ynode *name;
	const struct ynode *forward;
};

static void vm_defaults(struct cfg_vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->cpus = 2;
	vm->memory_mib = 2048;
	vm->disk_gib = 0;
	vm->accel = CFG_ACCEL_AUTO;
	vm->firmware = CFG_FW_BIOS;
	vm->network.mode = CFG_NET_NAT;
	vm->network.isolation = true;
	vm->network.ipv6 = false;
	vm->ssh.key = CFG_KEY_MANAGED;
	vm->autoconnect = CFG_AUTO_NONE;
	vm->cloud_init_wait = true;
	vm->timeouts.boot = 300;
	vm->timeouts.ssh = 300;
	vm->timeouts.cloud_init = 1800;
	vm->timeouts.shutdown = 60;
}

static void share_free(struct cfg_share *s)
{
	free(s->host);
	free(s->guest);
	free(s->tag);
}

static void vm_free(struct cfg_vm *vm)
{
	size_t i;

	free(vm->image);
	free(vm->image_sha256);
	free(vm->kernel.path);
	free(vm->kernel.initrd);
	free(vm->kernel.cmdline);
	free(vm->network.host_access);
	free(vm->network.forward);
	for (i = 0; i < vm->n_shares; i++)
		share_free(&vm->shares[i]);
	free(vm->shares);
	free(vm->ssh.user);
	free(vm->ssh.key_path);
	memset(vm, 0, sizeof(*vm));
}

static int apply_kernel(struct ld *ld, const struct ynode *m, struct cfg_vm *vm)
{
	size_t i;
	int rc;

	if (is_null(m))	/* "kernel:" with everything commented out */
		return 0;
	rc = want_map(ld, m, "kernel");
	if (rc)
		return rc;
	for (i = 0; i < m->n; i += 2) {
		const struct ynode *k = m->kids[i], *v = m->kids[i + 1];

		switch (key_index(k->str, kernel_keys, UTIL_ARRAY_SIZE(kernel_keys))) {
		case 0:
			rc = get_path(ld, v, "kernel.path", &vm->kernel.path);
			break;
		case 1:
			rc = get_path(ld, v, "kernel.initrd", &vm->kernel.initrd);
			break;
		case 2:
			rc = set_str(ld, v, "kernel.cmdline", CFG_MAX_STR, &vm->kernel.cmdline);
			break;
		default:
			rc = unknown_key(ld, k, "kernel", kernel_keys, UTIL_ARRAY_SIZE(kernel_keys));
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int get_proto_port(struct ld *ld, const struct ynode *n, const char *key, const char *s,
			  const char *stop, enum cfg_proto *proto, uint16_t *port, const char **end)
{
	char num[8], b[80], b2[40];
	size_t l;
	long v;

	if (!strncmp(s, "tcp/", 4))
		*proto = CFG_PROTO_TCP;
	else if (!strncmp(s, "udp/", 4))
		*proto = CFG_PROTO_UDP;
	else
		return ld_err(ld, n, "%s: '%s' must start with tcp/ or udp/", key,
			      esc(b, sizeof(b), n->str));
	s += 4;
	l = strcspn(s, stop);
	if (!l || l >= sizeof(num))
		return ld_err(ld, n, "%s: '%s': expected a port number 1..65535 after %s/", key,
			      esc(b, sizeof(b), n->str), proto_names[*proto]);
	memcpy(num, s, l);
	num[l] = '\0';
	if (util_parse_long(num, 1, 65535, &v))
		return ld_err(ld, n, "%s: '%s': port '%s' is not a number in 1..65535", key,
			      esc(b, sizeof(b), n->str), esc(b2, sizeof(b2), num));
	*port = (uint16_t)v;
	*end = s + l;
	return 0;
}

/* The LAN ranges isolation blocks (DESIGN.md): only those can be let through. */
static bool addr_is_lan(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);

	return (h >> 24) == 10 || (h >> 20) == (172u << 4 | 1) || (h >> 16) == (192u << 8 | 168) ||
	       (h >> 22) == (100u << 2 | 1) || (h >> 16) == (169u << 8 | 254);
}

static int parse_host_access(struct ld *ld, const struct ynode *n, struct cfg_host_access *ha)
{
	static const char hp[] = "allow-host-port", lh[] = "allow-lan-host";
	const char *s, *rest, *end;
	char b[80];
	int rc;

	rc = get_str(ld, n, "network.host_access", 128, &s);
	if (rc)
		return rc;
	memset(ha, 0, sizeof(*ha));
	if (!strncmp(s, hp, sizeof(hp) - 1) && s[sizeof(hp) - 1] == ' ') {
		rest = s + sizeof(hp);
		rest += strspn(rest, " ");
		ha->kind = CFG_HA_HOST_PORT;
		rc = get_proto_port(ld, n, "network.host_access", rest, " ", &ha->proto, &ha->port,
				    &end);
		if (rc)
			return rc;
		if (*end)
			return ld_err(ld, n, "network.host_access: unexpected text after the port in '%s'",
				      esc(b, sizeof(b), s));
		return 0;
	}
	if (!strncmp(s, lh, sizeof(lh) - 1) && s[sizeof(lh) - 1] == ' ') {
		rest = s + sizeof(lh);
		rest += strspn(rest, " ");
		ha->kind = CFG_HA_LAN_HOST;
		if (inet_pton(AF_INET, rest, &ha->addr) != 1)
			return ld_err(ld, n, "network.host_access: '%s' is not an IPv4 address",
				      esc(b, sizeof(b), rest));
		if (!addr_is_lan(ha->addr))
			return ld_err(ld, n, "network.host_access: %s is not a LAN address (10/8, "
					     "172.16/12, 192.168/16, 100.64/10, 169.254/16); the "
					     "internet is reachable without an exception",
				      esc(b, sizeof(b), rest));
		return 0;
	}
	return ld_err(ld, n, "network.host_access: expected 'allow-host-port tcp/PORT', "
			     "'allow-host-port udp/PORT' or 'allow-lan-host IPV4', got '%s'",
		      esc(b, sizeof(b), s));
}

static int parse_forward(struct ld *ld, const struct ynode *n, struct cfg_forward *f)
{
	const char *s, *end;
	char b[80], num[8];
	long v;
	int rc;

	rc = get_str(ld, n, "network.forward", 64, &s);
	if (rc)
		return rc;
	rc = get_proto_port(ld, n, "network.forward", s, ":", &f->proto, &f->host_port, &end);
	if (rc)
		return rc;
	if (*end != ':' || !end[1] || strlen(end + 1) >= sizeof(num))
		return ld_err(ld, n, "network.forward: expected 'tcp/HOSTPORT:GUESTPORT', got '%s'",
			      esc(b, sizeof(b), s));
	if (util_parse_long(end + 1, 1, 65535, &v))
		return ld_err(ld, n, "network.forward: '%s': guest port '%s' is not a number in 1..65535",
			      esc(b, sizeof(b), s), esc(num, sizeof(num), end + 1));
	f->guest_port = (uint16_t)v;
	return 0;
}

static int apply_network(struct ld *ld, const struct ynode *m, struct cfg_vm *vm,
			 struct vm_seen *seen)
{
	size_t i, j, l;
	int rc, iv;

	if (is_null(m))	/* "network:" with everything commented out */
		return 0;
	rc = want_map(ld, m, "network");
	if (rc)
		return rc;
	for (i = 0; i < m->n; i += 2) {
		const struct ynode *k = m->kids[i], *v = m->kids[i + 1];

		switch (key_index(k->str, net_keys, UTIL_ARRAY_SIZE(net_keys))) {
		case 0:
			rc = get_enum(ld, v, "network.mode", mode_names, UTIL_ARRAY_SIZE(mode_names), &iv);
			if (!rc)
				vm->network.mode = (enum cfg_net_mode)iv;
			break;
		case 1:
			rc = get_bool(ld, v, "network.isolation", &vm->network.isolation);
			break;
		case 2:
			rc = get_bool(ld, v, "network.ipv6", &vm->network.ipv6);
			break;
		case 3: {
			struct cfg_host_access *ha = NULL;

			rc = is_null(v) ? 0 : want_seq(ld, v, "network.host_access");
			if (rc)
				return rc;
			if (v->n) {
				ha = calloc(v->n, sizeof(*ha));
				if (!ha)
					return -ENOMEM;
			}
			for (l = 0; l < v->n; l++) {
				rc = parse_host_access(ld, v->kids[l], &ha[l]);
				for (j = 0; !rc && j < l; j++)
					if (!memcmp(&ha[j], &ha[l], sizeof(ha[l])))
						rc = ld_err(ld, v->kids[l], "network.host_access: duplicate entry");
				if (rc) {
					free(ha);
					return rc;
				}
			}
			free(vm->network.host_access);
			vm->network.host_access = ha;
			vm->network.n_host_access = v->n;
			break;
		}
		case 4: {
			struct cfg_forward *fw = NULL;

			rc = is_null(v) ? 0 : want_seq(ld, v, "network.forward");
			if (rc)
				return rc;
			if (v->n) {
				fw = calloc(v->n, sizeof(*fw));
				if (!fw)
					return -ENOMEM;
			}
			for (l = 0; l < v->n; l++) {
				rc = parse_forward(ld, v->kids[l], &fw[l]);
				for (j = 0; !rc && j < l; j++)
					if (fw[j].proto == fw[l].proto && fw[j].host_port == fw[l].host_port)
						rc = ld_err(ld, v->kids[l], "network.forward: host port %s/%u "
									    "is forwarded twice",
							    proto_names[fw[l].proto], fw[l].host_port);
				if (rc) {
					free(fw);
					return rc;
				}
			}
			free(vm->network.forward);
			vm->network.forward = fw;
			vm->network.n_forward = v->n;
			seen->forward = v;
			break;
		}
		default:
			rc = unknown_key(ld, k, "network", net_keys, UTIL_ARRAY_SIZE(net_keys));
		}
		if (rc)
			return rc;
	}
	return 0;
}

static bool tag_valid(const char *s)
{
	size_t l = strlen(s);

	return l >= 1 && l <= 36 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == l;
}

/* The host folder must not expose hutch.yaml or hooks/ to the guest. */
static bool path_contains(const char *outer, const char *inner)
{
	size_t l = strlen(outer);

	if (!strcmp(outer, "/"))
		return true;
	return !strncmp(outer, inner, l) && (inner[l] == '\0' || inner[l] == '/');
}

static int parse_share(struct ld *ld, const struct ynode *m, struct cfg_share *sh)
{
	const struct ynode *host = NULL;
	const char *base;
	char b[80], b2[80];
	size_t i;
	int rc;

	rc = want_map(ld, m, "shared_folders entry");
	if (rc)
		return rc;
	sh->size_gib = 10;
	sh->isolation = true;
	for (i = 0; i < m->n; i += 2) {
		const struct ynode *k = m->kids[i], *v = m->kids[i + 1];

		switch (key_index(k->str, share_keys, UTIL_ARRAY_SIZE(share_keys))) {
		case 0:
			host = v;
			rc = get_path(ld, v, "shared_folders.host", &sh->host);
			break;
		case 1:
			rc = set_str(ld, v, "shared_folders.guest", PATH_MAX - 1, &sh->guest);
			if (!rc && sh->guest[0] != '/')
				rc = ld_err(ld, v, "shared_folders.guest: '%s' must be an absolute path "
						   "(e.g. /%s)", esc(b, sizeof(b), sh->guest),
					    esc(b2, sizeof(b2), sh->guest));
			if (!rc && (!strcmp(sh->guest, "/") || strstr(sh->guest, "/../") ||
				    ends_with(sh->guest, "/..") || strpbrk(sh->guest, " \t,\\")))
				rc = ld_err(ld, v, "shared_folders.guest: '%s' is not a usable mount "
						   "point (no '..', blanks, ',' or backslash)",
					    esc(b, sizeof(b), sh->guest));
			break;
		case 2:
			rc = set_str(ld, v, "shared_folders.tag", 36, &sh->tag);
			if (!rc && !tag_valid(sh->tag))
				rc = ld_err(ld, v, "shared_folders.tag: '%s' must be 1..36 of A-Z a-z 0-9 _ . -",
					    esc(b, sizeof(b), sh->tag));
			break;
		case 3:
			rc = get_uint(ld, v, "shared_folders.size", 1, 65536, "GiB", &sh->size_gib);
			break;
		case 4:
			rc = get_bool(ld, v, "shared_folders.isolation", &sh->isolation);
			break;
		default:
			rc = unknown_key(ld, k, "shared_folders", share_keys, UTIL_ARRAY_SIZE(share_keys));
		}
		if (rc)
			return rc;
	}
	if (!host)
		return ld_err(ld, m, "shared_folders: missing 'host' (the folder to share)");
	if (path_contains(sh->host, ld->dir))
		return ld_err(ld, host, "shared_folders.host: '%s' is the project directory or contains "
					"it; the guest must not reach hutch.yaml and hooks/ (share a "
					"subfolder such as ./workspace)", esc(b, sizeof(b), host->str));
	base = strrchr(sh->host, '/') + 1;
	if (!sh->tag) {
		if (!tag_valid(base))
			return ld_err(ld, host, "shared_folders: the folder name '%s' is not a valid "
						"virtiofs tag; set 'tag:' (1..36 of A-Z a-z 0-9 _ . -)",
				      esc(b, sizeof(b), base));
		sh->tag = strdup(base);
		if (!sh->tag)
			return -ENOMEM;
	}
	if (!sh->guest) {
		/* the guest's fstab line holds it: no blanks, commas or backslashes */
		if (strpbrk(base, " \t,\\"))
			return ld_err(ld, host, "shared_folders: the folder name '%s' cannot be a mount "
						"point in the guest as is; set 'guest:'",
				      esc(b, sizeof(b), base));
		if (asprintf(&sh->guest, "/%s", base) < 0) {
			sh->guest = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static int apply_shares(struct ld *ld, const struct ynode *v, struct cfg_vm *vm)
{
	struct cfg_share *sh = NULL;
	size_t l, j, n = 0;
	char b[80];
	int rc;

	/* an empty "shared_folders:" is an empty list */
	rc = is_null(v) ? 0 : want_seq(ld, v, "shared_folders");
	if (rc)
		return rc;
	if (v->n) {
		sh = calloc(v->n, sizeof(*sh));
		if (!sh)
			return -ENOMEM;
	}
	for (l = 0; l < v->n; l++) {
		rc = parse_share(ld, v->kids[l], &sh[l]);
		n = l + 1;
		for (j = 0; !rc && j < l; j++) {
			if (!strcmp(sh[j].tag, sh[l].tag))
				rc = ld_err(ld, v->kids[l], "shared_folders: tag '%s' is used twice",
					    esc(b, sizeof(b), sh[l].tag));
			else if (!strcmp(sh[j].guest, sh[l].guest))
				rc = ld_err(ld, v->kids[l], "shared_folders: guest path '%s' is used twice",
					    esc(b, sizeof(b), sh[l].guest));
		}
		if (rc)
			goto err;
	}
	for (j = 0; j < vm->n_shares; j++)
		share_free(&vm->shares[j]);
	free(vm->shares);
	vm->shares = sh;
	vm->n_shares = v->n;
	return 0;
err:
	if (rc == -ENOMEM)
		file_err(ld->e, ld->mpath, "out of memory");
	for (j = 0; j < n; j++)
		share_free(&sh[j]);
	free(sh);
	return rc;
}

/* A login name for ssh's argv: never starts with '-', nothing a shell would mind. */
static bool user_valid(const char *s)
{
	size_t l = strlen(s);

	return l >= 1 && l <= 32 && ((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_') &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == l;
}

static int apply_ssh(struct ld *ld, const struct ynode *m, struct cfg_vm *vm)
{
	char b[80];
	size_t i;
	int rc;

	if (is_null(m))	/* "ssh:" with everything commented out */
		return 0;
	rc = want_map(ld, m, "ssh");
	if (rc)
		return rc;
	for (i = 0; i < m->n; i += 2) {
		const struct ynode *k = m->kids[i], *v = m->kids[i + 1];

		switch (key_index(k->str, ssh_keys, UTIL_ARRAY_SIZE(ssh_keys))) {
		case 0:
			rc = set_str(ld, v, "ssh.user", 32, &vm->ssh.user);
			if (!rc && !user_valid(vm->ssh.user))
				rc = ld_err(ld, v, "ssh.user: '%s' is not a valid user name "
						   "([a-z_][a-z0-9_-]*, at most 32)",
					    esc(b, sizeof(b), vm->ssh.user));
			break;
		case 1:
			if (v->type == YN_SCALAR && !strcmp(v->str, "managed")) {
				vm->ssh.key = CFG_KEY_MANAGED;
			} else if (v->type == YN_SCALAR && !strcmp(v->str, "generated")) {
				vm->ssh.key = CFG_KEY_GENERATED;
			} else {
				rc = get_path(ld, v, "ssh.key", &vm->ssh.key_path);
				if (!rc)
					vm->ssh.key = CFG_KEY_PATH;
				break;
			}
			free(vm->ssh.key_path);
			vm->ssh.key_path = NULL;
			break;
		default:
			rc = unknown_key(ld, k, "ssh", ssh_keys, UTIL_ARRAY_SIZE(ssh_keys));
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int apply_timeouts(struct ld *ld, const struct ynode *m, struct cfg_vm *vm)
{
	unsigned *slot[] = { &vm->timeouts.boot, &vm->timeouts.ssh, &vm->timeouts.cloud_init,
			     &vm->timeouts.shutdown };
	char key[32];
	size_t i;
	int rc, ki;

	if (is_null(m))	/* "timeouts:" with everything commented out */
		return 0;
	rc = want_map(ld, m, "timeouts");
	if (rc)
		return rc;
	for (i = 0; i < m->n; i += 2) {
		const struct ynode *k = m->kids[i], *v = m->kids[i + 1];

		ki = key_index(k->str, timeout_keys, UTIL_ARRAY_SIZE(timeout_keys));
		if (ki < 0)
			return unknown_key(ld, k, "timeouts", timeout_keys, UTIL_ARRAY_SIZE(timeout_keys));
		snprintf(key, sizeof(key), "timeouts.%s", timeout_keys[ki]);
		rc = get_uint(ld, v, key, 1, 86400, "seconds", slot[ki]);
		if (rc)
			return rc;
	}
	return 0;
}

static int get_sha256(struct ld *ld, const struct ynode *n, char **out)
{
	const char *s;
	char *d;
	size_t i;
	int rc;

	rc = get_str(ld, n, "image_sha256", 128, &s);
	if (rc)
		return rc;
	if (strlen(s) != 64 || strspn(s, "0123456789abcdefABCDEF") != 64)
		return ld_err(ld, n, "image_sha256: expected 64 hexadecimal digits, got %zu characters%s",
			      strlen(s), strspn(s, "0123456789abcdefABCDEF") == strlen(s) ? "" :
											" (not all hex)");
	d = strdup(s);
	if (!d)
		return -ENOMEM;
	for (i = 0; d[i]; i++)
		if (d[i] >= 'A' && d[i] <= 'F')
			d[i] = (char)(d[i] - 'A' + 'a');
	free(*out);
	*out = d;
	return 0;
}

/*
 * apply_vm() - set @vm's fields from the keys of mapping @m
 * @top_defaults: @m is the top level beside `vms:` (so `vms` is skipped and
 *                `name` refused: names belong to each entry)
 * @in_list:      @m is an entry of `vms:` (so `vms` is unknown there)
 */
static int apply_vm(struct ld *ld, const struct ynode *m, struct cfg_vm *vm, struct vm_seen *seen,
		    bool top_defaults, bool in_list)
{
	size_t nkeys = in_list ? VM_KEYS_N : UTIL_ARRAY_SIZE(vm_keys);
	char b[80];
	size_t i;
	int rc = 0, iv;

	for (i = 0; i < m->n; i += 2) {
		const struct ynode *k = m->kids[i], *v = m->kids[i + 1];

		switch (key_index(k->str, vm_keys, nkeys)) {
		case 0:	/* name */
			if (top_defaults) {
				rc = ld_err(ld, k, "'name' cannot be a default beside 'vms:'; "
						   "give each entry of vms: its own name");
				break;
			}
			if (v->type != YN_SCALAR || is_null(v)) {
				rc = ld_err(ld, v, "name: expected a string, got %s", node_kind(v));
				break;
			}
			if (!util_name_valid(v->str)) {
				rc = ld_err(ld, v, "name: '%s' is not a valid VM name: 1..31 of a-z, 0-9 "
						   "and '-', starting with a letter or digit",
					    esc(b, sizeof(b), v->str));
				break;
			}
			memcpy(vm->name, v->str, strlen(v->str) + 1);
			seen->name = v;
			break;
		case 1:
			rc = get_image(ld, v, &vm->image);
			seen->image = true;
			break;
		case 2:
			rc = get_sha256(ld, v, &vm->image_sha256);
			break;
		case 3:
			rc = get_uint(ld, v, "cpus", 1, 256, NULL, &vm->cpus);
			break;
		case 4:
			rc = get_uint(ld, v, "memory", 128, 1048576, "MiB", &vm->memory_mib);
			break;
		case 5:
			rc = get_uint(ld, v, "disk", 0, 65536, "GiB (0 = the image's size)", &vm->disk_gib);
			break;
		case 6:
			rc = get_enum(ld, v, "accel", accel_names, UTIL_ARRAY_SIZE(accel_names), &iv);
			if (!rc)
				vm->accel = (enum cfg_accel)iv;
			break;
		case 7:
			rc = get_enum(ld, v, "firmware", fw_names, UTIL_ARRAY_SIZE(fw_names), &iv);
			if (!rc)
				vm->firmware = (enum cfg_firmware)iv;
			break;
		case 8:
			rc = apply_kernel(ld, v, vm);
			if (!is_null(v))
				seen->kernel = v;
			break;
		case 9:
			rc = apply_network(ld, v, vm, seen);
			break;
		case 10:
			rc = apply_shares(ld, v, vm);
			break;
		case 11:
			rc = apply_ssh(ld, v, vm);
			break;
		case 12:
			rc = get_enum(ld, v, "autoconnect", auto_names, UTIL_ARRAY_SIZE(auto_names), &iv);
			if (!rc)
				vm->autoconnect = (enum cfg_autoconnect)iv;
			break;
		case 13:
			rc = get_bool(ld, v, "cloud_init_wait", &vm->cloud_init_wait);
			break;
		case 14:
			rc = apply_timeouts(ld, v, vm);
			break;
		case 15:
			rc = get_bool(ld, v, "warm", &vm->warm);
			break;
		case 16:	/* vms: handled by the caller */
			break;
		default:
			rc = unknown_key(ld, k, NULL, vm_keys, nkeys);
		}
		if (rc == -ENOMEM)
			file_err(ld->e, ld->mpath, "out of memory");
		if (rc)
			return rc;
	}
	return 0;
}

/* finish_vm() - checks across keys, and defaults that depend on other keys */
static int finish_vm(struct ld *ld, const struct ynode *m, struct cfg_vm *vm,
		     const struct vm_seen *seen)
{
	if (!vm->name[0])
		return ld_err(ld, m, "missing 'name:' (every VM needs a name: 1..31 of a-z, 0-9 and '-')");
	if (seen->kernel && !vm->kernel.path)
		return ld_err(ld, seen->kernel, "kernel: missing 'path' (the kernel image to boot)");
	if (!seen->image && !vm->kernel.path) {
		vm->image = strdup("debian-12");
		if (!vm->image) {
			file_err(ld->e, ld->mpath, "out of memory");
			return -ENOMEM;
		}
	}
	/* with kernel: and no image:, image stays NULL: a direct kernel boot needs no disk */
	if (vm->network.n_forward && vm->network.mode == CFG_NET_NONE)
		return ld_err(ld, seen->forward, "network.forward: needs network mode nat or user, "
						 "not none");
	return 0;
}

static int cfg_new(struct ld *ld, const char *abspath, struct cfg **out)
{
	struct cfg *c = calloc(1, sizeof(*c));

	if (!c || !(c->path = strdup(abspath)) || !(c->dir = strdup(ld->dir))) {
		if (c)
			free(c->path);
		free(c);
		file_err(ld->e, ld->mpath, "out of memory");
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

static int load_tree(struct ld *ld, const struct ynode *root, struct cfg *c)
{
	const struct ynode *vms = NULL;
	struct vm_seen seen;
	size_t i, j;
	char b[80];
	int rc;

	if (root->type != YN_MAP)
		return ld_err(ld, root, "expected a mapping of settings (name: ..., image: ...) at the "
					"top level, got %s", node_kind(root));
	for (i = 0; i < root->n; i += 2)
		if (!strcmp(root->kids[i]->str, "vms"))
			vms = root->kids[i + 1];
	if (!vms) {
		c->vms = calloc(1, sizeof(*c->vms));
		if (!c->vms)
			return -ENOMEM;
		c->n_vms = 1;
		vm_defaults(&c->vms[0]);
		memset(&seen, 0, sizeof(seen));
		rc = apply_vm(ld, root, &c->vms[0], &seen, false, false);
		if (!rc)
			rc = finish_vm(ld, root, &c->vms[0], &seen);
		return rc;
	}
	rc = want_seq(ld, vms, "vms");
	if (rc)
		return rc;
	if (!vms->n)
		return ld_err(ld, vms, "vms: the list is empty; give at least one VM");
	if (vms->n > CFG_MAX_VMS)
		return ld_err(ld, vms, "vms: at most %d VMs", CFG_MAX_VMS);
	c->vms = calloc(vms->n, sizeof(*c->vms));
	if (!c->vms)
		return -ENOMEM;
	for (i = 0; i < vms->n; i++) {
		const struct ynode *item = vms->kids[i];

		c->n_vms = i + 1;
		vm_defaults(&c->vms[i]);
		rc = want_map(ld, item, "vms entry");
		if (rc)
			return rc;
		/* top-level keys first (defaults), then the entry's own on top */
		memset(&seen, 0, sizeof(seen));
		rc = apply_vm(ld, root, &c->vms[i], &seen, true, false);
		if (!rc)
			rc = apply_vm(ld, item, &c->vms[i], &seen, false, true);
		if (!rc)
			rc = finish_vm(ld, item, &c->vms[i], &seen);
		if (rc)
			return rc;
		for (j = 0; j < i; j++)
			if (!strcmp(c->vms[j].name, c->vms[i].name))
				return ld_err(ld, seen.name, "name: '%s' is used by another VM in this file",
					      esc(b, sizeof(b), c->vms[i].name));
	}
	return 0;
}

/*
 * load() - the common part of cfg_load() and cfg_load_buffer()
 * @mpath:   the file as named in messages
 * @abspath: absolute path of the file, stored in the result
 * @dir:     absolute project directory, base of relative paths
 */
static int load(const char *buf, size_t len, const char *mpath, const char *abspath,
		const char *dir, struct cfg **out, struct cfg_error *e)
{
	struct ld ld = { .mpath = mpath, .dir = dir, .buf = buf, .len = len, .e = e };
	struct ynode *root = NULL;
	struct cfg *c = NULL;
	int rc;

	e->msg[0] = '\0';
	if (len > CFG_MAX_BYTES) {
		file_err(e, mpath, "the file is larger than %d bytes; that is not a hutch.yaml",
			 CFG_MAX_BYTES);
		return -EINVAL;
	}
	rc = tree_parse(&ld, &root);
	if (rc)
		return rc;
	rc = cfg_new(&ld, abspath, &c);
	if (rc)
		goto out;
	rc = load_tree(&ld, root, c);
	if (rc == -ENOMEM && !e->msg[0])
		file_err(e, mpath, "out of memory");
	if (rc) {
		cfg_free(c);
		goto out;
	}
	*out = c;
out:
	ynode_free(root);
	return rc;
}

static int cwd_abs(const char *p, char **out)
{
	char cwd[PATH_MAX];

	if (p[0] == '/')
		return path_abs("/", p, out);
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	return path_abs(cwd, p, out);
}

int cfg_load_buffer(const char *buf, size_t len, const char *path_for_messages, const char *dir,
		    struct cfg **out, struct cfg_error *e)
{
	const char *base = strrchr(path_for_messages, '/');
	char *adir = NULL, *apath = NULL;
	int rc;

	rc = cwd_abs(dir, &adir);
	if (!rc)
		rc = path_abs(adir, base ? base + 1 : path_for_messages, &apath);
	if (rc) {
		file_err(e, path_for_messages, "project directory: %s", strerror(-rc));
		goto out;
	}
	rc = load(buf, len, path_for_messages, apath, adir, out, e);
out:
	free(adir);
	free(apath);
	return rc;
}

int cfg_load(const char *path, struct cfg **out, struct cfg_error *e)
{
	char *apath = NULL, *adir = NULL, *buf = NULL, *slash;
	size_t len;
	int rc;

	rc = util_read_file(path, CFG_MAX_BYTES, &buf, &len);
	if (rc == -EFBIG) {
		file_err(e, path, "the file is larger than %d bytes; that is not a hutch.yaml",
			 CFG_MAX_BYTES);
		return -EINVAL;
	}
	if (rc) {
		file_err(e, path, "cannot read: %s", strerror(-rc));
		return rc;
	}
	rc = cwd_abs(path, &apath);
	if (rc) {
		file_err(e, path, "cannot resolve the path: %s", strerror(-rc));
		goto out;
	}
	adir = strdup(apath);
	if (!adir) {
		rc = -ENOMEM;
		file_err(e, path, "out of memory");
		goto out;
	}
	slash = strrchr(adir, '/');
	if (slash == adir)
		slash[1] = '\0';
	else
		*slash = '\0';
	rc = load(buf, len, path, apath, adir, out, e);
out:
	free(buf);
	free(apath);
	free(adir);
	return rc;
}

void cfg_free(struct cfg *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n_vms; i++)
		vm_free(&c->vms[i]);
	free(c->vms);
	free(c->path);
	free(c->dir);
	free(c);
}

const struct cfg_vm *cfg_find_vm(const struct cfg *c, const char *name)
{
	size_t i;

	if (!c || !c->n_vms)
		return NULL;
	if (!name)
		return &c->vms[0];
	for (i = 0; i < c->n_vms; i++)
		if (!strcmp(c->vms[i].name, name))
			return &c->vms[i];
	return NULL;
}

/* ---- output ------------------------------------------------------------------ */

/* Plain YAML is fine for what cannot be read back as something else. */
static bool plain_ok(const char *s)
{
	static const char *const special[] = { "true", "false", "True", "False", "TRUE", "FALSE",
					       "null", "Null", "NULL", "~", "yes", "no", "on", "off" };
	size_t i, l = strlen(s);

	if (!l || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./+@-") != l)
		return false;
	if (s[0] == '-' || s[0] == '.' || strspn(s, "0123456789+-.") == l)
		return false;
	for (i = 0; i < UTIL_ARRAY_SIZE(special); i++)
		if (!strcmp(s, special[i]))
			return false;
	return true;
}

/*
 * A string as YAML: plain when unambiguous, else double-quoted with every
 * non-ASCII code point escaped, so the output is ASCII and reads back the
 * same (the loader has already refused control characters, and libyaml
 * has checked the UTF-8).
 */
static void put_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	int extra;

	if (plain_ok(s)) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	while (*p) {
		if (*p < 0x80) {
			if (*p == '"' || *p == '\\')
				fputc('\\', f);
			fputc(*p++, f);
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			cp = *p & 0x1f;
			extra = 1;
		} else if ((*p & 0xf0) == 0xe0) {
			cp = *p & 0x0f;
			extra = 2;
		} else {
			cp = *p & 0x07;
			extra = 3;
		}
		p++;
		while (extra-- > 0 && (*p & 0xc0) == 0x80)
			cp = cp << 6 | (*p++ & 0x3f);
		if (cp > 0xffff)
			fprintf(f, "\\U%08x", (unsigned)cp);
		else
			fprintf(f, "\\u%04x", (unsigned)cp);
	}
	fputc('"', f);
}

static void put_kv(FILE *f, const char *ind, const char *k, const char *v)
{
	fprintf(f, "%s%s: ", ind, k);
	put_str(f, v);
	fputc('\n', f);
}

static void print_vm(FILE *f, const struct cfg_vm *vm)
{
	char a[INET_ADDRSTRLEN];
	size_t i;

	put_kv(f, "", "name", vm->name);
	if (vm->image)
		put_kv(f, "", "image", vm->image);
	if (vm->image_sha256)
		put_kv(f, "", "image_sha256", vm->image_sha256);
	fprintf(f, "cpus: %u\nmemory: %u\ndisk: %u\naccel: %s\nfirmware: %s\n", vm->cpus,
		vm->memory_mib, vm->disk_gib, accel_names[vm->accel], fw_names[vm->firmware]);
	if (vm->kernel.path) {
		fputs("kernel:\n", f);
		put_kv(f, "  ", "path", vm->kernel.path);
		if (vm->kernel.initrd)
			put_kv(f, "  ", "initrd", vm->kernel.initrd);
		if (vm->kernel.cmdline)
			put_kv(f, "  ", "cmdline", vm->kernel.cmdline);
	}
	fprintf(f, "network:\n  mode: %s\n  isolation: %s\n  ipv6: %s\n", mode_names[vm->network.mode],
		vm->network.isolation ? "true" : "false", vm->network.ipv6 ? "true" : "false");
	fprintf(f, "  host_access:%s\n", vm->network.n_host_access ? "" : " []");
	for (i = 0; i < vm->network.n_host_access; i++) {
		const struct cfg_host_access *h = &vm->network.host_access[i];

		if (h->kind == CFG_HA_HOST_PORT)
			fprintf(f, "    - allow-host-port %s/%u\n", proto_names[h->proto], h->port);
		else
			fprintf(f, "    - allow-lan-host %s\n",
				inet_ntop(AF_INET, &h->addr, a, sizeof(a)) ? a : "?");
	}
	fprintf(f, "  forward:%s\n", vm->network.n_forward ? "" : " []");
	for (i = 0; i < vm->network.n_forward; i++)
		fprintf(f, "    - %s/%u:%u\n", proto_names[vm->network.forward[i].proto],
			vm->network.forward[i].host_port, vm->network.forward[i].guest_port);
	fprintf(f, "shared_folders:%s\n", vm->n_shares ? "" : " []");
	for (i = 0; i < vm->n_shares; i++) {
		const struct cfg_share *s = &vm->shares[i];

		put_kv(f, "  - ", "host", s->host);
		put_kv(f, "    ", "guest", s->guest);
		put_kv(f, "    ", "tag", s->tag);
		fprintf(f, "    size: %u\n    isolation: %s\n", s->size_gib,
			s->isolation ? "true" : "false");
	}
	fputs("ssh:\n", f);
	if (vm->ssh.user)
		put_kv(f, "  ", "user", vm->ssh.user);
	if (vm->ssh.key == CFG_KEY_PATH && vm->ssh.key_path)
		put_kv(f, "  ", "key", vm->ssh.key_path);
	else
		fprintf(f, "  key: %s\n", vm->ssh.key == CFG_KEY_GENERATED ? "generated" : "managed");
	fprintf(f, "autoconnect: %s\ncloud_init_wait: %s\n", auto_names[vm->autoconnect],
		vm->cloud_init_wait ? "true" : "false");
	fprintf(f, "timeouts:\n  boot: %u\n  ssh: %u\n  cloud_init: %u\n  shutdown: %u\n",
		vm->timeouts.boot, vm->timeouts.ssh, vm->timeouts.cloud_init, vm->timeouts.shutdown);
	fprintf(f, "warm: %s\n", vm->warm ? "true" : "false");
}

int cfg_print(FILE *f, const struct cfg *c)
{
	char *text = NULL, *line, *save = NULL;
	size_t len = 0, i;
	FILE *m;

	if (c->n_vms == 1) {
		print_vm(f, &c->vms[0]);
		return ferror(f) ? -EIO : 0;
	}
	/* several VMs: each printed alone, then indented as an entry of vms: */
	fputs("vms:\n", f);
	for (i = 0; i < c->n_vms; i++) {
		m = open_memstream(&text, &len);
		if (!m)
			return -errno;
		print_vm(m, &c->vms[i]);
		if (fclose(m)) {
			free(text);
			return -EIO;
		}
		save = NULL;
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			fprintf(f, "%s%s\n", line == text ? "  - " : "    ", line);
		free(text);
		text = NULL;
	}
	return ferror(f) ? -EIO : 0;
}

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *cfg_vm_json(const struct cfg_vm *vm)
{
	json_t *ha = json_array(), *fw = json_array(), *sh = json_array();
	char a[INET_ADDRSTRLEN], buf[48];
	size_t i;

	for (i = 0; i < vm->network.n_host_access; i++) {
		const struct cfg_host_access *h = &vm->network.host_access[i];

		if (h->kind == CFG_HA_HOST_PORT)
			snprintf(buf, sizeof(buf), "allow-host-port %s/%u", proto_names[h->proto], h->port);
		else
			snprintf(buf, sizeof(buf), "allow-lan-host %s",
				 inet_ntop(AF_INET, &h->addr, a, sizeof(a)) ? a : "?");
		json_array_append_new(ha, json_string(buf));
	}
	for (i = 0; i < vm->network.n_forward; i++) {
		snprintf(buf, sizeof(buf), "%s/%u:%u", proto_names[vm->network.forward[i].proto],
			 vm->network.forward[i].host_port, vm->network.forward[i].guest_port);
		json_array_append_new(fw, json_string(buf));
	}
	for (i = 0; i < vm->n_shares; i++)
		json_array_append_new(sh, json_pack("{s:s, s:s, s:s, s:I, s:b}",
						    "host", vm->shares[i].host,
						    "guest", vm->shares[i].guest,
						    "tag", vm->shares[i].tag,
						    "size", (json_int_t)vm->shares[i].size_gib,
						    "isolation", vm->shares[i].isolation));
	return json_pack("{s:s, s:o, s:o, s:I, s:I, s:I, s:s, s:s,"
			 " s:{s:o, s:o, s:o},"
			 " s:{s:s, s:b, s:b, s:o, s:o},"
			 " s:o,"
			 " s:{s:o, s:s},"
			 " s:s, s:b,"
			 " s:{s:I, s:I, s:I, s:I}, s:b}",
			 "name", vm->name, "image", jstr(vm->image),
			 "image_sha256", jstr(vm->image_sha256),
			 "cpus", (json_int_t)vm->cpus, "memory", (json_int_t)vm->memory_mib,
			 "disk", (json_int_t)vm->disk_gib, "accel", accel_names[vm->accel],
			 "firmware", fw_names[vm->firmware],
			 "kernel", "path", jstr(vm->kernel.path), "initrd", jstr(vm->kernel.initrd),
			 "cmdline", jstr(vm->kernel.cmdline),
			 "network", "mode", mode_names[vm->network.mode],
			 "isolation", vm->network.isolation, "ipv6", vm->network.ipv6,
			 "host_access", ha, "forward", fw,
			 "shared_folders", sh,
			 "ssh", "user", jstr(vm->ssh.user),
			 "key", vm->ssh.key == CFG_KEY_PATH && vm->ssh.key_path ? vm->ssh.key_path :
				vm->ssh.key == CFG_KEY_GENERATED ? "generated" : "managed",
			 "autoconnect", auto_names[vm->autoconnect],
			 "cloud_init_wait", vm->cloud_init_wait,
			 "timeouts", "boot", (json_int_t)vm->timeouts.boot,
			 "ssh", (json_int_t)vm->timeouts.ssh,
			 "cloud_init", (json_int_t)vm->timeouts.cloud_init,
			 "shutdown", (json_int_t)vm->timeouts.shutdown, "warm", vm->warm);
}

int cfg_to_json(const struct cfg *c, json_t **out)
{
	json_t *vms = json_array(), *v, *o;
	size_t i;

	if (!vms)
		return -ENOMEM;
	for (i = 0; i < c->n_vms; i++) {
		v = cfg_vm_json(&c->vms[i]);
		if (!v || json_array_append_new(vms, v)) {
			json_decref(vms);
			return -ENOMEM;
		}
	}
	o = json_pack("{s:s, s:s, s:o}", "path", c->path, "dir", c->dir, "vms", vms);
	if (!o)
		return -ENOMEM;
	*out = o;
	return 0;
}
