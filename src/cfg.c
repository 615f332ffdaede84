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
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "share/share.h"
#include "src/cfg.h"
#include "src/log.h"
#include "src/trust.h"
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

/*
 * struct ld - one load: where messages point, and what they fill
 * @fs: paths are checked on disk as well (trust_check()), and the user's
 *      config may allow places outside the project; without it (fuzzing,
 *      unit tests) only the lexical rules apply and nothing outside counts
 */
struct ld {
	const char *mpath;	/* the file as the user named it, for messages */
	const char *dir;	/* absolute project directory */
	const char *buf;	/* the bytes, for positions of reader errors */
	size_t len;
	struct cfg_error *e;
	unsigned nodes;
	bool fs;
};

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

static void __attribute__((format(printf, 4, 0)))
ld_vmsg(struct ld *ld, const struct ynode *n, char *out, const char *fmt, va_list ap)
{
	char m[900], p[256];

	if (vsnprintf(m, sizeof(m), fmt, ap) >= (int)sizeof(m))
		memcpy(m + sizeof(m) - 4, "...", 4);
	snprintf(out, sizeof(ld->e->msg), "%s:%u:%u: %s", esc(p, sizeof(p), ld->mpath),
		 n ? n->line : 1, n ? n->col : 1, m);
}

/* Format "FILE:LINE:COL: message" for @n; returns -EINVAL for the caller. */
static int __attribute__((format(printf, 3, 4)))
ld_err(struct ld *ld, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ld_vmsg(ld, n, ld->e->msg, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* As ld_err(), for a path the project may not name: -EPERM, so hutch exits 77. */
static int __attribute__((format(printf, 3, 4)))
ld_perm(struct ld *ld, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ld_vmsg(ld, n, ld->e->msg, fmt, ap);
	va_end(ap);
	return -EPERM;
}

/* "FILE:LINE:COL: message" as a warning; only for real loads (not fuzzing) */
static void __attribute__((format(printf, 3, 4)))
ld_warn(struct ld *ld, const struct ynode *n, const char *fmt, ...)
{
	char out[sizeof(ld->e->msg)];
	va_list ap;

	if (!ld->fs)
		return;
	va_start(ap, fmt);
	ld_vmsg(ld, n, out, fmt, ap);
	va_end(ap);
	log_warn("%s", out);
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

/*
 * tree_parse() - the single document of @ld->buf as a tree; *@out owned by
 * the caller.  An empty file is an error unless @empty_ok (*@out NULL then).
 */
static int tree_parse(struct ld *ld, bool empty_ok, struct ynode **out)
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
		*out = NULL;
		if (!empty_ok)
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
	/* values end up in Ansible's inventory, where they are Jinja templates:
	 * "{{ lookup('pipe', ...) }}" would run on the host */
	if (strstr(n->str, "{{") || strstr(n->str, "{%") || strstr(n->str, "{#"))
		return ld_err(ld, n, "%s: '{{', '{%%' and '{#' are not allowed (a value is not a "
				     "template, and Ansible would run it as one)", key);
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

/*
 * resolve_path() - the path named by @n, absolute and normalised: ~/ is
 * $HOME (as a shell would have it), a relative path is against @base, or
 * refused when @base is NULL.  *@out is malloc'd.
 */
static int resolve_path(struct ld *ld, const struct ynode *n, const char *key, const char *base,
			char **out)
{
	const char *s;
	int rc;

	rc = get_str(ld, n, key, PATH_MAX - 1, &s);
	if (rc)
		return rc;
	if (s[0] == '~' && s[1] && s[1] != '/')
		return ld_err(ld, n, "%s: '~user/' paths are not supported; use ~/ or an absolute path",
			      key);
	if (s[0] == '~') {
		const char *home = getenv("HOME");

		if (!home || home[0] != '/')
			return ld_err(ld, n, "%s: '~' needs $HOME to be set to an absolute path", key);
		rc = path_abs(home, s[1] ? s + 2 : "", out);
	} else if (!base && s[0] != '/') {
		char b[80];

		return ld_err(ld, n, "%s: '%s' must be an absolute path or start with ~/", key,
			      esc(b, sizeof(b), s));
	} else {
		rc = path_abs(base ? base : "/", s, out);
	}
	if (rc == -ENAMETOOLONG)
		return ld_err(ld, n, "%s: path too long", key);
	if (rc) {
		file_err(ld->e, ld->mpath, "out of memory");
		return rc;
	}
	return 0;
}

/*
 * get_path() - a path the project names: resolved against the project dir,
 * then held to trust_check(): inside the project (no symlink on the way),
 * or in a place the user's own config allows.  A refusal is -EPERM.
 */
int cfg_path_abs(const char *dir, const char *p, char **out)
{
	return path_abs(dir, p, out);
}

static int get_path(struct ld *ld, const struct ynode *n, const char *key, enum trust_kind kind,
		    char **out)
{
	char why[TRUST_WHY_MAX], b[80], *p = NULL;
	int rc;

	rc = resolve_path(ld, n, key, ld->dir, &p);
	if (rc)
		return rc;
	rc = trust_check(ld->dir, p, kind, ld->fs ? 0 : TRUST_LEXICAL, why, sizeof(why));
	if (rc == -EPERM)
		rc = ld_perm(ld, n, "%s: '%s' %s", key, esc(b, sizeof(b), n->str), why);
	else if (rc)
		rc = ld_err(ld, n, "%s: '%s': %s", key, esc(b, sizeof(b), n->str), strerror(-rc));
	if (rc) {
		free(p);
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
		return get_path(ld, n, "image", TRUST_FILE, out);
	if (!alias_valid(s))
		return ld_err(ld, n, "image: '%s' is not a valid alias (letters, digits, '.', '_', '-'); "
				     "a local file needs a '/' (e.g. ./%s) or a .qcow2/.img/.raw name",
			      esc(b, sizeof(b), s), esc(b2, sizeof(b2), s));
	return set_str(ld, n, "image", 64, out);
}

/* ---- the schema ---------------------------------------------------------- */

/*
 * struct vm_seen - what a VM's mappings set, for defaults that depend on it
 * @top_defaults: the mapping being applied is the top level beside `vms:`
 */
struct vm_seen {
	bool image;
	bool top_defaults;
	const struct ynode *kernel;	/* the last kernel: mapping, for errors */
	const struct ynode *name;
	const struct ynode *forward;
};

/* struct actx - what a key's handler writes: the VM, or one shared folder of it */
struct actx {
	struct cfg_vm *vm;
	struct vm_seen *seen;
	struct cfg_share *sh;
	const struct ynode *key;	/* the key being applied */
};

/*
 * struct key_handler - one key of a mapping and the function that applies
 * its value: the schema of every level is a table of these, so a key and
 * its handler are written side by side and never matched by position.
 * A NULL @fn is a key handled by the caller (`vms`).
 */
struct key_handler {
	const char *name;
	int (*fn)(struct ld *ld, const struct ynode *v, struct actx *a);
};

/*
 * apply_map() - apply every key of mapping @m through table @t (@n entries)
 * @where: the mapping's name for "unknown key ... in WHERE", or NULL (top)
 */
static int apply_map(struct ld *ld, const struct ynode *m, const char *where,
		     const struct key_handler *t, size_t n, struct actx *a)
{
	const char *names[32];
	size_t i, j;
	int rc;

	for (i = 0; i < m->n; i += 2) {
		const struct ynode *k = m->kids[i], *v = m->kids[i + 1];

		for (j = 0; j < n && strcmp(k->str, t[j].name); j++)
			;
		if (j == n) {
			for (j = 0; j < n && j < UTIL_ARRAY_SIZE(names); j++)
				names[j] = t[j].name;
			return unknown_key(ld, k, where, names, j);
		}
		a->key = k;
		rc = t[j].fn ? t[j].fn(ld, v, a) : 0;
		if (rc == -ENOMEM)
			file_err(ld->e, ld->mpath, "out of memory");
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * parse_list() - a YAML list (null: empty) into a new array of @size-byte
 * elements, each parsed by @one; @dup(earlier, later) returns an error
 * (through ld_err at @at) when @later repeats @earlier; @drop frees what an
 * element holds (NULL: nothing).  *@out and *@n are set only on success.
 */
static int parse_list(struct ld *ld, const struct ynode *v, const char *key, size_t size,
		      int (*one)(struct ld *ld, const struct ynode *n, void *elem),
		      int (*dup)(struct ld *ld, const struct ynode *at, const void *earlier,
				 const void *later),
		      void (*drop)(void *elem), void **out, size_t *n)
{
	char *arr = NULL;
	size_t l, j;
	int rc;

	rc = is_null(v) ? 0 : want_seq(ld, v, key);
	if (rc)
		return rc;
	if (v->n) {
		arr = calloc(v->n, size);
		if (!arr)
			return -ENOMEM;
	}
	for (l = 0; l < v->n; l++) {
		rc = one(ld, v->kids[l], arr + l * size);
		for (j = 0; !rc && dup && j < l; j++)
			rc = dup(ld, v->kids[l], arr + j * size, arr + l * size);
		if (rc) {
			for (j = 0; drop && j <= l; j++)
				drop(arr + j * size);
			free(arr);
			return rc;
		}
	}
	*out = arr;
	*n = v->n;
	return 0;
}

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

static void share_free(void *p)
{
	struct cfg_share *s = p;

	free(s->host);
	free(s->guest);
	free(s->tag);
}

static void shares_free(struct cfg_vm *vm)
{
	for (size_t i = 0; i < vm->n_shares; i++)
		share_free(&vm->shares[i]);
	free(vm->shares);
	vm->shares = NULL;
	vm->n_shares = 0;
}

static void vm_free(struct cfg_vm *vm)
{
	free(vm->image);
	free(vm->image_sha256);
	free(vm->kernel.path);
	free(vm->kernel.initrd);
	free(vm->kernel.cmdline);
	free(vm->network.host_access);
	free(vm->network.forward);
	shares_free(vm);
	free(vm->ssh.user);
	free(vm->ssh.key_path);
	memset(vm, 0, sizeof(*vm));
}

/* ---- kernel: ---- */

static int key_kernel_path(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_path(ld, v, "kernel.path", TRUST_FILE, &a->vm->kernel.path);
}

static int key_kernel_initrd(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_path(ld, v, "kernel.initrd", TRUST_FILE, &a->vm->kernel.initrd);
}

static int key_kernel_cmdline(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return set_str(ld, v, "kernel.cmdline", CFG_MAX_STR, &a->vm->kernel.cmdline);
}

static const struct key_handler kernel_keys[] = {
	{ "path", key_kernel_path },
	{ "initrd", key_kernel_initrd },
	{ "cmdline", key_kernel_cmdline },
};

/* ---- network: ---- */

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

static int parse_lan_host(struct ld *ld, const struct ynode *n, const char *rest,
			  struct cfg_host_access *ha)
{
	char b[80];

	ha->kind = CFG_HA_LAN_HOST;
	if (inet_pton(AF_INET, rest, &ha->addr) != 1)
		return ld_err(ld, n, "network.host_access: '%s' is not an IPv4 address",
			      esc(b, sizeof(b), rest));
	if (!addr_is_lan(ha->addr))
		return ld_err(ld, n, "network.host_access: %s is not a LAN address (10/8, "
				     "172.16/12, 192.168/16, 100.64/10, 169.254/16); the "
				     "internet is reachable without an exception",
			      esc(b, sizeof(b), rest));
	/* link-local is where cloud providers answer with the host's credentials */
	if ((ntohl(ha->addr.s_addr) >> 16) == (169u << 8 | 254))
		ld_warn(ld, n, "network.host_access: %s is link-local (169.254/16): cloud "
			       "metadata services answer at 169.254.169.254 with this host's "
			       "credentials; allow it only if you mean the guest to have them",
			esc(b, sizeof(b), rest));
	return 0;
}

static int parse_host_access(struct ld *ld, const struct ynode *n, void *elem)
{
	static const char hp[] = "allow-host-port", lh[] = "allow-lan-host";
	struct cfg_host_access *ha = elem;
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
		return parse_lan_host(ld, n, rest + strspn(rest, " "), ha);
	}
	return ld_err(ld, n, "network.host_access: expected 'allow-host-port tcp/PORT', "
			     "'allow-host-port udp/PORT' or 'allow-lan-host IPV4', got '%s'",
		      esc(b, sizeof(b), s));
}

static int dup_host_access(struct ld *ld, const struct ynode *at, const void *earlier,
			   const void *later)
{
	if (memcmp(earlier, later, sizeof(struct cfg_host_access)))
		return 0;
	return ld_err(ld, at, "network.host_access: duplicate entry");
}

static int parse_forward(struct ld *ld, const struct ynode *n, void *elem)
{
	struct cfg_forward *f = elem;
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

static int dup_forward(struct ld *ld, const struct ynode *at, const void *earlier,
		       const void *later)
{
	const struct cfg_forward *a = earlier, *b = later;

	if (a->proto != b->proto || a->host_port != b->host_port)
		return 0;
	return ld_err(ld, at, "network.forward: host port %s/%u is forwarded twice",
		      proto_names[b->proto], b->host_port);
}

static int key_net_mode(struct ld *ld, const struct ynode *v, struct actx *a)
{
	int rc, iv;

	rc = get_enum(ld, v, "network.mode", mode_names, UTIL_ARRAY_SIZE(mode_names), &iv);
	if (!rc)
		a->vm->network.mode = (enum cfg_net_mode)iv;
	return rc;
}

static int key_net_isolation(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_bool(ld, v, "network.isolation", &a->vm->network.isolation);
}

static int key_net_ipv6(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_bool(ld, v, "network.ipv6", &a->vm->network.ipv6);
}

static int key_net_host_access(struct ld *ld, const struct ynode *v, struct actx *a)
{
	void *arr = NULL;
	size_t n = 0;
	int rc;

	rc = parse_list(ld, v, "network.host_access", sizeof(struct cfg_host_access),
			parse_host_access, dup_host_access, NULL, &arr, &n);
	if (rc)
		return rc;
	free(a->vm->network.host_access);
	a->vm->network.host_access = arr;
	a->vm->network.n_host_access = n;
	return 0;
}

static int key_net_forward(struct ld *ld, const struct ynode *v, struct actx *a)
{
	void *arr = NULL;
	size_t n = 0;
	int rc;

	rc = parse_list(ld, v, "network.forward", sizeof(struct cfg_forward), parse_forward,
			dup_forward, NULL, &arr, &n);
	if (rc)
		return rc;
	free(a->vm->network.forward);
	a->vm->network.forward = arr;
	a->vm->network.n_forward = n;
	a->seen->forward = v;
	return 0;
}

static const struct key_handler net_keys[] = {
	{ "mode", key_net_mode },
	{ "isolation", key_net_isolation },
	{ "ipv6", key_net_ipv6 },
	{ "host_access", key_net_host_access },
	{ "forward", key_net_forward },
};

/* ---- shared_folders: ---- */

static int key_share_host(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_path(ld, v, "shared_folders.host", TRUST_DIR, &a->sh->host);
}

static int key_share_guest(struct ld *ld, const struct ynode *v, struct actx *a)
{
	struct cfg_share *sh = a->sh;
	char b[80], b2[80];
	int rc;

	rc = set_str(ld, v, "shared_folders.guest", PATH_MAX - 1, &sh->guest);
	if (!rc && sh->guest[0] != '/')
		rc = ld_err(ld, v, "shared_folders.guest: '%s' must be an absolute path (e.g. /%s)",
			    esc(b, sizeof(b), sh->guest), esc(b2, sizeof(b2), sh->guest));
	if (!rc && (!strcmp(sh->guest, "/") || strstr(sh->guest, "/../") ||
		    ends_with(sh->guest, "/..") || strpbrk(sh->guest, " \t,\\")))
		rc = ld_err(ld, v, "shared_folders.guest: '%s' is not a usable mount point (no "
				   "'..', blanks, ',' or backslash)", esc(b, sizeof(b), sh->guest));
	return rc;
}

static int key_share_tag(struct ld *ld, const struct ynode *v, struct actx *a)
{
	char b[80];
	int rc;

	rc = set_str(ld, v, "shared_folders.tag", SHARE_TAG_MAX, &a->sh->tag);
	if (!rc && !share_tag_valid(a->sh->tag))
		rc = ld_err(ld, v, "shared_folders.tag: '%s' must be 1..36 of A-Z a-z 0-9 _ . -",
			    esc(b, sizeof(b), a->sh->tag));
	return rc;
}

static int key_share_size(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_uint(ld, v, "shared_folders.size", 1, 65536, "GiB", &a->sh->size_gib);
}

static int key_share_isolation(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_bool(ld, v, "shared_folders.isolation", &a->sh->isolation);
}

static const struct key_handler share_keys[] = {
	{ "host", key_share_host },
	{ "guest", key_share_guest },
	{ "tag", key_share_tag },
	{ "size", key_share_size },
	{ "isolation", key_share_isolation },
};

/* defaults of a share that come from its folder's name */
static int share_defaults(struct ld *ld, const struct ynode *host, struct cfg_share *sh)
{
	const char *base = strrchr(sh->host, '/') + 1;
	char b[80];

	if (!sh->tag) {
		if (!share_tag_valid(base))
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

/* one entry of shared_folders: (struct ld's list element) */
static int parse_share(struct ld *ld, const struct ynode *m, void *elem)
{
	struct cfg_share *sh = elem;
	struct vm_seen seen = { 0 };
	struct actx a = { .seen = &seen, .sh = sh };
	const struct ynode *host = NULL;
	int rc;

	rc = want_map(ld, m, "shared_folders entry");
	if (rc)
		return rc;
	sh->size_gib = 10;
	sh->isolation = true;
	for (size_t i = 0; i < m->n; i += 2)
		if (!strcmp(m->kids[i]->str, "host"))
			host = m->kids[i + 1];
	rc = apply_map(ld, m, "shared_folders", share_keys, UTIL_ARRAY_SIZE(share_keys), &a);
	if (rc)
		return rc;
	if (!host)
		return ld_err(ld, m, "shared_folders: missing 'host' (the folder to share)");
	/* virtiofsd gets it as "-o source=PATH": a ',' would add options (share_path_opt_safe) */
	if (strpbrk(sh->host, ",\\")) {
		char b[80];

		return ld_err(ld, host, "shared_folders.host: '%s' holds ',' or '\\', which would "
					"split virtiofsd's options; rename the folder",
			      esc(b, sizeof(b), host->str));
	}
	return share_defaults(ld, host, sh);
}

static int dup_share(struct ld *ld, const struct ynode *at, const void *earlier, const void *later)
{
	const struct cfg_share *a = earlier, *b = later;
	char buf[80];

	if (!strcmp(a->tag, b->tag))
		return ld_err(ld, at, "shared_folders: tag '%s' is used twice",
			      esc(buf, sizeof(buf), b->tag));
	if (!strcmp(a->guest, b->guest))
		return ld_err(ld, at, "shared_folders: guest path '%s' is used twice",
			      esc(buf, sizeof(buf), b->guest));
	return 0;
}

/* ---- ssh:, timeouts: ---- */

/* A login name for ssh's argv: never starts with '-', nothing a shell would mind. */
static bool user_valid(const char *s)
{
	size_t l = strlen(s);

	return l >= 1 && l <= 32 && ((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_') &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == l;
}

static int key_ssh_user(struct ld *ld, const struct ynode *v, struct actx *a)
{
	char b[80];
	int rc;

	rc = set_str(ld, v, "ssh.user", 32, &a->vm->ssh.user);
	if (!rc && !user_valid(a->vm->ssh.user))
		rc = ld_err(ld, v, "ssh.user: '%s' is not a valid user name ([a-z_][a-z0-9_-]*, at "
				   "most 32)", esc(b, sizeof(b), a->vm->ssh.user));
	return rc;
}

static int key_ssh_key(struct ld *ld, const struct ynode *v, struct actx *a)
{
	struct cfg_vm *vm = a->vm;
	int rc;

	if (v->type == YN_SCALAR && (!strcmp(v->str, "managed") || !strcmp(v->str, "generated"))) {
		vm->ssh.key = !strcmp(v->str, "managed") ? CFG_KEY_MANAGED : CFG_KEY_GENERATED;
		free(vm->ssh.key_path);
		vm->ssh.key_path = NULL;
		return 0;
	}
	rc = get_path(ld, v, "ssh.key", TRUST_FILE, &vm->ssh.key_path);
	if (!rc)
		vm->ssh.key = CFG_KEY_PATH;
	return rc;
}

static const struct key_handler ssh_keys[] = {
	{ "user", key_ssh_user },
	{ "key", key_ssh_key },
};

static int key_timeout(struct ld *ld, const struct ynode *v, struct actx *a)
{
	static const struct {
		const char *name;
		size_t off;
	} slot[] = {
		{ "boot", offsetof(struct cfg_vm, timeouts.boot) },
		{ "ssh", offsetof(struct cfg_vm, timeouts.ssh) },
		{ "cloud_init", offsetof(struct cfg_vm, timeouts.cloud_init) },
		{ "shutdown", offsetof(struct cfg_vm, timeouts.shutdown) },
	};
	char key[32];
	size_t i;

	for (i = 0; i < UTIL_ARRAY_SIZE(slot) && strcmp(slot[i].name, a->key->str); i++)
		;
	if (i == UTIL_ARRAY_SIZE(slot))	/* timeout_keys[] names only these */
		return -EINVAL;
	snprintf(key, sizeof(key), "timeouts.%s", slot[i].name);
	return get_uint(ld, v, key, 1, 86400, "seconds",
			(unsigned *)((char *)a->vm + slot[i].off));
}

static const struct key_handler timeout_keys[] = {
	{ "boot", key_timeout },
	{ "ssh", key_timeout },
	{ "cloud_init", key_timeout },
	{ "shutdown", key_timeout },
};

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

/* ---- the VM's own keys ---- */

/* a sub-mapping through its table; "key:" with everything commented out is fine */
static int apply_sub(struct ld *ld, const struct ynode *v, const char *where,
		     const struct key_handler *t, size_t n, struct actx *a)
{
	int rc;

	if (is_null(v))
		return 0;
	rc = want_map(ld, v, where);
	return rc ? rc : apply_map(ld, v, where, t, n, a);
}

static int key_name(struct ld *ld, const struct ynode *v, struct actx *a)
{
	char b[80];

	if (a->seen->top_defaults)
		return ld_err(ld, a->key, "'name' cannot be a default beside 'vms:'; give each entry "
					  "of vms: its own name");
	if (v->type != YN_SCALAR || is_null(v))
		return ld_err(ld, v, "name: expected a string, got %s", node_kind(v));
	if (!util_name_valid(v->str))
		return ld_err(ld, v, "name: '%s' is not a valid VM name: 1..31 of a-z, 0-9 and '-', "
				     "starting with a letter or digit", esc(b, sizeof(b), v->str));
	memcpy(a->vm->name, v->str, strlen(v->str) + 1);
	a->seen->name = v;
	return 0;
}

static int key_image(struct ld *ld, const struct ynode *v, struct actx *a)
{
	a->seen->image = true;
	return get_image(ld, v, &a->vm->image);
}

static int key_image_sha256(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_sha256(ld, v, &a->vm->image_sha256);
}

static int key_cpus(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_uint(ld, v, "cpus", 1, 256, NULL, &a->vm->cpus);
}

static int key_memory(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_uint(ld, v, "memory", 128, 1048576, "MiB", &a->vm->memory_mib);
}

static int key_disk(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_uint(ld, v, "disk", 0, 65536, "GiB (0 = the image's size)", &a->vm->disk_gib);
}

static int key_accel(struct ld *ld, const struct ynode *v, struct actx *a)
{
	int rc, iv;

	rc = get_enum(ld, v, "accel", accel_names, UTIL_ARRAY_SIZE(accel_names), &iv);
	if (!rc)
		a->vm->accel = (enum cfg_accel)iv;
	return rc;
}

static int key_firmware(struct ld *ld, const struct ynode *v, struct actx *a)
{
	int rc, iv;

	rc = get_enum(ld, v, "firmware", fw_names, UTIL_ARRAY_SIZE(fw_names), &iv);
	/* no OVMF boot yet (a per-VM variable store, pflash units): say so
	 * here rather than boot with BIOS behind the user's back */
	if (!rc && iv == CFG_FW_UEFI)
		return ld_err(ld, v, "firmware: uefi is not supported in this version of hutch; "
				     "use bios (the default)");
	if (!rc)
		a->vm->firmware = (enum cfg_firmware)iv;
	return rc;
}

static int key_kernel(struct ld *ld, const struct ynode *v, struct actx *a)
{
	if (!is_null(v))
		a->seen->kernel = v;
	return apply_sub(ld, v, "kernel", kernel_keys, UTIL_ARRAY_SIZE(kernel_keys), a);
}

static int key_network(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return apply_sub(ld, v, "network", net_keys, UTIL_ARRAY_SIZE(net_keys), a);
}

static int key_shared_folders(struct ld *ld, const struct ynode *v, struct actx *a)
{
	void *arr = NULL;
	size_t n = 0;
	int rc;

	rc = parse_list(ld, v, "shared_folders", sizeof(struct cfg_share), parse_share, dup_share,
			share_free, &arr, &n);
	if (rc)
		return rc;
	shares_free(a->vm);
	a->vm->shares = arr;
	a->vm->n_shares = n;
	return 0;
}

static int key_ssh(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return apply_sub(ld, v, "ssh", ssh_keys, UTIL_ARRAY_SIZE(ssh_keys), a);
}

static int key_autoconnect(struct ld *ld, const struct ynode *v, struct actx *a)
{
	int rc, iv;

	rc = get_enum(ld, v, "autoconnect", auto_names, UTIL_ARRAY_SIZE(auto_names), &iv);
	if (!rc)
		a->vm->autoconnect = (enum cfg_autoconnect)iv;
	return rc;
}

static int key_cloud_init_wait(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return get_bool(ld, v, "cloud_init_wait", &a->vm->cloud_init_wait);
}

static int key_timeouts(struct ld *ld, const struct ynode *v, struct actx *a)
{
	return apply_sub(ld, v, "timeouts", timeout_keys, UTIL_ARRAY_SIZE(timeout_keys), a);
}

/* The keys of a VM, SPEC.md's order (also the "did you mean" candidates); `vms` last. */
static const struct key_handler vm_keys[] = {
	{ "name", key_name },
	{ "image", key_image },
	{ "image_sha256", key_image_sha256 },
	{ "cpus", key_cpus },
	{ "memory", key_memory },
	{ "disk", key_disk },
	{ "accel", key_accel },
	{ "firmware", key_firmware },
	{ "kernel", key_kernel },
	{ "network", key_network },
	{ "shared_folders", key_shared_folders },
	{ "ssh", key_ssh },
	{ "autoconnect", key_autoconnect },
	{ "cloud_init_wait", key_cloud_init_wait },
	{ "timeouts", key_timeouts },
	{ "vms", NULL },	/* the caller's, and only at the top */
};

/*
 * apply_vm() - set @vm's fields from the keys of mapping @m
 * @top_defaults: @m is the top level beside `vms:` (so `vms` is skipped and
 *                `name` refused: names belong to each entry)
 * @in_list:      @m is an entry of `vms:` (so `vms` is unknown there)
 */
static int apply_vm(struct ld *ld, const struct ynode *m, struct cfg_vm *vm, struct vm_seen *seen,
		    bool top_defaults, bool in_list)
{
	struct actx a = { .vm = vm, .seen = seen };

	seen->top_defaults = top_defaults;
	return apply_map(ld, m, NULL, vm_keys, UTIL_ARRAY_SIZE(vm_keys) - (in_list ? 1 : 0), &a);
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
		const char *dir, bool fs, struct cfg **out, struct cfg_error *e)
{
	struct ld ld = { .mpath = mpath, .dir = dir, .buf = buf, .len = len, .e = e, .fs = fs };
	const struct cfg_user *user;
	struct ynode *root = NULL;
	struct cfg *c = NULL;
	int rc;

	e->msg[0] = '\0';
	if (len > CFG_MAX_BYTES) {
		file_err(e, mpath, "the file is larger than %d bytes; that is not a hutch.yaml",
			 CFG_MAX_BYTES);
		return -EINVAL;
	}
	/* the user's config is checked on every real load, used or not: strictly */
	if (fs && (rc = cfg_user_get(&user, e)))
		return rc;
	rc = tree_parse(&ld, false, &root);
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
	rc = load(buf, len, path_for_messages, apath, adir, false, out, e);
out:
	free(adir);
	free(apath);
	return rc;
}

/*
 * read_own() - read hutch.yaml: not through a symlink, not a FIFO or a
 * device, and the user's own file (see cfg_load()).  A refusal is -EPERM.
 */
static int read_own(const char *path, char **buf, size_t *len, struct cfg_error *e)
{
	char why[TRUST_WHY_MAX];
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP) {
		file_err(e, path, "is a symbolic link; hutch.yaml must be a regular file of the "
			 "project, not a link to one");
		return -EPERM;
	}
	if (fd < 0) {
		rc = -errno;
		file_err(e, path, "cannot read: %s", strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		file_err(e, path, "cannot read: %s", strerror(-rc));
		goto out;
	}
	rc = trust_file_ok(&st, "it", why, sizeof(why));
	if (rc) {
		file_err(e, path, "%s", why);
		goto out;
	}
	rc = trust_read_fd(fd, CFG_MAX_BYTES, buf, len);
	if (rc == -EFBIG) {
		file_err(e, path, "the file is larger than %d bytes; that is not a hutch.yaml",
			 CFG_MAX_BYTES);
		rc = -EINVAL;
	} else if (rc) {
		file_err(e, path, "cannot read: %s", strerror(-rc));
	}
out:
	close(fd);
	return rc;
}

int cfg_load(const char *path, struct cfg **out, struct cfg_error *e)
{
	char *apath = NULL, *adir = NULL, *buf = NULL, *slash;
	size_t len;
	int rc;

	rc = read_own(path, &buf, &len, e);
	if (rc)
		return rc;
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
	rc = load(buf, len, path, apath, adir, true, out, e);
out:
	free(buf);
	free(apath);
	free(adir);
	return rc;
}

/* ---- the user's own config ------------------------------------------------ */

static int user_allow_one(struct ld *ld, const struct ynode *n, void *elem)
{
	return resolve_path(ld, n, "allow_paths", NULL, (char **)elem);
}

static void user_allow_free(void *elem)
{
	free(*(char **)elem);
}

void cfg_user_free(struct cfg_user *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n_allow; i++)
		free(u->allow[i]);
	free(u->allow);
	free(u->path);
	free(u);
}

/* add @p (malloc'd, taken over) to @u's allowed directories */
static int user_allow_add(struct cfg_user *u, char *p)
{
	char **a = realloc(u->allow, (u->n_allow + 1) * sizeof(*a));

	if (!a) {
		free(p);
		return -ENOMEM;
	}
	u->allow = a;
	u->allow[u->n_allow++] = p;
	return 0;
}

static int user_apply(struct ld *ld, const struct ynode *root, struct cfg_user *u)
{
	void *arr = NULL;
	size_t n = 0;
	int rc;

	if (!root)
		return 0;
	if (root->type != YN_MAP)
		return ld_err(ld, root, "expected a mapping of settings (allow_paths: ...), got %s",
			      node_kind(root));
	for (size_t i = 0; i < root->n; i += 2) {
		const struct ynode *k = root->kids[i], *v = root->kids[i + 1];
		static const char *const keys[] = { "allow_paths" };

		if (strcmp(k->str, keys[0]))
			return unknown_key(ld, k, NULL, keys, UTIL_ARRAY_SIZE(keys));
		rc = parse_list(ld, v, "allow_paths", sizeof(char *), user_allow_one, NULL,
				user_allow_free, &arr, &n);
		if (rc)
			return rc;
		for (size_t j = 0; j < n && !rc; j++)
			rc = user_allow_add(u, ((char **)arr)[j]);
		free(arr);
		if (rc)
			return rc;
	}
	return 0;
}

int cfg_user_load_buffer(const char *buf, size_t len, const char *path_for_messages,
			 struct cfg_user **out, struct cfg_error *e)
{
	struct ld ld = { .mpath = path_for_messages, .dir = "/", .buf = buf, .len = len, .e = e };
	struct ynode *root = NULL;
	struct cfg_user *u;
	int rc;

	e->msg[0] = '\0';
	if (len > CFG_MAX_BYTES) {
		file_err(e, path_for_messages, "the file is larger than %d bytes", CFG_MAX_BYTES);
		return -EINVAL;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	rc = tree_parse(&ld, true, &root);
	if (!rc)
		rc = user_apply(&ld, root, u);
	if (rc == -ENOMEM && !e->msg[0])
		file_err(e, path_for_messages, "out of memory");
	ynode_free(root);
	if (rc) {
		cfg_user_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

/* $XDG_CONFIG_HOME/hutch/config.yaml, else ~/.config/hutch/config.yaml */
static int user_path(char *buf, size_t n)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	struct passwd *pw;

	if (x && x[0] == '/')
		return util_snprintf(buf, n, "%s/hutch/config.yaml", x);
	if (!home || home[0] != '/') {
		pw = getpwuid(geteuid());
		if (!pw || !pw->pw_dir)
			return -ENOENT;
		home = pw->pw_dir;
	}
	return util_snprintf(buf, n, "%s/.config/hutch/config.yaml", home);
}

/*
 * user_read() - the user config's bytes; *@buf NULL when there is no file.
 * It may be a symlink (dotfiles), but what it leads to must be the user's
 * alone, in folders only the user (or root) can write.
 */
static int user_read(const char *path, char **buf, size_t *len, struct cfg_error *e)
{
	char real[PATH_MAX], dir[PATH_MAX], why[TRUST_WHY_MAX], *slash;
	struct stat st;
	int fd, rc;

	*buf = NULL;
	if (!realpath(path, real))
		return errno == ENOENT ? 0 : -errno;
	memcpy(dir, real, sizeof(dir));
	slash = strrchr(dir, '/');
	*(slash == dir ? slash + 1 : slash) = '\0';
	rc = trust_dir(dir, 0, why, sizeof(why));
	if (rc == -EPERM)
		file_err(e, path, "%s: not only your word, so not read", why);
	if (rc)
		return rc;
	fd = open(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fstat(fd, &st) < 0 ? -errno : 0;
	if (!rc && !S_ISREG(st.st_mode)) {
		file_err(e, path, "is not a regular file");
		rc = -EPERM;
	} else if (!rc && st.st_uid != 0 && !trust_uid_ok(st.st_uid)) {
		file_err(e, path, "is owned by uid %u, not by you: not your word, so not read",
			 (unsigned)st.st_uid);
		rc = -EPERM;
	} else if (!rc && (st.st_mode & 022)) {
		file_err(e, path, "is writable by group or others (mode %03o): not only your word, "
			 "so not read (chmod go-w it)", (unsigned)(st.st_mode & 0777));
		rc = -EPERM;
	}
	if (!rc)
		rc = trust_read_fd(fd, CFG_MAX_BYTES, buf, len);
	close(fd);
	return rc;
}

/* $HUTCH_ALLOW_PATHS: absolute directories separated by ':' */
static int user_env(struct cfg_user *u, struct cfg_error *e)
{
	const char *v = getenv("HUTCH_ALLOW_PATHS");
	char one[PATH_MAX], *p;
	size_t l;
	int rc;

	while (v && *v) {
		l = strcspn(v, ":");
		if (l && (l >= sizeof(one) || v[0] != '/')) {
			file_err(e, "HUTCH_ALLOW_PATHS", "'%.*s' is not an absolute path",
				 (int)(l < 200 ? l : 200), v);
			return -EINVAL;
		}
		if (l) {
			memcpy(one, v, l);
			one[l] = '\0';
			rc = path_abs("/", one, &p);
			if (!rc)
				rc = user_allow_add(u, p);
			if (rc)
				return rc;
		}
		v += l + (v[l] == ':');
	}
	return 0;
}

static int user_load(struct cfg_user **out, struct cfg_error *e)
{
	char path[PATH_MAX], *buf = NULL;
	struct cfg_user *u = NULL;
	size_t len = 0;
	bool had;
	int rc;

	rc = user_path(path, sizeof(path));
	if (rc == 0)
		rc = user_read(path, &buf, &len, e);
	if (rc) {
		if (!e->msg[0])
			file_err(e, path, "cannot read: %s", strerror(-rc));
		return rc;
	}
	rc = cfg_user_load_buffer(buf ? buf : "", buf ? len : 0, path, &u, e);
	had = buf != NULL;
	free(buf);
	if (rc)
		return rc;
	if (had && !(u->path = strdup(path))) {
		cfg_user_free(u);
		return -ENOMEM;
	}
	rc = user_env(u, e);
	if (rc) {
		cfg_user_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

int cfg_user_get(const struct cfg_user **out, struct cfg_error *e)
{
	/* one per process: a verb and the checks it makes see one answer */
	static struct cfg_user *user;
	static struct cfg_error err;
	static int rc = 1;

	if (rc == 1) {
		err.msg[0] = '\0';
		rc = user_load(&user, &err);
	}
	if (rc) {
		*e = err;
		return rc;
	}
	*out = user;
	return 0;
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

static json_t *vm_json(const struct cfg_vm *vm)
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
			 " s:{s:I, s:I, s:I, s:I}}",
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
			 "shutdown", (json_int_t)vm->timeouts.shutdown);
}

int cfg_to_json(const struct cfg *c, json_t **out)
{
	json_t *vms = json_array(), *v, *o;
	size_t i;

	if (!vms)
		return -ENOMEM;
	for (i = 0; i < c->n_vms; i++) {
		v = vm_json(&c->vms[i]);
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
