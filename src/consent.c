// SPDX-License-Identifier: MIT
/*
 * consent: the project's host-side code, hashed and allowed (see src/consent.h).
 */
#include "src/consent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "images/img.h"
#include "src/log.h"
#include "src/trust.h"
#include "src/util.h"

#define CONSENT_RECORD_MAX (4u << 20)

/* What runs on the host, always: hooks and the two Ansible files. */
static const char *const consent_top[] = { "hooks", "playbook.yml", "ansible.cfg" };

/*
 * What Ansible loads beside a playbook (its "playbook dir" content, plugin
 * folders that are added without any config) and what plays commonly
 * include; only when there is a playbook.yml.  files/ is left out: it is
 * copied to the guest, never evaluated.
 */
static const char *const consent_ansible[] = {
	"roles", "library", "module_utils", "collections", "group_vars", "host_vars",
	"tasks", "handlers", "vars", "defaults", "templates", "action_plugins",
	"become_plugins", "cache_plugins", "callback_plugins", "cliconf_plugins",
	"connection_plugins", "doc_fragments", "filter_plugins", "httpapi_plugins",
	"inventory_plugins", "lookup_plugins", "netconf_plugins", "shell_plugins",
	"strategy_plugins", "terminal_plugins", "test_plugins", "vars_plugins",
};

/* struct scan - one consent_scan() walk */
struct scan {
	struct consent_set *set;
	unsigned long long bytes;
	char *why;
	size_t whyn;
};

static void __attribute__((format(printf, 3, 4)))
consent_why(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(why, n, fmt, ap);
	va_end(ap);
	if (r >= 0 && (size_t)r >= n && n > 4)
		memcpy(why + n - 4, "...", 4);
}

static bool consent_has_playbook(const char *project_dir)
{
	char p[PATH_MAX];
	struct stat st;

	return util_path_join(p, sizeof(p), project_dir, "playbook.yml") == 0 &&
	       lstat(p, &st) == 0;
}

bool consent_covers(const char *project_dir, const char *rel)
{
	size_t l = strcspn(rel, "/");

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(consent_top); i++)
		if (strlen(consent_top[i]) == l && !strncmp(rel, consent_top[i], l))
			return true;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(consent_ansible); i++)
		if (strlen(consent_ansible[i]) == l && !strncmp(rel, consent_ansible[i], l))
			return consent_has_playbook(project_dir);
	return false;
}

void consent_set_free(struct consent_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->items[i].rel);
	free(s->items);
	memset(s, 0, sizeof(*s));
}

static int consent_add(struct scan *sc, const char *rel, int fd, const struct stat *st)
{
	struct consent_set *s = sc->set;
	struct consent_item *it;
	int rc;

	if (s->n >= CONSENT_MAX_FILES || sc->bytes + (unsigned long long)st->st_size >
						 CONSENT_MAX_BYTES) {
		consent_why(sc->why, sc->whyn, "more than %d files or %llu MiB of code to review "
			    "(at %s)", CONSENT_MAX_FILES, CONSENT_MAX_BYTES >> 20, rel);
		return -EPERM;
	}
	it = realloc(s->items, (s->n + 1) * sizeof(*it));
	if (!it)
		return -ENOMEM;
	s->items = it;
	it = &s->items[s->n];
	memset(it, 0, sizeof(*it));
	it->rel = strdup(rel);
	if (!it->rel)
		return -ENOMEM;
	rc = img_hash_fd(fd, "sha256", it->sha256, sizeof(it->sha256));
	if (rc) {
		free(it->rel);
		return rc;
	}
	sc->bytes += (unsigned long long)st->st_size;
	s->n++;
	return 0;
}

static int consent_walk(struct scan *sc, int dfd, const char *rel, unsigned depth);

/* one entry @name of directory @dfd, known as @rel below the project */
static int consent_entry(struct scan *sc, int dfd, const char *name, const char *rel,
			 unsigned depth)
{
	struct open_how how = { .flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
	struct stat st;
	long fd;
	int rc;

	fd = syscall(SYS_openat2, dfd, name, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			return depth ? rc : 0;	/* a top-level name that is not there */
		if (rc == -ELOOP || rc == -EXDEV) {
			consent_why(sc->why, sc->whyn, "%s is a symbolic link: refused (no link "
				    "is followed in a project's code)", rel);
			return -EPERM;
		}
		if (rc == -ENXIO || rc == -EACCES) {
			consent_why(sc->why, sc->whyn, "%s cannot be read to review it (%s)", rel,
				    strerror(-rc));
			return -EPERM;
		}
		return rc;
	}
	if (fstat((int)fd, &st) < 0) {
		rc = -errno;
	} else if (S_ISDIR(st.st_mode)) {
		rc = consent_walk(sc, (int)fd, rel, depth + 1);
	} else {
		rc = trust_file_ok(&st, rel, sc->why, sc->whyn);
		if (!rc)
			rc = consent_add(sc, rel, (int)fd, &st);
	}
	close((int)fd);
	return rc;
}

static int consent_cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* every entry of directory @dfd (owned: closed by the caller), in name order */
static int consent_walk(struct scan *sc, int dfd, const char *rel, unsigned depth)
{
	char child[PATH_MAX], **names = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (depth > CONSENT_MAX_DEPTH) {
		consent_why(sc->why, sc->whyn, "%s is nested too deeply to review", rel);
		return -EPERM;
	}
	fd = dup(dfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		char **nn;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n >= CONSENT_MAX_FILES) {
			consent_why(sc->why, sc->whyn, "%s holds too many files to review", rel);
			rc = -EPERM;
			goto out;
		}
		nn = realloc(names, (n + 1) * sizeof(*names));
		if (!nn || !(nn[n] = strdup(de->d_name))) {
			names = nn ? nn : names;
			rc = -ENOMEM;
			goto out;
		}
		names = nn;
		n++;
	}
	qsort(names, n, sizeof(*names), consent_cmp_name);
	for (size_t i = 0; i < n && !rc; i++) {
		rc = util_snprintf(child, sizeof(child), "%s/%s", rel, names[i]);
		if (!rc)
			rc = consent_entry(sc, dfd, names[i], child, depth);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int consent_scan(const char *project_dir, struct consent_set *out, char *why, size_t whyn)
{
	struct consent_set s = { 0 };
	struct scan sc = { .set = &s, .why = why, .whyn = whyn };
	bool playbook;
	int dfd, rc = 0;

	dfd = open(project_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	playbook = consent_has_playbook(project_dir);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(consent_top) && !rc; i++)
		rc = consent_entry(&sc, dfd, consent_top[i], consent_top[i], 0);
	for (size_t i = 0; playbook && i < UTIL_ARRAY_SIZE(consent_ansible) && !rc; i++)
		rc = consent_entry(&sc, dfd, consent_ansible[i], consent_ansible[i], 0);
	close(dfd);
	if (rc) {
		consent_set_free(&s);
		return rc;
	}
	*out = s;
	return 0;
}

/* <data>/consent/<sha256 of the project path>.json; the dir is made private */
static int consent_path(const char *project_dir, char *buf, size_t n, bool create)
{
	char data[PATH_MAX], dir[PATH_MAX], hex[65], why[TRUST_WHY_MAX];
	int rc;

	rc = util_data_dir(data, sizeof(data));
	if (!rc)
		rc = util_path_join(dir, sizeof(dir), data, "consent");
	if (!rc)
		rc = img_hash_buf(project_dir, strlen(project_dir), hex);
	if (rc)
		return rc;
	/* "hutch" and "consent" are ours; with !create, only look */
	rc = trust_dir(dir, create ? 2 : 0, why, sizeof(why));
	if (rc == -EPERM)
		log_err("%s", why);
	if (rc)
		return rc;
	return util_snprintf(buf, n, "%s/%s.json", dir, hex);
}

/* the recorded {"path": "sha256"} object, or NULL when there is none */
static int consent_load(const char *project_dir, json_t **files)
{
	char path[PATH_MAX], *buf = NULL;
	json_error_t je;
	struct stat st;
	size_t len;
	json_t *root, *f;
	int fd, rc;

	*files = NULL;
	rc = consent_path(project_dir, path, sizeof(path), false);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* a record someone else could have written is no consent of the user's */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !trust_uid_ok(st.st_uid) ||
	    (st.st_mode & 022)) {
		close(fd);
		log_warn("%s is not a private file of yours: ignored", path);
		return 0;
	}
	rc = trust_read_fd(fd, CONSENT_RECORD_MAX, &buf, &len);
	close(fd);
	if (rc)
		return rc;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	f = json_object_get(root, "files");
	if (!json_is_object(f) || !json_is_string(json_object_get(root, "project")) ||
	    strcmp(json_string_value(json_object_get(root, "project")), project_dir)) {
		log_warn("%s is not a consent record for %s: ignored", path, project_dir);
		json_decref(root);
		return 0;
	}
	*files = json_incref(f);
	json_decref(root);
	return 0;
}

int consent_compare(const char *project_dir, struct consent_set *s)
{
	json_t *files;
	int rc;

	rc = consent_load(project_dir, &files);
	if (rc)
		return rc;
	s->allowed = true;
	for (size_t i = 0; i < s->n; i++) {
		json_t *h = files ? json_object_get(files, s->items[i].rel) : NULL;

		if (!json_is_string(h))
			s->items[i].state = CONSENT_NEW;
		else if (strcmp(json_string_value(h), s->items[i].sha256))
			s->items[i].state = CONSENT_CHANGED;
		else
			s->items[i].state = CONSENT_SAME;
		if (s->items[i].state != CONSENT_SAME)
			s->allowed = false;
	}
	json_decref(files);
	return 0;
}

int consent_record(const char *project_dir, const struct consent_set *s)
{
	char path[PATH_MAX], *text;
	json_t *files = json_object(), *root;
	int rc;

	if (!files)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		if (json_object_set_new(files, s->items[i].rel, json_string(s->items[i].sha256))) {
			json_decref(files);
			return -ENOMEM;
		}
	root = json_pack("{s:s, s:I, s:o}", "project", project_dir, "allowed_at",
			 (json_int_t)time(NULL), "files", files);
	if (!root)
		return -ENOMEM;
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	if (!text)
		return -ENOMEM;
	rc = consent_path(project_dir, path, sizeof(path), true);
	if (!rc)
		rc = util_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return rc;
}

int consent_revoke(const char *project_dir)
{
	char path[PATH_MAX];
	int rc = consent_path(project_dir, path, sizeof(path), false);

	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

void consent_print(FILE *f, const struct consent_set *s)
{
	static const char *const names[] = { "allowed", "new", "changed" };

	for (size_t i = 0; i < s->n; i++)
		fprintf(f, "  %-8s %s\n", names[s->items[i].state], s->items[i].rel);
}

/* scan + compare, with the refusal's reason logged */
static int consent_get(const char *project_dir, struct consent_set *s)
{
	char why[TRUST_WHY_MAX] = "";
	int rc = consent_scan(project_dir, s, why, sizeof(why));

	if (rc == -EPERM)
		log_err("%s: %s", project_dir, why);
	else if (rc)
		log_errno(rc, "reviewing the code in %s", project_dir);
	if (!rc) {
		rc = consent_compare(project_dir, s);
		if (rc)
			consent_set_free(s);
	}
	return rc;
}

static void consent_explain(const char *project_dir, const struct consent_set *s)
{
	log_err("%s holds code that would run on this host as you, and you have not allowed it "
		"(or it changed since):", project_dir);
	consent_print(stderr, s);
	log_err("read it, then run 'hutch allow' in %s (or pass --yes)", project_dir);
}

/* y/yes on the terminal */
static bool consent_ask(void)
{
	char line[16];

	fprintf(stderr, "Allow this code to run on this host? [y/N] ");
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\n")] = '\0';
	return !strcmp(line, "y") || !strcmp(line, "Y") || !strcmp(line, "yes");
}

int consent_require(const char *project_dir, bool yes, const char *verb)
{
	struct consent_set s;
	int rc;

	rc = consent_get(project_dir, &s);
	if (rc)
		return rc == -EPERM ? -EPERM : rc;
	if (s.allowed) {
		consent_set_free(&s);
		return 0;
	}
	if (!yes && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
		fprintf(stderr, "hutch %s: %s holds code that runs on this host as you:\n", verb,
			project_dir);
		consent_print(stderr, &s);
		yes = consent_ask();
		if (!yes)
			log_err("not allowed: nothing of %s runs ('hutch allow' once you have read it)",
				project_dir);
	} else if (!yes) {
		consent_explain(project_dir, &s);
	}
	rc = yes ? consent_record(project_dir, &s) : -EPERM;
	if (yes && rc)
		log_errno(rc, "recording consent for %s", project_dir);
	else if (yes)
		log_info("allowed the code in %s (%zu file%s)", project_dir, s.n, s.n == 1 ? "" : "s");
	consent_set_free(&s);
	return rc;
}

int consent_verify(const char *project_dir)
{
	struct consent_set s;
	int rc;

	rc = consent_get(project_dir, &s);
	if (rc)
		return rc;
	if (!s.allowed) {
		consent_explain(project_dir, &s);
		rc = -EPERM;
	}
	consent_set_free(&s);
	return rc;
}
