// SPDX-License-Identifier: MIT
/*
 * SSH keys, host-key pinning and the one ssh command line (see src/ssh.h).
 */
#include "src/ssh.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/ci.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/util.h"

int ssh_managed_key_path(char *buf, size_t n)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (!home || home[0] != '/') {
		pw = getpwuid(getuid());
		if (!pw || !pw->pw_dir)
			return -ENOENT;
		home = pw->pw_dir;
	}
	return util_snprintf(buf, n, "%s/.ssh/hutch", home);
}

/* ssh-keygen writing a new pair to @tmp and @tmp.pub */
static int ssh_keygen_run(const char *tmp, const char *comment)
{
	const char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
			       "-f", tmp, NULL };
	char *out = NULL, esc[512];
	int rc, status;

	rc = proc_run(argv, NULL, &out, 4096, &status);
	if (rc == 0 && proc_exit_code(status) != 0) {
		log_err("ssh-keygen failed for %s: %s", tmp,
			log_escape(esc, sizeof(esc), out ? out : "", out ? strlen(out) : 0));
		rc = -EIO;
	}
	free(out);
	return rc;
}

/*
 * Many `hutch up` may start at once in a fresh HOME (test rigs): the pair
 * is made under a lock on its directory, under temporary names, and renamed
 * into place public half first, so whoever sees the private key also sees
 * the public one, and an existing key is never overwritten.
 */
int ssh_keygen(const char *path, const char *comment, bool *created)
{
	char dir[PATH_MAX], tmp[PATH_MAX], tmppub[PATH_MAX], pub[PATH_MAX], *slash;
	struct stat sb;
	int lock, rc;

	if (created)
		*created = false;
	if (lstat(path, &sb) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	if ((rc = util_snprintf(dir, sizeof(dir), "%s", path)) ||
	    (rc = util_snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid())) ||
	    (rc = util_snprintf(tmppub, sizeof(tmppub), "%s.pub", tmp)) ||
	    (rc = util_snprintf(pub, sizeof(pub), "%s.pub", path)))
		return rc;
	slash = strrchr(dir, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	if (slash != dir && (rc = util_mkdir_p(dir, 0700)) < 0)
		return rc;
	lock = util_flock(slash == dir ? "/" : dir, true, NULL);
	if (lock < 0)
		return lock;
	if (lstat(path, &sb) == 0) {
		rc = 0;		/* someone else made it meanwhile */
		goto out;
	}
	unlink(tmp);
	unlink(tmppub);
	rc = ssh_keygen_run(tmp, comment);
	if (rc == 0 && (rename(tmppub, pub) < 0 || rename(tmp, path) < 0))
		rc = -errno;
	if (rc) {
		unlink(tmp);
		unlink(tmppub);
		goto out;
	}
	if (created)
		*created = true;
out:
	close(lock);
	return rc;
}

/* First line of @path into @line, which must be a public key line. */
static int ssh_read_line(const char *path, char *line, size_t n)
{
	char *buf = NULL, *nl;
	int rc;

	rc = util_read_file(path, SSH_PUB_MAX, &buf, NULL);
	if (rc < 0)
		return rc;
	nl = strpbrk(buf, "\r\n");
	if (nl)
		*nl = '\0';
	if (!ci_key_valid(buf)) {
		rc = -EINVAL;
		goto out;
	}
	rc = util_snprintf(line, n, "%s", buf);
out:
	free(buf);
	return rc;
}

int ssh_pubkey_read(const char *priv, char *line, size_t n)
{
	char pub[PATH_MAX];
	int rc = util_snprintf(pub, sizeof(pub), "%s.pub", priv);

	return rc < 0 ? rc : ssh_read_line(pub, line, n);
}

int ssh_host_key(const char *vm_dir, const char *name, char **priv, char *pub, size_t n)
{
	char dir[PATH_MAX], key[PATH_MAX], kh[PATH_MAX], line[SSH_PUB_MAX], comment[64];
	char known[SSH_PUB_MAX + 64], *text = NULL;
	int rc;

	if ((rc = util_path_join(dir, sizeof(dir), vm_dir, "ssh")) < 0 ||
	    (rc = util_path_join(key, sizeof(key), dir, "host_ed25519")) < 0 ||
	    (rc = util_path_join(kh, sizeof(kh), dir, "known_hosts")) < 0 ||
	    (rc = util_snprintf(comment, sizeof(comment), "hutch-%s", name)) < 0)
		return rc;
	rc = util_mkdir_p(dir, 0700);
	if (rc < 0)
		return rc;
	rc = ssh_keygen(key, comment, NULL);
	if (rc < 0)
		return rc;
	rc = ssh_pubkey_read(key, line, sizeof(line));
	if (rc < 0)
		return rc;
	/* The pin: only this key, under the alias that every hutch
	 * connection to this VM names (HostKeyAlias). */
	{
		size_t t = strcspn(line, " ");
		size_t b = strcspn(line + t + 1, " ");

		rc = util_snprintf(known, sizeof(known), "%s %.*s %.*s\n", comment, (int)t, line,
				   (int)b, line + t + 1);
		if (rc < 0)
			return rc;
	}
	rc = util_write_atomic(kh, known, strlen(known), 0600);
	if (rc < 0)
		return rc;
	if (priv) {
		rc = util_read_file(key, 64 * 1024, &text, NULL);
		if (rc < 0)
			return rc;
	}
	rc = util_snprintf(pub, n, "%s", line);
	if (rc < 0) {
		free(text);
		return rc;
	}
	if (priv)
		*priv = text;
	return 0;
}

int ssh_client_key(const struct cfg_vm *vm, const char *vm_dir, char *buf, size_t n)
{
	char path[PATH_MAX], line[SSH_PUB_MAX], comment[64];
	bool created;
	int rc;

	switch (vm->ssh.key) {
	case CFG_KEY_MANAGED:
		rc = ssh_managed_key_path(path, sizeof(path));
		if (rc < 0)
			return rc;
		rc = ssh_keygen(path, "hutch", &created);
		if (rc < 0)
			return rc;
		if (created)
			log_info("created the managed SSH key %s", path);
		break;
	case CFG_KEY_GENERATED:
		if ((rc = util_snprintf(path, sizeof(path), "%s/ssh/id_ed25519", vm_dir)) < 0 ||
		    (rc = util_snprintf(comment, sizeof(comment), "hutch-%s", vm->name)) < 0)
			return rc;
		rc = ssh_keygen(path, comment, NULL);
		if (rc < 0)
			return rc;
		break;
	case CFG_KEY_PATH:
		if (!vm->ssh.key_path)
			return -EINVAL;
		rc = util_snprintf(path, sizeof(path), "%s", vm->ssh.key_path);
		if (rc < 0)
			return rc;
		if (access(path, R_OK) < 0) {
			rc = -errno;
			log_errno(rc, "ssh.key %s", path);
			return rc;
		}
		break;
	default:
		return -EINVAL;
	}
	rc = ssh_pubkey_read(path, line, sizeof(line));
	if (rc < 0) {
		log_errno(rc, "reading the public key %s.pub", path);
		return rc;
	}
	return util_snprintf(buf, n, "%s", path);
}

/* An address or host name that cannot be taken for an ssh option. */
static bool ssh_host_valid(const char *h)
{
	size_t i;

	if (!h[0] || h[0] == '-' || strlen(h) >= SSH_HOST_MAX)
		return false;
	for (i = 0; h[i]; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
		      (h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == '-' || h[i] == ':'))
			return false;
	return true;
}

int ssh_target(json_t *state, char *host, size_t n, int *port)
{
	json_t *ssh, *net, *h, *p;
	const char *hs;
	json_int_t pv = 22;

	if (!json_is_object(state))
		return -ENOENT;
	ssh = json_object_get(state, "ssh");
	net = json_object_get(state, "net");
	if (json_is_object(ssh) && json_is_string(json_object_get(ssh, "host"))) {
		h = json_object_get(ssh, "host");
		p = json_object_get(ssh, "port");
		if (!json_is_integer(p))
			return -EINVAL;
		pv = json_integer_value(p);
	} else if (json_is_object(net) && json_is_string(json_object_get(net, "ip"))) {
		h = json_object_get(net, "ip");
	} else {
		return -ENOENT;
	}
	hs = json_string_value(h);
	if (!ssh_host_valid(hs) || pv < 1 || pv > 65535)
		return -EINVAL;
	if (util_snprintf(host, n, "%s", hs) < 0)
		return -ENAMETOOLONG;
	*port = (int)pv;
	return 0;
}

int ssh_user(const struct cfg_vm *vm, const char *project_dir, const char *vm_dir, char *buf,
	     size_t n)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;
	int rc;

	if (vm->ssh.user)
		return util_snprintf(buf, n, "%s", vm->ssh.user);
	if (vm_dir && util_snprintf(path, sizeof(path), "%s/ssh/user", vm_dir) == 0 &&
	    util_read_file(path, 64, &text, &len) == 0) {
		text[strcspn(text, "\n")] = '\0';
		if (ci_username_valid(text)) {
			rc = util_snprintf(buf, n, "%s", text);
			free(text);
			return rc;
		}
		free(text);
		text = NULL;
	}
	if (project_dir && util_path_join(path, sizeof(path), project_dir, "cloud-init.yml") == 0 &&
	    util_read_file(path, CI_USER_MAX, &text, &len) == 0) {
		struct ci_info *info = calloc(1, sizeof(*info));

		rc = info ? ci_parse(text, len, info) : -ENOMEM;
		free(text);
		if (rc == 0 && info->user[0]) {
			rc = util_snprintf(buf, n, "%s", info->user);
			free(info);
			return rc;
		}
		free(info);
	}
	ci_default_user(buf, n);
	return 0;
}

int ssh_conn_init(struct ssh_conn *c, const struct cfg_vm *vm, const char *project_dir,
		  const char *vm_dir, json_t *state)
{
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = util_snprintf(c->name, sizeof(c->name), "%s", vm->name)) < 0 ||
	    (rc = util_snprintf(c->alias, sizeof(c->alias), "hutch-%s", vm->name)) < 0 ||
	    (rc = util_snprintf(c->known_hosts, sizeof(c->known_hosts), "%s/ssh/known_hosts",
				vm_dir)) < 0)
		return rc;
	if (access(c->known_hosts, R_OK) < 0) {
		rc = -errno;
		log_errno(rc, "no pinned host key for %s (%s); was it created by this hutch?",
			  vm->name, c->known_hosts);
		return rc;
	}
	rc = ssh_client_key(vm, vm_dir, c->key, sizeof(c->key));
	if (rc < 0)
		return rc;
	rc = ssh_user(vm, project_dir, vm_dir, c->user, sizeof(c->user));
	if (rc < 0)
		return rc;
	return ssh_target(state, c->host, sizeof(c->host), &c->port);
}

/*
 * A path as an ssh_config value: '%' is a token there (doubled), and
 * whitespace separates values (so the path goes in double quotes).
 */
static int ssh_cfg_path(char *buf, size_t n, const char *prefix, const char *path)
{
	size_t o, i;

	if (strpbrk(path, "\"\r\n"))
		return -EINVAL;
	if (util_snprintf(buf, n, "%s\"", prefix) < 0)
		return -ENAMETOOLONG;
	o = strlen(buf);
	for (i = 0; path[i]; i++) {
		if (o + 3 >= n)
			return -ENAMETOOLONG;
		if (path[i] == '%')
			buf[o++] = '%';
		buf[o++] = path[i];
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return 0;
}

/* The options every connection shares, into c->s.o[]; returns how many. */
static int ssh_opts(struct ssh_conn *c)
{
	int rc;

	if ((rc = ssh_cfg_path(c->s.o[0], sizeof(c->s.o[0]), "IdentityFile=", c->key)) < 0 ||
	    (rc = ssh_cfg_path(c->s.o[1], sizeof(c->s.o[1]), "UserKnownHostsFile=",
			       c->known_hosts)) < 0 ||
	    (rc = util_snprintf(c->s.o[2], sizeof(c->s.o[2]), "HostKeyAlias=%s", c->alias)) < 0)
		return rc;
	return 3;
}

/* Fixed options beside c->s.o[0..2]: never learn, never ask, never relax. */
static const char *const ssh_fixed[] = {
	"IdentitiesOnly=yes", "StrictHostKeyChecking=yes", "GlobalKnownHostsFile=/dev/null",
	"UpdateHostKeys=no", "CheckHostIP=no", "PasswordAuthentication=no",
	"KbdInteractiveAuthentication=no", "LogLevel=ERROR",
};

int ssh_argv(struct ssh_conn *c, bool batch, const char *const *cmd, const char **argv, size_t max)
{
	size_t n = 0, i;
	int rc, k;

#define PUSH(s)                          \
	do {                             \
		if (n + 1 >= max)        \
			return -E2BIG;   \
		argv[n++] = (s);         \
	} while (0)

	rc = ssh_opts(c);
	if (rc < 0)
		return rc;
	if (util_snprintf(c->s.port, sizeof(c->s.port), "%d", c->port) < 0)
		return -EINVAL;
	PUSH("ssh");
	PUSH("-F");
	PUSH("/dev/null");
	for (k = 0; k < rc; k++) {
		PUSH("-o");
		PUSH(c->s.o[k]);
	}
	for (i = 0; i < UTIL_ARRAY_SIZE(ssh_fixed); i++) {
		PUSH("-o");
		PUSH(ssh_fixed[i]);
	}
	if (batch) {
		PUSH("-o");
		PUSH("BatchMode=yes");
		PUSH("-o");
		PUSH("ConnectTimeout=10");
		PUSH("-T");
	}
	PUSH("-p");
	PUSH(c->s.port);
	PUSH("-l");
	PUSH(c->user);
	PUSH(c->host);
	if (cmd && cmd[0]) {
		/* "--": words of the command are never taken for ssh options */
		PUSH("--");
		for (i = 0; cmd[i]; i++)
			PUSH(cmd[i]);
	}
	argv[n] = NULL;
#undef PUSH
	return 0;
}

/*
 * Append @s to @buf as one shlex (and sh) word: bare when it is made of
 * safe bytes, else in single quotes.  Bare matters: ansible strips one
 * pair of quotes around a whole variable value, so a value that starts and
 * ends with a quoted word would be mangled ("-F /dev/null -o ..." as one).
 */
static int ssh_shquote(char *buf, size_t n, size_t *o, const char *s)
{
	size_t i;
	bool bare = s[0] && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789_./=:@%+,-") == strlen(s);

#define PUT(ch)                                  \
	do {                                     \
		if (*o + 2 >= n)                 \
			return -ENAMETOOLONG;    \
		buf[(*o)++] = (ch);              \
	} while (0)
	if (*o)
		PUT(' ');
	if (bare) {
		for (i = 0; s[i]; i++)
			PUT(s[i]);
		buf[*o] = '\0';
		return 0;
	}
	PUT('\'');
	for (i = 0; s[i]; i++) {
		if (s[i] == '\'') {
			PUT('\'');
			PUT('\\');
			PUT('\'');
			PUT('\'');
		} else {
			PUT(s[i]);
		}
	}
	PUT('\'');
	buf[*o] = '\0';
#undef PUT
	return 0;
}

int ssh_common_args(struct ssh_conn *c, char *buf, size_t n)
{
	size_t o = 0, i;
	int rc, k;

	rc = ssh_opts(c);
	if (rc < 0)
		return rc;
	buf[0] = '\0';
	if (ssh_shquote(buf, n, &o, "-F") < 0 || ssh_shquote(buf, n, &o, "/dev/null") < 0)
		return -ENAMETOOLONG;
	for (k = 1; k < rc; k++)	/* the key goes through ansible_ssh_private_key_file */
		if (ssh_shquote(buf, n, &o, "-o") < 0 || ssh_shquote(buf, n, &o, c->s.o[k]) < 0)
			return -ENAMETOOLONG;
	for (i = 0; i < UTIL_ARRAY_SIZE(ssh_fixed); i++)
		if (ssh_shquote(buf, n, &o, "-o") < 0 || ssh_shquote(buf, n, &o, ssh_fixed[i]) < 0)
			return -ENAMETOOLONG;
	return 0;
}

int ssh_config_print(FILE *f, const struct ssh_conn *c)
{
	char key[PATH_MAX + 8], kh[PATH_MAX + 8];
	size_t i;

	if (ssh_cfg_path(key, sizeof(key), "", c->key) < 0 ||
	    ssh_cfg_path(kh, sizeof(kh), "", c->known_hosts) < 0)
		return -EINVAL;
	fprintf(f, "Host %s\n", c->alias);
	fprintf(f, "  HostName %s\n  Port %d\n  User %s\n", c->host, c->port, c->user);
	fprintf(f, "  IdentityFile %s\n  UserKnownHostsFile %s\n  HostKeyAlias %s\n", key, kh,
		c->alias);
	for (i = 0; i < UTIL_ARRAY_SIZE(ssh_fixed); i++) {
		const char *eq = strchr(ssh_fixed[i], '=');

		fprintf(f, "  %.*s %s\n", (int)(eq - ssh_fixed[i]), ssh_fixed[i], eq + 1);
	}
	return fflush(f) == 0 ? 0 : -errno;
}
