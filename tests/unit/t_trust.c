// SPDX-License-Identifier: MIT
/*
 * Unit tests for trust (what a project may name, hutch's own dirs) and
 * consent (the project's host-side code, hashed and allowed), on a scratch
 * tree: symlinks in and out, FIFOs, an allowed place outside, a share of
 * the project or of hooks/, a world-writable parent, a changed hook.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share/share.h"
#include "src/consent.h"
#include "src/log.h"
#include "src/trust.h"
#include "src/util.h"
#include "tests/unit/tap.h"

static char tmp[] = "/tmp/t_trust.XXXXXX", proj[PATH_MAX], out[PATH_MAX], why[TRUST_WHY_MAX];

static const char *at(const char *rel)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, rel);
	return buf[i];
}

static void link_to(const char *target, const char *rel)
{
	if (symlink(target, at(rel)) < 0)
		printf("# symlink %s: %s\n", rel, strerror(errno));
}

static void put(const char *rel, const char *text)
{
	util_write_atomic(at(rel), text, strlen(text), 0644);
}

static int check(const char *rel, enum trust_kind kind, unsigned flags)
{
	why[0] = '\0';
	return trust_check(proj, at(rel), kind, flags, why, sizeof(why));
}

static void test_check(void)
{
	struct cfg_share sh = { 0 };
	char *buf = NULL;
	size_t len;
	int fd;

	is_int(check("proj/k", TRUST_FILE, 0), 0, "a file in the project");
	is_int(check("proj/missing", TRUST_FILE, 0), 0, "a missing file is fine at load time");
	is_int(check("proj/missing", TRUST_FILE, TRUST_MUST_EXIST), -ENOENT, "unless it must exist");
	is_int(check("out/secret", TRUST_FILE, 0), -EPERM, "a file outside the project");
	ok(strstr(why, "outside the project directory") != NULL, "...says so: %s", why);
	is_int(check("proj/link", TRUST_FILE, 0), -EPERM, "a symlink in the project (to outside)");
	ok(strstr(why, "symbolic link") != NULL, "...says so: %s", why);
	is_int(check("proj/inlink", TRUST_FILE, 0), -EPERM, "a symlink that stays inside");
	is_int(check("proj/dirlink/secret", TRUST_FILE, 0), -EPERM, "a path through a symlinked dir");
	is_int(check("proj/dirlink/new/x", TRUST_DIR, 0), -EPERM,
	       "a missing path below a symlinked dir");
	is_int(check("proj/fifo", TRUST_FILE, 0), -EPERM, "a FIFO is not a regular file");
	is_int(check("proj/sub", TRUST_FILE, 0), -EPERM, "a directory is not a file");
	is_int(check("proj/sub", TRUST_DIR, 0), 0, "a folder in the project");
	is_int(check("proj", TRUST_DIR, 0), -EPERM, "the project itself cannot be shared");
	is_int(check("", TRUST_DIR, 0), -EPERM, "nor a folder above it");
	is_int(check("proj/hooks", TRUST_DIR, 0), -EPERM, "nor hooks/");
	is_int(check("proj/hooks/lib", TRUST_DIR, 0), -EPERM, "nor a folder inside hooks/");
	is_int(check("proj/roles", TRUST_DIR, 0), -EPERM, "nor roles/ beside playbook.yml");
	is_int(check("proj/sub", TRUST_DIR, TRUST_LEXICAL), 0, "lexical: inside");
	is_int(check("allowed/img", TRUST_FILE, TRUST_LEXICAL), -EPERM,
	       "lexical: the user's allowed places do not count");
	is_int(check("allowed/img", TRUST_FILE, 0), 0, "a file in a place the user allows");
	is_int(check("allowed/img-link", TRUST_FILE, 0), 0,
	       "...where a symlink staying inside is followed");
	is_int(check("allowed/out-link", TRUST_FILE, 0), -EPERM, "...but not one leading out");
	is_int(check("allowed2", TRUST_FILE, 0), -EPERM, "a sibling of an allowed place is not");

	fd = -1;
	is_int(trust_open(proj, at("proj/fifo"), O_RDONLY, &fd, NULL, why, sizeof(why)), -EPERM,
	       "trust_open of a FIFO returns at once, refused");
	is_int(trust_open(proj, at("proj/k"), O_RDONLY, &fd, NULL, why, sizeof(why)), 0,
	       "trust_open of a project file");
	if (fd >= 0)
		close(fd);
	is_int(trust_read(proj, at("proj/k"), 100, &buf, &len, why, sizeof(why)), 0, "trust_read");
	ok(buf && len == 6 && !strcmp(buf, "kernel"), "...its bytes");
	free(buf);
	is_int(trust_read(proj, at("proj/k"), 3, &buf, &len, why, sizeof(why)), -EFBIG,
	       "trust_read refuses a file over the cap");

	sh.host = (char *)at("proj/dirlink");
	is_int(share_check_paths(&sh, proj), -EPERM, "share_check_paths: a symlinked folder");
	sh.host = (char *)at("proj/ws");
	is_int(share_check_paths(&sh, proj), 0, "share_check_paths: a folder to be made");
	sh.host = (char *)at("out");
	is_int(share_check_paths(&sh, proj), -EPERM, "share_check_paths: outside");
}

static void test_dirs(void)
{
	struct stat st;

	is_int(trust_dir(at("cache/hutch/images"), 2, why, sizeof(why)), 0, "trust_dir creates");
	ok(stat(at("cache/hutch/images"), &st) == 0 && (st.st_mode & 0777) == 0700 &&
	   stat(at("cache/hutch"), &st) == 0 && (st.st_mode & 0777) == 0700, "...0700");
	chmod(at("cache/hutch"), 0755);
	is_int(trust_dir(at("cache/hutch/images"), 2, why, sizeof(why)), 0, "an open dir of ours");
	ok(stat(at("cache/hutch"), &st) == 0 && (st.st_mode & 0777) == 0700, "...is tightened to 0700");
	mkdir(at("open"), 0777);
	chmod(at("open"), 0777);
	is_int(trust_dir(at("open/hutch"), 1, why, sizeof(why)), -EPERM,
	       "below a world-writable dir: refused");
	ok(strstr(why, "writable by others") != NULL, "...says so: %s", why);
	chmod(at("open"), 01777);
	is_int(trust_dir(at("open/hutch"), 1, why, sizeof(why)), 0,
	       "a root-owned sticky dir (like /tmp) is fine%s", geteuid() ? " (not root: skipped)" : "");
	link_to(at("out"), "cache/lnk");
	is_int(trust_dir(at("cache/lnk/x"), 2, why, sizeof(why)), -EPERM, "a symlink among our own dirs");
	is_int(trust_dir(at("nothere/x"), 0, why, sizeof(why)), -ENOENT, "check only: missing is -ENOENT");
}

static void test_consent(void)
{
	struct consent_set s;

	is_int(consent_verify(proj), -EPERM, "hooks and playbook not allowed yet");
	is_int(consent_scan(proj, &s, why, sizeof(why)), 0, "consent_scan");
	ok(s.n == 3 && !strcmp(s.items[0].rel, "hooks/pre-up") && !strcmp(s.items[1].rel, "playbook.yml") &&
	   !strcmp(s.items[2].rel, "roles/r/tasks/main.yml"),
	   "hooks, the playbook and roles/, sorted (%zu)", s.n);
	is_int(consent_compare(proj, &s), 0, "consent_compare");
	ok(!s.allowed && s.items[0].state == CONSENT_NEW, "all new");
	is_int(consent_record(proj, &s), 0, "consent_record");
	consent_set_free(&s);
	is_int(consent_verify(proj), 0, "allowed now");
	is_int(consent_require(proj, false, "test"), 0, "consent_require: nothing to ask");
	put("proj/roles/r/tasks/main.yml", "- debug: msg=changed\n");
	is_int(consent_verify(proj), -EPERM, "a changed role file is not allowed");
	is_int(consent_require(proj, true, "test"), 0, "--yes allows and records it");
	is_int(consent_verify(proj), 0, "...so it is allowed now");
	unlink(at("proj/roles/r/tasks/main.yml"));
	is_int(consent_verify(proj), 0, "a removed file needs no consent");
	link_to("/etc/passwd", "proj/hooks/post-up");
	is_int(consent_verify(proj), -EPERM, "a symlink among the hooks is refused");
	is_int(consent_scan(proj, &s, why, sizeof(why)), -EPERM, "consent_scan refuses it");
	ok(strstr(why, "hooks/post-up is a symbolic link") != NULL, "...and says which: %s", why);
	unlink(at("proj/hooks/post-up"));
	is_int(consent_revoke(proj), 0, "consent_revoke");
	is_int(consent_verify(proj), -EPERM, "not allowed after revoke");
}

int main(void)
{
	char env[PATH_MAX * 2];

	log_init("t_trust", LOG_LVL_ERR);
	if (!mkdtemp(tmp))
		return 1;
	chmod(tmp, 0755);
	snprintf(proj, sizeof(proj), "%s/proj", tmp);
	snprintf(out, sizeof(out), "%s/out", tmp);
	/* the user's word: HOME, an empty user config, one allowed place */
	setenv("HOME", at("home"), 1);
	setenv("XDG_CONFIG_HOME", at("config"), 1);
	setenv("XDG_DATA_HOME", at("data"), 1);
	snprintf(env, sizeof(env), "%s/allowed", tmp);
	setenv("HUTCH_ALLOW_PATHS", env, 1);
	util_mkdir_p(at("proj/sub"), 0755);
	util_mkdir_p(at("proj/hooks"), 0755);
	util_mkdir_p(at("proj/roles/r/tasks"), 0755);
	util_mkdir_p(at("out"), 0755);
	util_mkdir_p(at("allowed"), 0755);
	util_mkdir_p(at("allowed2"), 0755);
	put("proj/k", "kernel");
	put("proj/hooks/pre-up", "#!/bin/sh\nexit 0\n");
	put("proj/playbook.yml", "- hosts: all\n");
	put("proj/roles/r/tasks/main.yml", "- debug: msg=hi\n");
	put("out/secret", "secret");
	put("allowed/img", "img");
	link_to(at("out/secret"), "proj/link");
	link_to("k", "proj/inlink");
	link_to(out, "proj/dirlink");
	link_to("img", "allowed/img-link");
	link_to(at("out/secret"), "allowed/out-link");
	mkfifo(at("proj/fifo"), 0644);

	test_check();
	test_dirs();
	test_consent();
	util_rm_rf(tmp);
	return tap_done();
}
