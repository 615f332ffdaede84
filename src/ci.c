// SPDX-License-Identifier: MIT
/*
 * cloud-init user-data: parse the user's cloud-init.yml for the few facts
 * hutch needs, and render the document the guest gets (see src/ci.h).
 */
#include "src/ci.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "src/log.h"
#include "src/util.h"

#define CI_DEPTH_MAX   64
#define CI_EVENTS_MAX  200000
#define CI_OUT_MAX     (4 * 1024 * 1024)
#define CI_KEYNAME_MAX 32

bool ci_username_valid(const char *s)
{
	size_t i;

	if (!s || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (i = 1; s[i]; i++) {
		if (i >= CI_USERNAME_MAX)
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '-'))
			return false;
	}
	return true;
}

void ci_default_user(char *buf, size_t n)
{
	const char *u = getenv("USER");

	/* root as the SSH user of a throwaway VM would defeat sudo's audit
	 * trail and most playbooks' assumptions; use a plain user then. */
	if (!u || !ci_username_valid(u) || !strcmp(u, "root") ||
	    util_snprintf(buf, n, "%s", u) < 0)
		(void)util_snprintf(buf, n, "hutch");
}

/* Split an OpenSSH public key line into type and base64; 0 when it is one. */
static int ci_key_fields(const char *s, size_t *tlen, const char **b64, size_t *blen,
			 const char **comment)
{
	static const char *const types[] = {
		"ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256",
		"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
	};
	size_t i, t = 0, b = 0;
	bool known = false;

	while (s[t] && s[t] != ' ' && s[t] != '\t')
		t++;
	for (i = 0; i < UTIL_ARRAY_SIZE(types); i++)
		if (strlen(types[i]) == t && !strncmp(s, types[i], t))
			known = true;
	if (!known)
		return -EINVAL;
	s += t;
	while (*s == ' ' || *s == '\t')
		s++;
	while (s[b] && (isalnum((unsigned char)s[b]) || s[b] == '+' || s[b] == '/' || s[b] == '='))
		b++;
	if (b < 16 || (s[b] && !strchr(" \t\r\n", s[b])))
		return -EINVAL;
	*tlen = t;
	*b64 = s;
	*blen = b;
	s += b;
	while (*s == ' ' || *s == '\t')
		s++;
	*comment = s;
	return 0;
}

bool ci_key_valid(const char *s)
{
	size_t t, b;
	const char *b64, *c;

	return !strpbrk(s, "\r\n") && ci_key_fields(s, &t, &b64, &b, &c) == 0;
}

bool ci_key_same(const char *a, const char *b)
{
	size_t at, ab, bt, bb;
	const char *a64, *b64, *ac, *bc;

	if (ci_key_fields(a, &at, &a64, &ab, &ac) < 0 || ci_key_fields(b, &bt, &b64, &bb, &bc) < 0)
		return false;
	return at == bt && !strncmp(a, b, at) && ab == bb && !strncmp(a64, b64, ab);
}

/* One scalar value: is it a public key line, and one with the comment "hutch"? */
static void ci_scan_key(const char *s, size_t len, struct ci_info *out)
{
	size_t tlen, blen, clen;
	const char *b64, *comment;

	if (len >= CI_KEYLINE_MAX || memchr(s, '\n', len) || strlen(s) != len)
		return;
	if (ci_key_fields(s, &tlen, &b64, &blen, &comment) < 0)
		return;
	out->has_keys = true;
	clen = strlen(comment);
	while (clen && isspace((unsigned char)comment[clen - 1]))
		clen--;
	if (clen != 5 || strncmp(comment, "hutch", 5) || out->n_hutch_keys >= CI_HUTCH_KEYS_MAX)
		return;
	/* fits: tlen + 1 + blen < len < CI_KEYLINE_MAX */
	memcpy(out->hutch_keys[out->n_hutch_keys], s, tlen);
	out->hutch_keys[out->n_hutch_keys][tlen] = ' ';
	memcpy(out->hutch_keys[out->n_hutch_keys] + tlen + 1, b64, blen);
	out->hutch_keys[out->n_hutch_keys][tlen + 1 + blen] = '\0';
	out->n_hutch_keys++;
}

enum ci_role { CI_ROLE_NONE, CI_ROLE_ROOT, CI_ROLE_USERS, CI_ROLE_USER };

struct ci_frame {
	bool is_map;
	bool want_key;
	enum ci_role role;
	char key[CI_KEYNAME_MAX + 1];	/* "" when too long: never one we look for */
};

static void ci_take_user(struct ci_info *out, const char *s)
{
	if (out->user[0] || !strcmp(s, "default") || !ci_username_valid(s))
		return;
	(void)util_snprintf(out->user, sizeof(out->user), "%s", s);
}

/*
 * A node (scalar, alias or collection start) has begun under @p (NULL: the
 * document's root).  Returns the role of a collection that starts here.
 */
static enum ci_role ci_node(struct ci_frame *p, size_t depth, const yaml_event_t *ev,
			    struct ci_info *out)
{
	const char *s = NULL;
	size_t len = 0;
	bool is_seq = ev->type == YAML_SEQUENCE_START_EVENT;
	bool is_map = ev->type == YAML_MAPPING_START_EVENT;

	if (ev->type == YAML_SCALAR_EVENT) {
		s = (const char *)ev->data.scalar.value;
		len = ev->data.scalar.length;
	}
	if (!p)
		return is_map ? CI_ROLE_ROOT : CI_ROLE_NONE;
	if (p->is_map && p->want_key) {
		p->key[0] = '\0';
		if (s && len <= CI_KEYNAME_MAX && strlen(s) == len)
			memcpy(p->key, s, len + 1);
		return CI_ROLE_NONE;
	}
	if (p->is_map) {		/* a value, under p->key */
		if (!strcmp(p->key, "ssh_authorized_keys"))
			out->has_keys = true;
		if (p->role == CI_ROLE_ROOT && depth == 1) {
			if (!strcmp(p->key, "mounts"))
				out->has_mounts = true;
			if (!strcmp(p->key, "users") && is_seq)
				return CI_ROLE_USERS;
		}
		if (p->role == CI_ROLE_USER && !strcmp(p->key, "name") && s && strlen(s) == len)
			ci_take_user(out, s);
		if (s)
			ci_scan_key(s, len, out);
		return CI_ROLE_NONE;
	}
	/* an item of a sequence */
	if (p->role == CI_ROLE_USERS) {
		if (s && strlen(s) == len)
			ci_take_user(out, s);
		if (is_map)
			return CI_ROLE_USER;
	}
	if (s)
		ci_scan_key(s, len, out);
	return CI_ROLE_NONE;
}

/* A node under @p is complete: a map alternates key and value. */
static void ci_node_done(struct ci_frame *p)
{
	if (p && p->is_map)
		p->want_key = !p->want_key;
}

static bool ci_is_cloud_config(const char *buf, size_t len)
{
	static const char hdr[] = "#cloud-config";
	size_t i = sizeof(hdr) - 1;

	if (len < i || memcmp(buf, hdr, i))
		return false;
	for (; i < len && buf[i] != '\n'; i++)
		if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r')
			return false;	/* "#cloud-config-archive" and the like */
	return true;
}

int ci_parse(const char *buf, size_t len, struct ci_info *out)
{
	struct ci_frame *st = NULL;
	size_t depth = 0, events = 0;
	yaml_parser_t parser;
	yaml_event_t ev;
	struct ci_info info;
	int rc = 0;
	bool done = false;

	if (len > CI_USER_MAX)
		return -EFBIG;
	memset(&info, 0, sizeof(info));
	info.has_placeholder = memmem(buf, len, CI_PLACEHOLDER, sizeof(CI_PLACEHOLDER) - 1) != NULL;
	if (info.has_placeholder)
		info.has_keys = true;
	if (!ci_is_cloud_config(buf, len)) {
		info.kind = CI_KIND_OTHER;
		*out = info;
		return 0;
	}
	info.kind = CI_KIND_CLOUD_CONFIG;
	st = calloc(CI_DEPTH_MAX, sizeof(*st));
	if (!st)
		return -ENOMEM;
	if (!yaml_parser_initialize(&parser)) {
		free(st);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		struct ci_frame *p = depth ? &st[depth - 1] : NULL;

		if (!yaml_parser_parse(&parser, &ev)) {
			log_err("cloud-init.yml:%zu:%zu: %s", parser.problem_mark.line + 1,
				parser.problem_mark.column + 1,
				parser.problem ? parser.problem : "YAML error");
			rc = -EINVAL;
			break;
		}
		if (++events > CI_EVENTS_MAX) {
			log_err("cloud-init.yml: too many YAML nodes");
			rc = -EINVAL;
			yaml_event_delete(&ev);
			break;
		}
		switch (ev.type) {
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
			ci_node(p, depth, &ev, &info);
			ci_node_done(p);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			enum ci_role role = ci_node(p, depth, &ev, &info);

			if (depth >= CI_DEPTH_MAX) {
				log_err("cloud-init.yml: nested deeper than %d levels", CI_DEPTH_MAX);
				rc = -EINVAL;
				done = true;
				break;
			}
			memset(&st[depth], 0, sizeof(st[depth]));
			st[depth].is_map = ev.type == YAML_MAPPING_START_EVENT;
			st[depth].want_key = true;
			st[depth].role = role;
			depth++;
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth)
				depth--;
			ci_node_done(depth ? &st[depth - 1] : NULL);
			break;
		case YAML_DOCUMENT_END_EVENT:	/* only the first document counts */
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_NO_EVENT:
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_START_EVENT:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	free(st);
	if (rc == 0)
		*out = info;
	return rc;
}

/* --- rendering ---------------------------------------------------------- */

struct ci_buf {
	char *p;
	size_t len, cap;
	int err;
};

static void cb_add(struct ci_buf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (n > CI_OUT_MAX - b->len) {
		b->err = -E2BIG;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void cb_str(struct ci_buf *b, const char *s)
{
	cb_add(b, s, strlen(s));
}

/* A YAML double-quoted scalar (JSON-compatible escapes): any string is safe in it. */
static void cb_quoted(struct ci_buf *b, const char *s)
{
	char esc[8];

	cb_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			cb_add(b, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			cb_add(b, esc, 4);
		} else {
			cb_add(b, s, 1);
		}
	}
	cb_add(b, "\"", 1);
}

/* Copy the user's text with every placeholder replaced by @key. */
static void cb_user_text(struct ci_buf *b, const char *s, size_t n, const char *key)
{
	const size_t pl = sizeof(CI_PLACEHOLDER) - 1;
	const char *end = s + n, *hit;

	while (s < end && (hit = memmem(s, (size_t)(end - s), CI_PLACEHOLDER, pl))) {
		cb_add(b, s, (size_t)(hit - s));
		cb_str(b, key);
		s = hit + pl;
	}
	cb_add(b, s, (size_t)(end - s));
	/* the line break before a boundary belongs to the boundary */
	if (!b->err && b->len && b->p[b->len - 1] != '\n')
		cb_add(b, "\n", 1);
}

static void cb_host_keys(struct ci_buf *b, const char *priv, const char *pub)
{
	const char *l = priv, *nl;

	/* Only our host key may exist: delete the image's keys, and ask for
	 * ed25519 alone, which cloud-init then does not generate because ours
	 * is already written ("[]" would be the same but fails its schema). */
	cb_str(b, "ssh_deletekeys: true\nssh_genkeytypes: [ed25519]\nssh_keys:\n  ed25519_private: |\n");
	while (*l) {
		nl = strchr(l, '\n');
		if (!nl)
			nl = l + strlen(l);
		if (nl > l) {
			cb_str(b, "    ");
			cb_add(b, l, (size_t)(nl - l));
			cb_add(b, "\n", 1);
		}
		l = *nl ? nl + 1 : nl;
	}
	cb_str(b, "  ed25519_public: ");
	cb_quoted(b, pub);
	cb_str(b, "\n");
}

static void cb_mounts(struct ci_buf *b, const struct ci_mount *m, size_t n)
{
	size_t i;

	if (!n)
		return;
	/* fstab: TAG GUEST virtiofs defaults,nofail 0 0 (nofail: a missing
	 * share must not drop the guest into emergency mode) */
	cb_str(b, "mounts:\n");
	for (i = 0; i < n; i++) {
		cb_str(b, "  - [");
		cb_quoted(b, m[i].tag);
		cb_str(b, ", ");
		cb_quoted(b, m[i].guest);
		cb_str(b, ", \"virtiofs\", \"defaults,nofail\", \"0\", \"0\"]\n");
	}
}

/* The MIME type cloud-init expects for a user-data part, from its first line. */
static const char *ci_part_type(const char *s, size_t n)
{
	static const struct {
		const char *prefix, *type;
	} t[] = {
		{ "#cloud-config-archive", "text/cloud-config-archive" },
		{ "#cloud-config", "text/cloud-config" },
		{ "#cloud-boothook", "text/cloud-boothook" },
		{ "#include", "text/x-include-url" },
		{ "#part-handler", "text/part-handler" },
		{ "#upstart-job", "text/upstart-job" },
		{ "## template: jinja", "text/jinja2" },
		{ "#!", "text/x-shellscript" },
	};
	size_t i;

	for (i = 0; i < UTIL_ARRAY_SIZE(t); i++)
		if (n >= strlen(t[i].prefix) && !memcmp(s, t[i].prefix, strlen(t[i].prefix)))
			return t[i].type;
	return NULL;
}

bool ci_header_known(const char *s, size_t n)
{
	static const char mime[] = "Content-Type:";

	return ci_part_type(s, n) ||
	       (n >= sizeof(mime) - 1 && !strncasecmp(s, mime, sizeof(mime) - 1));
}

static bool ci_line_ok(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

static void cb_part(struct ci_buf *b, const char *boundary, const char *type, const char *name)
{
	cb_str(b, "--");
	cb_str(b, boundary);
	cb_str(b, "\nContent-Type: ");
	cb_str(b, type);
	cb_str(b, "; charset=\"utf-8\"\nMIME-Version: 1.0\nContent-Disposition: attachment; filename=\"");
	cb_str(b, name);
	cb_str(b, "\"\n\n");
}

int ci_render(const struct ci_input *in, char **out, size_t *lenp)
{
	struct ci_buf b = { 0 };
	char boundary[64];
	size_t i;

	if (!ci_line_ok(in->pubkey) || !ci_line_ok(in->host_pub) || !in->host_priv)
		return -EINVAL;
	for (i = 0; i < in->n_mounts; i++)
		if (!in->mounts[i].tag || !in->mounts[i].guest)
			return -EINVAL;

	if (!in->user_file) {
		if (!ci_username_valid(in->user))
			return -EINVAL;
		cb_str(&b, "#cloud-config\n# written by hutch: no cloud-init.yml in the project\n");
		cb_str(&b, "users:\n  - name: ");
		cb_str(&b, in->user);
		cb_str(&b, "\n    shell: /bin/bash\n    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"
			   "    lock_passwd: true\n    ssh_authorized_keys:\n      - ");
		cb_quoted(&b, in->pubkey);
		cb_str(&b, "\nssh_pwauth: false\n");
		cb_host_keys(&b, in->host_priv, in->host_pub);
		cb_mounts(&b, in->mounts, in->n_mounts);
		goto done;
	}

	/* A boundary that cannot occur in the user's text. */
	for (i = 0;; i++) {
		uint64_t h = 1469598103934665603ULL;
		size_t k;

		for (k = 0; k < in->user_len; k++)
			h = (h ^ (unsigned char)in->user_file[k]) * 1099511628211ULL;
		h ^= i * 0x9e3779b97f4a7c15ULL;
		if (util_snprintf(boundary, sizeof(boundary), "==hutch-%016llx==",
				  (unsigned long long)h) < 0)
			return -EINVAL;
		if (!memmem(in->user_file, in->user_len, boundary, strlen(boundary)))
			break;
	}
	cb_str(&b, "Content-Type: multipart/mixed; boundary=\"");
	cb_str(&b, boundary);
	cb_str(&b, "\"\nMIME-Version: 1.0\n\n");

	{
		const char *type = ci_part_type(in->user_file, in->user_len);

		if (!type) {
			log_warn("cloud-init.yml starts with no known header (#cloud-config, #!, ...): "
				 "cloud-init will likely ignore it");
			type = "text/plain";
		}
		cb_part(&b, boundary, type, "cloud-init.yml");
		cb_user_text(&b, in->user_file, in->user_len, in->pubkey);
	}

	cb_part(&b, boundary, "text/cloud-config", "hutch.cfg");
	cb_str(&b, "#cloud-config\n# added by hutch: merged into cloud-init.yml without replacing it\n"
		   "merge_how:\n"
		   "  - name: list\n    settings: [append]\n"
		   "  - name: dict\n    settings: [no_replace, recurse_list]\n");
	cb_host_keys(&b, in->host_priv, in->host_pub);
	if (!(in->info && in->info->has_mounts))
		cb_mounts(&b, in->mounts, in->n_mounts);
	cb_str(&b, "--");
	cb_str(&b, boundary);
	cb_str(&b, "--\n");

done:
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*lenp = b.len;
	return 0;
}
