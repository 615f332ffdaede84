// SPDX-License-Identifier: MIT
/*
 * t_share: the mountinfo parser, tags, fstab lines, the project-path check,
 * and (as root, with virtiofsd and mkfs.ext4) the supervisor extension's
 * whole life: prepare (image mounted nosymfollow, virtiofsd listening,
 * QEMU's arguments, state "shares"), teardown (all gone), and gc after a
 * "crash" (prepare without teardown) from state.json alone.
 *
 * The core's sv_* functions (src/ext.h) are stood in for here: defining
 * all that share_sv.c uses keeps the linker from pulling in src/sv.o.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share/share.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/util.h"
#include "tests/unit/tap.h"

extern const struct sv_ext share_sv_ext;
extern const struct up_ext share_up_ext;

static char qemu_args[8192];
static int n_saves;

int sv_qemu_arg(struct sv_ctx *c, const char *arg)
{
	(void)c;
	strcat(qemu_args, arg);
	strcat(qemu_args, " ");
	return 0;
}

int sv_state_save(struct sv_ctx *c)
{
	(void)c;
	n_saves++;
	return 0;
}

/* what share_sv.c watches: virtiofsd pidfds and their callbacks */
static struct {
	int fd;
	void (*cb)(struct sv_ctx *c, int fd, void *arg);
	void *arg;
} watched[8];
static size_t n_watched;
static bool vm_running = true;

int sv_watch_fd(struct sv_ctx *c, int fd, void (*cb)(struct sv_ctx *c, int fd, void *arg),
		void *arg)
{
	(void)c;
	if (n_watched == 8)
		return -EMFILE;
	watched[n_watched].fd = fd;
	watched[n_watched].cb = cb;
	watched[n_watched++].arg = arg;
	return 0;
}

void sv_unwatch_fd(struct sv_ctx *c, int fd)
{
	(void)c;
	for (size_t i = 0; i < n_watched; i++)
		if (watched[i].fd == fd) {
			watched[i] = watched[--n_watched];
			return;
		}
}

bool sv_vm_running(struct sv_ctx *c)
{
	(void)c;
	return vm_running;
}

/* the vhost-user connection goes to QEMU by fd: number it as the core would */
int sv_qemu_fd(struct sv_ctx *c, int fd)
{
	static int next = 10;

	(void)c;
	return fd < 0 ? -EBADF : next++;
}

static void test_parser(void)
{
	struct share_mntent e;
	const char *l1 = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue";
	const char *l2 = "43 27 7:0 / /tmp/a\\040b rw,nosuid,nodev,relatime,nosymfollow - ext4 /dev/loop0 rw\n";
	const char *many =
		"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
		"garbage line\n"
		"50 1 7:3 / /w rw,nosuid - ext4 /dev/loop3 rw\n"
		"51 50 7:4 / /w rw,nosuid,nodev,nosymfollow shared:3 master:2 - ext4 /dev/loop4 rw\n";

	ok(share_mountinfo_parse_line(l1, strlen(l1), &e) == 0, "proc(5) example parses");
	is_int(e.mnt_id, 36, "mount id");
	is_int(e.parent_id, 35, "parent id");
	is_int(e.dev_major, 98, "major");
	is_int(e.dev_minor, 0, "minor");
	ok(strcmp(e.root, "/mnt1") == 0 && strcmp(e.mountpoint, "/mnt2") == 0, "root, mount point");
	ok(strcmp(e.fstype, "ext3") == 0 && strcmp(e.source, "/dev/root") == 0, "fstype, source");
	ok(strcmp(e.super_opts, "rw,errors=continue") == 0, "super options");
	ok(share_mountinfo_parse_line(l2, strlen(l2), &e) == 0, "line with newline and \\040");
	ok(strcmp(e.mountpoint, "/tmp/a b") == 0, "octal escape decoded");
	ok(share_mnt_has_opt(e.mnt_opts, "nosymfollow") && share_mnt_has_opt(e.mnt_opts, "nodev") &&
		   !share_mnt_has_opt(e.mnt_opts, "nosym") && !share_mnt_has_opt(e.mnt_opts, "ro"),
	   "options matched whole");

	ok(share_mountinfo_parse_line("36 35 98:0 /a /b rw", 19, &e) < 0, "no separator: refused");
	ok(share_mountinfo_parse_line("36 35 98:0 /a /b rw - ext4 x", 28, &e) < 0,
	   "missing super options: refused");
	ok(share_mountinfo_parse_line("36 35 98:0 /a /b rw - ext4 x rw extra", 37, &e) < 0,
	   "trailing field: refused");
	ok(share_mountinfo_parse_line("99999999999 35 98:0 /a /b rw - e x rw", 37, &e) < 0,
	   "overflowing number: refused");
	ok(share_mountinfo_parse_line("1 2 3:4 /a\\000 /b rw - e x rw", 29, &e) < 0,
	   "escaped NUL: refused");
	ok(share_mountinfo_parse_line("1 2 3:4 /a  /b rw - e x rw", 26, &e) < 0, "empty field: refused");
	ok(share_mountinfo_parse_line("", 0, &e) < 0, "empty line: refused");
	{
		char big[8000];

		memset(big, 'a', sizeof(big));
		memcpy(big, "1 2 3:4 /", 9);
		ok(share_mountinfo_parse_line(big, sizeof(big), &e) < 0, "over-long field: refused");
	}

	ok(share_mountinfo_find(many, strlen(many), "/w", &e) == 0, "find /w");
	is_int(e.mnt_id, 51, "the topmost mount on /w wins");
	ok(share_mountinfo_find(many, strlen(many), "/x", &e) == -ENOENT, "nothing on /x");
	ok(share_mountinfo_find(many, strlen(many), "/", &e) == 0 && e.mnt_id == 1, "root found");
}

static void test_tags_fstab(void)
{
	struct cfg_share sh[2] = {
		{ .host = "/p/workspace", .guest = "/workspace", .tag = "workspace", .size_gib = 1,
		  .isolation = true },
		{ .host = "/p/data", .guest = "/srv/data", .tag = "data-1", .isolation = false },
	};
	struct cfg_vm vm = { .shares = sh, .n_shares = 2 };
	char *out = NULL, img[PATH_MAX];

	ok(share_tag_valid("workspace") && share_tag_valid("a.b_c-D9"), "plain tags valid");
	ok(!share_tag_valid("") && !share_tag_valid("a,b") && !share_tag_valid("a b") &&
		   !share_tag_valid("a=b") && !share_tag_valid("0123456789012345678901234567890123456"),
	   "empty, comma, blank, '=', 37 bytes: invalid");
	ok(share_fstab_lines(&vm, &out) == 0, "fstab lines");
	ok(out && strcmp(out, "workspace /workspace virtiofs defaults,nofail 0 0\n"
			      "data-1 /srv/data virtiofs defaults,nofail 0 0\n") == 0,
	   "one line per share: TAG GUEST virtiofs defaults,nofail 0 0");
	free(out);
	sh[1].guest = "/srv/my data";
	ok(share_fstab_lines(&vm, &out) == -EINVAL, "a blank in the guest path is refused");
	ok(share_image_path(&sh[0], img, sizeof(img)) == 0 && strcmp(img, "/p/workspace.img") == 0,
	   "image is <folder>.img");

	/* issue 15.2: "-o source=./w,source=/etc" would serve /etc */
	ok(share_path_opt_safe("/p/work space") && share_path_opt_safe("/p/ünï"),
	   "blanks and UTF-8 may stand in virtiofsd's -o source=");
	ok(!share_path_opt_safe("/p/w,source=/etc") && !share_path_opt_safe("/p/w\\,x") &&
		   !share_path_opt_safe("/p/w\nx") && !share_path_opt_safe("/p/w\x7f"),
	   "',', '\\', newline, DEL refused");
}

static int rec_parse(const char *json, struct share_img_rec *r)
{
	return share_rec_parse(json, strlen(json), r);
}

/* issue 15.5: what says an image is one of ours */
static void test_provenance(void)
{
	uint8_t sb[1024] = { 0 }, uuid[16];
	struct share_img_rec r;
	const char *good = "{\"uuid\":\"00112233445566778899aabbccddeeff\",\"ino\":12,"
			   "\"size\":1073741824,\"used\":false,\"image\":\"/p/w.img\"}";

	ok(share_sb_uuid(sb, sizeof(sb), uuid) == -EINVAL, "no ext magic: not an image of ours");
	sb[0x38] = 0x53;
	sb[0x39] = 0xef;
	for (int i = 0; i < 16; i++)
		sb[0x68 + i] = (uint8_t)(0xa0 + i);
	ok(share_sb_uuid(sb, sizeof(sb), uuid) == 0 && uuid[0] == 0xa0 && uuid[15] == 0xaf,
	   "UUID read at 0x68 of the superblock");
	ok(share_sb_uuid(sb, 0x68 + 15, uuid) == -EINVAL, "a superblock cut short is refused");

	ok(share_rec_parse(good, strlen(good), &r) == 0 && r.ino == 12 && r.size == 1ull << 30 &&
		   !r.used && r.uuid[0] == 0x00 && r.uuid[15] == 0xff,
	   "a record parses");
	ok(rec_parse("{\"uuid\":\"00112233445566778899AABBCCDDEEFF\",\"ino\":1,\"size\":1,"
			   "\"used\":true}", &r) < 0,
	   "upper-case UUID refused");
	ok(rec_parse("{\"uuid\":\"0011\",\"ino\":1,\"size\":1,\"used\":true}", &r) < 0,
	   "short UUID refused");
	ok(rec_parse("{\"uuid\":\"00112233445566778899aabbccddeeff\",\"ino\":\"1\","
			   "\"size\":1,\"used\":true}", &r) < 0,
	   "a string inode refused");
	ok(rec_parse("{\"uuid\":\"00112233445566778899aabbccddeeff\",\"ino\":1,\"ino\":2,"
			   "\"size\":1,\"used\":true}", &r) < 0,
	   "duplicate keys refused");
	ok(rec_parse("[]", &r) < 0 && rec_parse("", &r) < 0, "not an object: refused");
}

static void test_paths(const char *tmp)
{
	char proj[PATH_MAX], inside[PATH_MAX];
	struct cfg_share s = { .isolation = true, .tag = "t" };

	util_snprintf(proj, sizeof(proj), "%s/proj", tmp);
	util_snprintf(inside, sizeof(inside), "%s/proj/ws", tmp);
	mkdir(proj, 0755);
	s.host = inside;
	ok(share_check_paths(&s, proj) == 0, "a folder inside the project is fine");
	s.host = proj;
	ok(share_check_paths(&s, proj) == -EPERM, "the project dir itself is refused");
	s.host = (char *)tmp;
	ok(share_check_paths(&s, proj) == -EPERM, "an ancestor of the project is refused");
	s.host = "/";
	ok(share_check_paths(&s, proj) == -EPERM, "/ is refused");
}

static bool pid_alive(pid_t pid)
{
	char p[64], *b = NULL, *rp;
	bool alive;

	snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	if (util_read_file(p, 4096, &b, NULL) < 0)
		return false;
	rp = strrchr(b, ')');
	alive = rp && rp[2] != 'Z' && rp[2] != 'X';
	free(b);
	return alive;
}

/* run the callbacks of watched fds that are readable (the supervisor's loop, once) */
static void run_watchers(struct sv_ctx *c)
{
	for (size_t i = 0; i < n_watched;) {
		struct pollfd p = { .fd = watched[i].fd, .events = POLLIN };
		size_t before = n_watched;

		if (poll(&p, 1, 0) == 1) {
			watched[i].cb(c, watched[i].fd, watched[i].arg);
			if (n_watched < before)
				continue;	/* it unwatched itself: slot i holds another */
		}
		i++;
	}
}

/* wait (up to 60 s: a loaded host is slow to reap) until a watched pidfd is readable */
static void wait_watched(size_t want_left, struct sv_ctx *c)
{
	for (int t = 0; t < 6000 && n_watched > want_left; t++) {
		run_watchers(c);
		usleep(10000);
	}
}

/* issue 14.6: a virtiofsd that dies while the VM runs marks its share broken */
static void test_sv_vfs_death(struct sv_ctx *c)
{
	void *priv = NULL;
	json_t *e0, *e1, *sum;
	pid_t p0, p1;

	ok(share_sv_ext.prepare(c, &priv) == 0, "prepare (third time)");
	is_int((int)n_watched, 2, "both virtiofsd are watched through pidfds");
	e0 = json_array_get(json_object_get(c->state, "shares"), 0);
	e1 = json_array_get(json_object_get(c->state, "shares"), 1);
	p0 = (pid_t)json_integer_value(json_object_get(e0, "virtiofsd_pid"));
	p1 = (pid_t)json_integer_value(json_object_get(e1, "virtiofsd_pid"));
	vm_running = true;
	kill(p0, SIGKILL);
	wait_watched(1, c);
	is_int((int)n_watched, 1, "the dead one's pidfd fired and is no longer watched");
	ok(json_is_true(json_object_get(e0, "broken")) &&
		   json_integer_value(json_object_get(e0, "virtiofsd_pid")) == 0,
	   "state: the share is broken, no virtiofsd pid");
	ok(json_string_value(json_object_get(e0, "reason")) &&
		   strcmp(json_string_value(json_object_get(e0, "reason")),
			  "virtiofsd exited: killed by signal 9") == 0,
	   "with the reason: virtiofsd exited: killed by signal 9");
	ok(!json_object_get(e1, "broken"), "the other share is not broken");
	sum = share_status(c->state);
	ok(sum && json_array_size(sum) == 2 &&
		   json_is_true(json_object_get(json_array_get(sum, 0), "broken")) &&
		   json_is_false(json_object_get(json_array_get(sum, 1), "broken")),
	   "share_status(): workspace broken, plain ok");
	{
		char *txt = NULL;
		size_t tl = 0;
		FILE *m = open_memstream(&txt, &tl);

		share_status_print(m, sum);
		fclose(m);
		ok(txt && strstr(txt, "workspace: broken (virtiofsd exited: killed by signal 9)") &&
			   strstr(txt, "plain: ok"),
		   "status lines: share workspace broken (the reason), share plain ok");
		free(txt);
	}
	json_decref(sum);

	/* the VM going down: virtiofsd leaving is expected, not a fault (SIGKILL:
	 * a SIGTERM can land while virtiofsd still sets up its sandbox, where it
	 * is not handled yet; how it leaves is not what this checks) */
	vm_running = false;
	kill(p1, SIGKILL);
	wait_watched(0, c);
	ok(n_watched == 0 && !json_object_get(e1, "broken"),
	   "a virtiofsd exiting while the VM stops is not 'broken'");
	vm_running = true;
	share_sv_ext.teardown(c, priv);
	ok(!pid_alive(p0) && !pid_alive(p1), "teardown after the deaths: nothing left");
}

static void test_sv(const char *tmp)
{
	char proj[PATH_MAX], vmdir[PATH_MAX], host[PATH_MAX], host2[PATH_MAX], img[PATH_MAX],
		exe[PATH_MAX], f[PATH_MAX + 16];
	struct cfg_share sh[2];
	struct cfg_vm vm = { .memory_mib = 256 };
	struct cli cli = { 0 };
	const struct cfg vmcfg = { 0 };
	struct up_ctx u = { .cli = &cli, .cfg = &vmcfg, .vm = &vm };
	struct sv_ctx c = { .vm = &vm, .uid = 0, .gid = 0 };
	void *priv = NULL;
	json_t *e;
	pid_t p0, p1;
	struct stat st;

	if (geteuid() != 0 || share_virtiofsd_find(exe, sizeof(exe)) < 0 ||
	    access("/dev/loop-control", R_OK | W_OK) < 0) {
		ok(1, "# SKIP supervisor extension: needs root, virtiofsd, /dev/loop-control");
		return;
	}
	util_snprintf(proj, sizeof(proj), "%s/proj", tmp);
	util_snprintf(vmdir, sizeof(vmdir), "%s/vm", tmp);
	util_snprintf(host, sizeof(host), "%s/proj/workspace", tmp);
	util_snprintf(host2, sizeof(host2), "%s/proj/plain", tmp);
	util_snprintf(img, sizeof(img), "%s/proj/workspace.img", tmp);
	mkdir(proj, 0755);
	mkdir(vmdir, 0700);
	sh[0] = (struct cfg_share){ .host = host, .guest = "/workspace", .tag = "workspace",
				    .size_gib = 1, .isolation = true };
	sh[1] = (struct cfg_share){ .host = host2, .guest = "/plain", .tag = "plain",
				    .isolation = false };
	vm.shares = sh;
	vm.n_shares = 2;
	c.project_dir = proj;
	c.vm_dir = vmdir;
	c.state = json_object();
	util_snprintf(cli.dir, sizeof(cli.dir), "%s", proj);

	ok(share_up_ext.before_up(&u) == 0 && stat(img, &st) < 0 && errno == ENOENT,
	   "before_up checks and makes nothing (the image is the privileged side's)");
	qemu_args[0] = '\0';
	ok(share_sv_ext.prepare(&c, &priv) == 0 && priv, "prepare with no image yet and a plain folder");
	ok(stat(img, &st) == 0 && st.st_size == (off_t)1 << 30 &&
		   (long long)st.st_blocks * 512 < 128LL << 20,
	   "it made the image on first use: 1 GiB and sparse (%lld KiB used)",
	   (long long)st.st_blocks / 2);
	ok(share_verify(img, host, NULL) == 0, "image mounted on the folder with our flags");
	ok(strstr(qemu_args, "-object memory-backend-memfd,id=hutch-mem,size=256M,share=on "
			     "-numa node,memdev=hutch-mem ") == qemu_args,
	   "one shared memory backend, sized as the VM's memory");
	ok(strstr(qemu_args, "-device vhost-user-fs-pci,chardev=hutch-vfs0,tag=workspace") &&
		   strstr(qemu_args, "-device vhost-user-fs-pci,chardev=hutch-vfs1,tag=plain") &&
		   strstr(qemu_args, "-chardev socket,id=hutch-vfs0,fd=") &&
		   strstr(qemu_args, "-chardev socket,id=hutch-vfs1,fd="),
	   "a vhost-user-fs device and a connected socket chardev (by fd) per share");
	e = json_array_get(json_object_get(c.state, "shares"), 0);
	p0 = (pid_t)json_integer_value(json_object_get(e, "virtiofsd_pid"));
	p1 = (pid_t)json_integer_value(json_object_get(json_array_get(json_object_get(c.state, "shares"), 1),
						      "virtiofsd_pid"));
	ok(json_is_true(json_object_get(e, "mounted")) &&
		   json_integer_value(json_object_get(e, "loop")) >= 0 && p0 > 1 && p1 > 1 &&
		   pid_alive(p0) && pid_alive(p1),
	   "state records the mount, loop and running virtiofsd pids");
	util_snprintf(f, sizeof(f), "%s/vm/vfs-workspace.sock", tmp);
	ok(share_pid_is_virtiofsd(p0, f) && !share_pid_is_virtiofsd(p1, f) &&
		   !share_pid_is_virtiofsd(getpid(), f),
	   "pid check matches only the virtiofsd on that socket");
	ok(n_saves > 0, "state saved");
	{
		char *txt = NULL;
		size_t tl = 0;
		FILE *m = open_memstream(&txt, &tl);

		share_sv_ext.inspect(vmdir, c.state, m, NULL);
		fclose(m);
		ok(txt && strstr(txt, "share workspace:") && strstr(txt, "(mounted nosymfollow") &&
			   strstr(txt, "virtiofsd running"),
		   "inspect lists the shares");
		free(txt);
	}
	share_sv_ext.teardown(&c, priv);
	ok(share_verify(img, host, NULL) == -ENOENT, "teardown unmounts");
	ok(!pid_alive(p0) && !pid_alive(p1), "teardown stops both virtiofsd");
	ok(json_integer_value(json_object_get(e, "virtiofsd_pid")) == 0 &&
		   json_is_false(json_object_get(e, "mounted")),
	   "and records it");

	/* crash: prepare, then no teardown; gc from a copy of state.json */
	priv = NULL;
	ok(share_sv_ext.prepare(&c, &priv) == 0, "prepare again (image reused)");
	{
		json_t *saved = json_deep_copy(c.state);

		e = json_array_get(json_object_get(c.state, "shares"), 0);
		p0 = (pid_t)json_integer_value(json_object_get(e, "virtiofsd_pid"));
		ok(share_sv_ext.gc(vmdir, saved) == 0, "gc from state alone");
		ok(share_verify(img, host, NULL) == -ENOENT, "gc unmounted the image");
		ok(!pid_alive(p0), "gc stopped virtiofsd");
		json_decref(saved);
	}
	free(priv);	/* what teardown would have freed; its processes are gone */
	ok(stat(img, &st) == 0, "the image survives all of it");
	n_watched = 0;
	test_sv_vfs_death(&c);
	json_decref(c.state);
}

int main(void)
{
	char tmp[] = "/tmp/t_share.XXXXXX";

	log_init("t_share", LOG_LVL_WARN);
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	/* provenance records (share_record_dir()) go under the test's own dir */
	{
		char data[PATH_MAX];

		util_snprintf(data, sizeof(data), "%s/data", tmp);
		setenv("XDG_DATA_HOME", data, 1);
	}
	test_parser();
	test_tags_fstab();
	test_provenance();
	test_paths(tmp);
	test_sv(tmp);
	util_rm_rf(tmp);
	return tap_done();
}
