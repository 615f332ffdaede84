// SPDX-License-Identifier: MIT
/*
 * Verbs that look at VMs without changing them: status, list, ip, inspect,
 * logs.  Every status shown is checked against the live supervisor
 * (vm_effective_status()), so a VM whose supervisor died is "crashed",
 * never a stale "running".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "share/share.h"
#include "src/cmd.h"
#include "src/ext.h"
#include "src/log.h"
#include "src/state.h"
#include "src/util.h"
#include "src/vm.h"
#include "src/vmfd.h"

/* ---- status / list ---- */

static bool vm_active(const char *status)
{
	return !strcmp(status, "running") || !strcmp(status, "paused") ||
	       !strcmp(status, "starting");
}

/* what status and list show of one VM; a new object */
static json_t *vm_summary(const char *vm_dir, const char *name, json_t *st)
{
	const char *status = st ? vm_effective_status(vm_dir, st) : "not-created";
	json_t *o = json_pack("{s:s, s:s}", "name", name, "status", status);
	json_t *net = st ? json_object_get(st, "net") : NULL, *ssh = st ? json_object_get(st, "ssh") : NULL;
	static const char *const keys[] = { "project", "accel", "exit_reason", "mac" };
	json_t *shares;
	long long t;

	if (!st || !o)
		return o;
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keys); i++)
		if (state_get_str(st, keys[i]))
			json_object_set_new(o, keys[i], json_string(state_get_str(st, keys[i])));
	if (!vm_active(status))
		return o;
	t = state_get_int(st, "started_at", 0);
	json_object_set_new(o, "supervisor_pid", json_integer(state_get_int(st, "supervisor_pid", 0)));
	json_object_set_new(o, "qemu_pid", json_integer(state_get_int(st, "qemu_pid", 0)));
	if (t > 0)
		json_object_set_new(o, "uptime_s", json_integer((json_int_t)(time(NULL) - t)));
	if (state_get_str(net, "ip"))
		json_object_set_new(o, "ip", json_string(state_get_str(net, "ip")));
	else if (state_get_int(ssh, "port", 0) > 0)
		json_object_set_new(o, "ip", json_string("127.0.0.1"));
	if (state_get_int(ssh, "port", 0) > 0)
		json_object_set_new(o, "ssh_port", json_integer(state_get_int(ssh, "port", 0)));
	/* WireGuard (net/wg_sv.c): the tunnel's status as its supervisor last saw it */
	if (state_get_str(json_object_get(st, "wg"), "status"))
		json_object_set_new(o, "tunnel",
				    json_string(state_get_str(json_object_get(st, "wg"), "status")));
	if (state_get_str(json_object_get(st, "wg"), "reason"))
		json_object_set_new(o, "tunnel_reason",
				    json_string(state_get_str(json_object_get(st, "wg"), "reason")));
	/* a share whose virtiofsd died is "broken" (share_status()) */
	shares = share_status(st);
	if (shares)
		json_object_set_new(o, "shares", shares);
	return o;
}

/* "key  value" lines for strings and numbers, in the object's order */
static void print_kv(json_t *o)
{
	/* plain iteration, not json_object_foreach: cppcheck cannot expand it */
	for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
		const char *k = json_object_iter_key(it);
		json_t *v = json_object_iter_value(it);
		char esc[512];

		if (json_is_string(v))
			printf("%-14s %s\n", k, log_escape(esc, sizeof(esc), json_string_value(v),
							   strlen(json_string_value(v))));
		else if (json_is_integer(v))
			printf("%-14s %lld\n", k, (long long)json_integer_value(v));
		else if (json_is_boolean(v))
			printf("%-14s %s\n", k, json_is_true(v) ? "yes" : "no");
		else if (!strcmp(k, "shares"))
			share_status_print(stdout, v);
	}
}

static int cmd_status(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	json_t *o;

	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_status_entry);
	o = vm_summary(t->dir, t->name, t->state);
	if (!o)
		return EXIT_ERR;
	if (cli->json)
		return cmd_print_json(o) ? EXIT_ERR : EXIT_OK;
	print_kv(o);
	json_decref(o);
	return EXIT_OK;
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "[NAME]",
	.summary = "state of the VM (--json)",
	.help = "Shows the VM's state (not-created, starting, running, paused, stopped,\n"
		"crashed), checked against its live supervisor, and while it runs its address,\n"
		"accelerator, uptime and process ids. --json prints the same as one object.\n"
		"\n"
		"Examples:\n"
		"  hutch status\n"
		"  hutch status --json | jq -r .status\n",
	.flags = CMD_F_VM,
	.fn = cmd_status,
};

static int cmd_list(struct cli *cli, struct vm_target *t0, int argc, char **argv)
{
	char dir[PATH_MAX];
	json_t *arr = json_array();
	struct dirent *de;
	DIR *d;

	(void)t0;
	(void)argv;
	if (argc > 1 || !arr) {
		json_decref(arr);
		return cmd_usage(&cmd_list_entry);
	}
	if (vm_root_dir(dir, sizeof(dir))) {
		json_decref(arr);
		return EXIT_ERR;
	}
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		struct vm_target t;

		if (util_name_valid(de->d_name) && vm_target_by_dir(de->d_name, 0, &t) == EXIT_OK)
			json_array_append_new(arr, vm_summary(t.dir, t.name, t.state));
		vm_target_close(&t);
	}
	if (d)
		closedir(d);
	if (cli->json)
		return cmd_print_json(arr) ? EXIT_ERR : EXIT_OK;
	if (json_array_size(arr))
		printf("%-24s %-10s %-15s %-6s %s\n", "NAME", "STATUS", "IP", "ACCEL", "PROJECT");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *o = json_array_get(arr, i);

		printf("%-24s %-10s %-15s %-6s %s\n", state_get_str(o, "name"),
		       state_get_str(o, "status"), state_get_str(o, "ip") ?: "-",
		       state_get_str(o, "accel") ?: "-", state_get_str(o, "project") ?: "-");
	}
	json_decref(arr);
	return EXIT_OK;
}

const struct cmd_entry cmd_list_entry = {
	.name = "list",
	.usage = "",
	.summary = "all VMs of this user (--json)",
	.help = "Lists every VM of this user, whatever its project directory: name, state\n"
		"(checked against the live supervisor), address, accelerator and project.\n"
		"--json gives an array of the objects 'hutch status --json' prints.\n"
		"\n"
		"Examples:\n"
		"  hutch list\n"
		"  hutch list --json | jq -r '.[] | select(.status == \"running\") | .name'\n",
	.fn = cmd_list,
};

/* ---- ip ---- */

static int cmd_ip(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	const char *ip = state_get_str(json_object_get(t->state, "net"), "ip");
	long long port = state_get_int(json_object_get(t->state, "ssh"), "port", 0);
	json_t *o = NULL;

	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_ip_entry);
	if (ip)
		o = json_pack("{s:s}", "ip", ip);
	else if (port > 0)
		o = json_pack("{s:s, s:I, s:s}", "ip", "127.0.0.1", "ssh_port", (json_int_t)port,
			      "mode", "user");
	if (!o) {
		log_err("%s has no address yet", t->name);
		return EXIT_ERR;
	}
	if (cli->json) {
		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		printf("%s\n", state_get_str(o, "ip"));
		if (!ip)
			log_info("user-mode networking: SSH is forwarded from 127.0.0.1:%lld", port);
	}
	json_decref(o);
	return EXIT_OK;
}

const struct cmd_entry cmd_ip_entry = {
	.name = "ip",
	.usage = "[NAME]",
	.summary = "print the VM's address (--json)",
	.help = "Prints the address the guest leased from hutch's DHCP server (network mode\n"
		"nat). In mode user it prints 127.0.0.1 and says which local port forwards to\n"
		"the guest's SSH.\n"
		"\n"
		"Example:\n"
		"  curl http://$(hutch ip):8080/\n",
	.flags = CMD_F_VM | CMD_F_RUNNING,
	.fn = cmd_ip,
};

/* ---- inspect ---- */

static void inspect_argv(json_t *argvj)
{
	printf("qemu argv:  ");
	for (size_t i = 0; i < json_array_size(argvj); i++) {
		const char *v = json_string_value(json_array_get(argvj, i));

		if (!v)
			continue;
		if (strpbrk(v, " \t'\"\\$") || !*v)
			printf(" '%s'", v);
		else
			printf(" %s", v);
	}
	putchar('\n');
}

static int cmd_inspect(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	const struct sv_ext *const *ext = ext_sv_list();
	json_t *o, *argvj, *req, *resp = NULL;
	int rc;

	(void)argv;
	if (argc > 1)
		return cmd_usage(&cmd_inspect_entry);
	o = json_pack("{s:s, s:s}", "name", t->name, "status", vm_effective_status(t->dir, t->state));
	if (!o)
		return EXIT_ERR;
	argvj = json_object_get(t->state, "qemu_argv");
	if (json_is_array(argvj))
		json_object_set(o, "qemu_argv", argvj);
	if (t->alive) {
		req = json_pack("{s:s}", "cmd", "status");
		if (vm_control(t->dir, req, &resp, VM_CTL_TIMEOUT_MS) == 0 && state_get_str(resp, "qmp"))
			json_object_set_new(o, "qmp_status", json_string(state_get_str(resp, "qmp")));
		json_decref(req);
		json_decref(resp);
	}
	if (cli->json) {
		/* who runs what: uid and capabilities of supervisor, QEMU, virtiofsd */
		vmfd_inspect_rights(t->state, NULL, o);
		for (size_t i = 0; ext[i]; i++)
			if (ext[i]->inspect && (rc = ext[i]->inspect(t->dir, t->state, NULL, o)))
				log_warno(rc, "%s: inspect", ext[i]->name);
		return cmd_print_json(o) ? EXIT_ERR : EXIT_OK;
	}
	printf("name:        %s\nstatus:      %s\n", t->name, state_get_str(o, "status"));
	if (state_get_str(o, "qmp_status"))
		printf("qmp status:  %s\n", state_get_str(o, "qmp_status"));
	if (json_is_array(argvj))
		inspect_argv(argvj);
	vmfd_inspect_rights(t->state, stdout, NULL);
	fflush(stdout);
	for (size_t j = 0; ext[j]; j++)
		if (ext[j]->inspect && (rc = ext[j]->inspect(t->dir, t->state, stdout, NULL)))
			log_warno(rc, "%s: inspect", ext[j]->name);
	json_decref(o);
	return EXIT_OK;
}

const struct cmd_entry cmd_inspect_entry = {
	.name = "inspect",
	.usage = "[NAME]",
	.summary = "QEMU argv, QMP status, rules in place (--json)",
	.help = "Shows what hutch set up for the VM: QEMU's command line, QEMU's own run\n"
		"state over QMP, the network (bridge, tap, MAC, address, whether the bridge port\n"
		"is isolated) and the nftables rules in force for this VM, and the shared\n"
		"folders with their mounts.\n"
		"\n"
		"Examples:\n"
		"  hutch inspect\n"
		"  hutch inspect --json | jq .qemu_argv\n",
	.flags = CMD_F_VM | CMD_F_EXISTS,
	.fn = cmd_inspect,
};

/* ---- logs ---- */

/* length of the valid UTF-8 sequence at @p (at most @n bytes), 0 when invalid */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong, surrogates, beyond U+10FFFF, and the C1 controls U+0080..U+009F
	 * (a terminal takes U+009B as CSI, like ESC [) */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return len;
}

/*
 * Log bytes come from the guest: control characters other than newline and
 * tab, C1 controls (raw 0x80..0x9f or encoded as UTF-8) and bytes that are
 * not valid UTF-8 are shown as \xNN, so they cannot drive the user's
 * terminal; valid UTF-8 text passes.  Returns how many bytes were used: an
 * incomplete sequence at the end of @buf waits for the next read.
 */
static size_t logs_emit(const char *buf, size_t n, bool last)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0;

	while (i < n) {
		size_t l = utf8_len(p + i, n - i);

		if (!l && !last && n - i < 4 && p[i] >= 0xc2 && p[i] <= 0xf4)
			return i;	/* maybe cut by the read */
		if (l > 1) {
			fwrite(p + i, 1, l, stdout);
			i += l;
			continue;
		}
		if (p[i] == '\n' || p[i] == '\t' || (p[i] >= 0x20 && p[i] < 0x7f))
			putchar(p[i]);
		else if (p[i] != '\r')
			printf("\\x%02x", p[i]);
		i++;
	}
	return i;
}

/* the whole file from @fd, then (follow) what is appended */
static int logs_copy(int fd, char *buf, size_t size, size_t *have, off_t *pos)
{
	ssize_t r;

	while ((r = read(fd, buf + *have, size - *have)) > 0) {
		size_t used;

		*have += (size_t)r;
		*pos += r;
		used = logs_emit(buf, *have, false);
		memmove(buf, buf + used, *have - used);
		*have -= used;
	}
	return r < 0 ? -errno : 0;
}

static int cmd_logs(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	const char *file = "console.log";
	char path[PATH_MAX], buf[8192];
	bool follow = false;
	size_t have = 0;
	off_t pos = 0;
	int rc, fd = -1;

	(void)cli;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--console"))
			file = "console.log";
		else if (!strcmp(argv[i], "--provision"))
			file = "provision.log";
		else if (!strcmp(argv[i], "--supervisor"))
			file = "supervisor.log";
		else if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = true;
		else
			return cmd_usage(&cmd_logs_entry);
	}
	if ((rc = util_path_join(path, sizeof(path), t->dir, file)))
		goto fail;
	for (;;) {
		struct stat sb;

		if (fd < 0) {
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0 && !follow) {
				rc = -errno;
				goto fail;
			}
			pos = 0;
		}
		if (fd >= 0)
			logs_copy(fd, buf, sizeof(buf), &have, &pos);
		fflush(stdout);
		if (!follow)
			break;
		usleep(200 * 1000);
		/* rotated or truncated: start again from the new file */
		if (fd >= 0 && (stat(path, &sb) < 0 || sb.st_size < pos)) {
			close(fd);
			fd = -1;
		}
	}
	logs_emit(buf, have, true);
	fflush(stdout);
	if (fd >= 0)
		close(fd);
	return EXIT_OK;
fail:
	log_errno(rc, "%s", path);
	return EXIT_ERR;
}

const struct cmd_entry cmd_logs_entry = {
	.name = "logs",
	.usage = "[NAME] [--console|--provision|--supervisor] [-f]",
	.summary = "show the console, provision or supervisor log",
	.help = "Prints the guest's serial console log (the default; bounded at 1 MiB, the\n"
		"previous one kept as console.log.1), the provisioning log (cloud-init wait,\n"
		"playbook), or the supervisor's own log. The bytes come from the guest: control\n"
		"characters and C1 controls are shown as \\xNN so they cannot drive your terminal.\n"
		"\n"
		"Options:\n"
		"  --console      the serial console (default)\n"
		"  --provision    cloud-init and ansible-playbook output\n"
		"  --supervisor   the supervisor's log\n"
		"  -f, --follow   keep printing what is appended\n"
		"\n"
		"Example:\n"
		"  hutch logs -f\n",
	.flags = CMD_F_VM,
	.fn = cmd_logs,
};
