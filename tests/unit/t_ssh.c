// SPDX-License-Identifier: MIT
/* SSH keys, host-key pinning, target address and the ssh command line */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/ci.h"
#include "src/consent.h"
#include "src/hook.h"
#include "src/proc.h"
#include "src/prov.h"
#include "src/ssh.h"
#include "src/trust.h"
#include "src/util.h"
#include "tests/unit/tap.h"

static json_t *js(const char *s)
{
	return json_loads(s, 0, NULL);
}

static int target(const char *s, char *host, int *port)
{
	json_t *j = js(s);
	int rc = ssh_target(j, host, SSH_HOST_MAX, port);

	json_decref(j);
	return rc;
}

static bool has_arg(const char **argv, const char *a)
{
	for (; *argv; argv++)
		if (!strcmp(*argv, a))
			return true;
	return false;
}

/* what `hutch allow` does: record the project's host-side code as allowed */
static void allow_all(const char *dir)
{
	struct consent_set s;
	char why[TRUST_WHY_MAX];

	if (consent_scan(dir, &s, why, sizeof(why)) == 0) {
		consent_record(dir, &s);
		consent_set_free(&s);
	}
}

int main(void)
{
	char tmp[] = "/tmp/t_ssh.XXXXXX", path[PATH_MAX], vm_dir[PATH_MAX], line[SSH_PUB_MAX];
	char pub[SSH_PUB_MAX], host[SSH_HOST_MAX], path2[PATH_MAX + 64], *priv = NULL, *text = NULL, *buf = NULL;
	char args[8192];
	struct cfg_vm vm;
	struct ssh_conn c;
	const char *argv[SSH_ARGV_MAX];
	const char *cmd[] = { "false", "-v", NULL };
	struct stat sb;
	int port = 0;
	size_t len;
	FILE *f;
	json_t *st;

	/* ssh_target */
	is_int(target("{\"ssh\":{\"host\":\"127.0.0.1\",\"port\":2222}}", host, &port), 0, "user mode: state ssh");
	ok(!strcmp(host, "127.0.0.1") && port == 2222, "host and forwarded port");
	is_int(target("{\"net\":{\"ip\":\"10.77.0.23\"}}", host, &port), 0, "nat: state net.ip");
	ok(!strcmp(host, "10.77.0.23") && port == 22, "ip and port 22");
	is_int(target("{\"ssh\":{\"host\":\"127.0.0.1\",\"port\":2200},\"net\":{\"ip\":\"10.0.0.2\"}}", host, &port), 0, "both");
	ok(port == 2200, "ssh wins over net");
	is_int(target("{\"status\":\"running\"}", host, &port), -ENOENT, "no address yet");
	is_int(target("{\"net\":{\"ip\":\"-oProxyCommand=x\"}}", host, &port), -EINVAL, "option-like host refused");
	is_int(target("{\"net\":{\"ip\":\"1.2.3.4 x\"}}", host, &port), -EINVAL, "host with space refused");
	is_int(target("{\"ssh\":{\"host\":\"127.0.0.1\",\"port\":70000}}", host, &port), -EINVAL, "port out of range refused");
	is_int(target("{\"ssh\":{\"host\":\"127.0.0.1\",\"port\":\"22\"}}", host, &port), -EINVAL, "port as string refused");

	/* keys, in a scratch HOME */
	ok(mkdtemp(tmp) != NULL, "scratch dir");
	setenv("HOME", tmp, 1);
	/* hutch's data dir (consent records) apart from the project: as root the
	 * project below is opened to the unprivileged user the hooks run as, and
	 * a data dir under a world-writable directory is refused (trust_dir) */
	{
		static char data[] = "/tmp/t_ssh_data.XXXXXX";

		ok(mkdtemp(data) != NULL, "scratch data dir");
		setenv("XDG_DATA_HOME", data, 1);
	}
	is_int(ssh_managed_key_path(path, sizeof(path)), 0, "managed key path");
	snprintf(line, sizeof(line), "%s/.ssh/hutch", tmp);
	ok(!strcmp(path, line), "managed key is ~/.ssh/hutch");
	memset(&vm, 0, sizeof(vm));
	strcpy(vm.name, "box");
	vm.ssh.key = CFG_KEY_MANAGED;
	snprintf(vm_dir, sizeof(vm_dir), "%s/vms/box", tmp);
	is_int(util_mkdir_p(vm_dir, 0700), 0, "vm dir");
	is_int(ssh_client_key(&vm, vm_dir, path, sizeof(path)), 0, "managed key created on demand");
	is_int(ssh_pubkey_read(path, line, sizeof(line)), 0, "public key read");
	ok(!strncmp(line, "ssh-ed25519 ", 12), "ed25519");
	len = strlen(line);
	ok(len > 6 && !strcmp(line + len - 6, " hutch"), "comment hutch: %s", line);
	ok(stat(path, &sb) == 0 && (sb.st_mode & 077) == 0, "private key not readable by others");
	{
		char again[SSH_PUB_MAX], p2[PATH_MAX];

		is_int(ssh_client_key(&vm, vm_dir, p2, sizeof(p2)), 0, "second call");
		ssh_pubkey_read(p2, again, sizeof(again));
		ok(!strcmp(again, line), "existing key kept, not regenerated");
	}
	vm.ssh.key = CFG_KEY_GENERATED;
	is_int(ssh_client_key(&vm, vm_dir, path, sizeof(path)), 0, "generated key");
	snprintf(line, sizeof(line), "%s/ssh/id_ed25519", vm_dir);
	ok(!strcmp(path, line), "per-VM key in <vm_dir>/ssh");
	vm.ssh.key = CFG_KEY_PATH;
	vm.ssh.key_path = "/nonexistent/key";
	ok(ssh_client_key(&vm, vm_dir, path, sizeof(path)) < 0, "missing ssh.key PATH fails");
	vm.ssh.key = CFG_KEY_MANAGED;

	/* host key pinning */
	is_int(ssh_host_key(vm_dir, "box", &priv, pub, sizeof(pub)), 0, "host key created");
	ok(priv && strstr(priv, "BEGIN OPENSSH PRIVATE KEY"), "private host key text");
	ok(!strncmp(pub, "ssh-ed25519 ", 12), "host key is ed25519");
	snprintf(path2, sizeof(path2), "%s/ssh/known_hosts", vm_dir);
	is_int(util_read_file(path2, 65536, &text, &len), 0, "known_hosts written");
	ok(text && !strncmp(text, "hutch-box ssh-ed25519 ", 22), "known_hosts pins the key under hutch-box");
	ok(text && strchr(text, '\n') == text + len - 1, "exactly one line");
	ok(text && ci_key_same(text + 10, pub), "the pinned key is the host key");
	{
		char pub2[SSH_PUB_MAX];

		is_int(ssh_host_key(vm_dir, "box", NULL, pub2, sizeof(pub2)), 0, "again");
		ok(!strcmp(pub, pub2), "host key stable across calls");
	}
	free(text);
	free(priv);

	/* connection */
	st = js("{\"ssh\":{\"host\":\"127.0.0.1\",\"port\":2222}}");
	vm.ssh.user = "dev";
	is_int(ssh_conn_init(&c, &vm, tmp, vm_dir, st), 0, "conn init");
	ok(!strcmp(c.user, "dev") && c.port == 2222 && !strcmp(c.alias, "hutch-box"), "conn fields");
	is_int(ssh_argv(&c, false, cmd, argv, SSH_ARGV_MAX), 0, "argv");
	ok(!strcmp(argv[0], "ssh") && !strcmp(argv[1], "-F") && !strcmp(argv[2], "/dev/null"), "user's ssh config not read");
	ok(has_arg(argv, "StrictHostKeyChecking=yes"), "strict host key checking");
	ok(has_arg(argv, "IdentitiesOnly=yes"), "only our key offered");
	ok(has_arg(argv, "HostKeyAlias=hutch-box"), "host key alias");
	ok(has_arg(argv, "GlobalKnownHostsFile=/dev/null"), "no global known hosts");
	snprintf(line, sizeof(line), "UserKnownHostsFile=\"%s/ssh/known_hosts\"", vm_dir);
	ok(has_arg(argv, line), "pinned known_hosts");
	ok(!has_arg(argv, "BatchMode=yes"), "interactive: no BatchMode");
	{
		size_t i = 0;

		while (argv[i])
			i++;
		ok(i >= 4 && !strcmp(argv[i - 4], "127.0.0.1") && !strcmp(argv[i - 3], "--") &&
		   !strcmp(argv[i - 2], "false") && !strcmp(argv[i - 1], "-v"),
		   "host, then --, then the command words");
	}
	for (size_t i = 0; argv[i]; i++)
		ok(!strstr(argv[i], "StrictHostKeyChecking=no") && !strstr(argv[i], "accept-new"), "never relaxed: %s", argv[i]);
	is_int(ssh_argv(&c, true, NULL, argv, SSH_ARGV_MAX), 0, "batch argv");
	ok(has_arg(argv, "BatchMode=yes") && has_arg(argv, "ConnectTimeout=10"), "probes never prompt");
	is_int(ssh_argv(&c, true, NULL, argv, 10), -E2BIG, "argv overflow refused");

	is_int(ssh_common_args(&c, args, sizeof(args)), 0, "ansible common args");
	ok(!strncmp(args, "-F /dev/null -o ", 16) && strstr(args, " StrictHostKeyChecking=yes") &&
	   strstr(args, " HostKeyAlias=hutch-box"), "options as shell words: %s", args);
	ok(strstr(args, "'UserKnownHostsFile=\"") != NULL, "a word with quotes is single-quoted");

	f = open_memstream(&buf, &len);
	is_int(ssh_config_print(f, &c), 0, "ssh-config block");
	fclose(f);
	ok(!strncmp(buf, "Host hutch-box\n", 15), "Host hutch-box");
	ok(strstr(buf, "  HostName 127.0.0.1\n  Port 2222\n  User dev\n") != NULL, "HostName, Port, User");
	ok(strstr(buf, "  StrictHostKeyChecking yes\n") && strstr(buf, "  IdentitiesOnly yes\n") &&
	   strstr(buf, "  HostKeyAlias hutch-box\n") && strstr(buf, "  UserKnownHostsFile \"") &&
	   strstr(buf, "  IdentityFile \""), "pinning options in the block");
	free(buf);

	/* ssh_user precedence */
	vm.ssh.user = NULL;
	snprintf(path, sizeof(path), "%s/cloud-init.yml", tmp);
	f = fopen(path, "w");
	fputs("#cloud-config\nusers:\n  - default\n  - name: fromfile\n", f);
	fclose(f);
	is_int(ssh_user(&vm, tmp, vm_dir, line, sizeof(line)), 0, "user from cloud-init.yml");
	ok(!strcmp(line, "fromfile"), "first cloud-init user (%s)", line);
	snprintf(path2, sizeof(path2), "%s/ssh/user", vm_dir);
	util_write_atomic(path2, "recorded\n", 9, 0600);
	ssh_user(&vm, tmp, vm_dir, line, sizeof(line));
	ok(!strcmp(line, "recorded"), "user recorded at creation wins over the file (%s)", line);
	vm.ssh.user = "cfg";
	ssh_user(&vm, tmp, vm_dir, line, sizeof(line));
	ok(!strcmp(line, "cfg"), "ssh.user wins");

	/* hooks: as root they run as the unprivileged user, who must reach the project */
	if (geteuid() == 0)
		chmod(tmp, 0777);
	snprintf(path2, sizeof(path2), "%s/hooks", tmp);
	util_mkdir_p(path2, 0755);
	is_int(hook_run(tmp, "pre-up", "box", vm_dir, "up", "10.77.0.5"), 0, "missing hook is fine");
	snprintf(path2, sizeof(path2), "%s/hooks/pre-up", tmp);
	f = fopen(path2, "w");
	fprintf(f, "#!/bin/sh\necho \"$HUTCH_VM_NAME|$HUTCH_VM_DIR|$HUTCH_HOOK|$HUTCH_TRIGGER|$HUTCH_VM_IP|$(pwd)\" > %s/hook.out\nexit ${HOOK_RC:-0}\n", tmp);
	fclose(f);
	is_int(hook_run(tmp, "pre-up", "box", vm_dir, "up", "10.77.0.5"), -EACCES, "non-executable hook refused");
	chmod(path2, 0755);
	is_int(hook_run(tmp, "pre-up", "box", vm_dir, "halt", "10.77.0.5"), -EPERM,
	       "a hook the user has not allowed does not run");
	allow_all(tmp);
	is_int(hook_run(tmp, "pre-up", "box", vm_dir, "halt", "10.77.0.5"), 0, "hook ran");
	snprintf(path2, sizeof(path2), "%s/hook.out", tmp);
	text = NULL;
	util_read_file(path2, 65536, &text, &len);
	snprintf(line, sizeof(line), "box|%s|pre-up|halt|10.77.0.5|%s\n", vm_dir, tmp);
	ok(text && !strcmp(text, line), "hook environment and cwd: %s", text ? text : "(none)");
	free(text);
	snprintf(path2, sizeof(path2), "%s/hooks/post-down", tmp);
	f = fopen(path2, "w");
	fputs("#!/bin/sh\nexit 3\n", f);
	fclose(f);
	chmod(path2, 0755);
	is_int(hook_run(tmp, "post-down", "box", vm_dir, "destroy", NULL), -EPERM,
	       "a hook added after `hutch allow` does not run");
	allow_all(tmp);
	is_int(hook_run(tmp, "post-down", "box", vm_dir, "destroy", NULL), -ECANCELED, "failing hook reported");

	/* bounded runs */
	{
		const char *sl[] = { "sleep", "30", NULL };
		const char *ex[] = { "sh", "-c", "echo out; exit 7", NULL };
		uint64_t t0 = util_monotonic_ms();
		int code = -1;

		is_int(prov_run(sl, NULL, NULL, -1, 1, NULL, NULL, &code), -ETIMEDOUT, "timeout kills the child");
		ok(util_monotonic_ms() - t0 < 20000, "and returns long before the child would end");
		is_int(prov_run(ex, NULL, NULL, -1, 0, NULL, NULL, &code), 0, "exit status");
		is_int(code, 7, "exit code passed through");
	}

	/* provisioning: ansible-playbook against a closed port must fail cleanly,
	 * with the inventory readable by ansible and the log marked */
	{
		char pb[PATH_MAX + 32], inv[PATH_MAX + 32], *pout = NULL;
		const char *iargv[] = { "ansible-inventory", "-i", inv, "--list", NULL };
		const char *ienv[] = { "ANSIBLE_INVENTORY_ENABLED=yaml", "PATH=/usr/bin:/bin", NULL, NULL };
		char henv[PATH_MAX + 8];
		json_t *st2 = js("{\"ssh\":{\"host\":\"127.0.0.1\",\"port\":9}}");
		int status = -1;

		vm.ssh.user = "dev";
		is_int(prov_playbook(&vm, tmp, vm_dir, st2, NULL, NULL), -ENOENT, "no playbook.yml: -ENOENT");
		snprintf(pb, sizeof(pb), "%s/playbook.yml", tmp);
		f = fopen(pb, "w");
		fputs("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n", f);
		fclose(f);
		is_int(prov_playbook(&vm, tmp, vm_dir, st2, NULL, NULL), -EPERM,
		       "a playbook the user has not allowed does not run");
		allow_all(tmp);
		is_int(prov_playbook(&vm, tmp, vm_dir, st2, NULL, NULL), -ECANCELED, "unreachable VM: playbook fails");
		snprintf(pb, sizeof(pb), "%s/provision.log", vm_dir);
		text = NULL;
		util_read_file(pb, 1 << 20, &text, &len);
		ok(text && strstr(text, "==> hutch provision: start ") && strstr(text, "==> hutch provision: end ") &&
		   strstr(text, "exit=4"), "log has start/end markers and ansible's exit status");
		ok(text && strstr(text, "UNREACHABLE"), "ansible's own output in the log");
		ok(text && strstr(text, "Connection refused"),
		   "ssh got our options as separate words (it tried to connect)");
		free(text);
		snprintf(pb, sizeof(pb), "%s/provisioned", vm_dir);
		ok(access(pb, F_OK) < 0, "not marked provisioned after a failure");
		snprintf(inv, sizeof(inv), "%s/inventory.json", vm_dir);
		snprintf(henv, sizeof(henv), "HOME=%s", tmp);
		ienv[2] = henv;
		is_int(proc_run(iargv, ienv, &pout, 1 << 16, &status), 0, "ansible-inventory ran");
		ok(proc_exit_code(status) == 0 && pout && strstr(pout, "\"ansible_port\": 9") &&
		   strstr(pout, "HostKeyAlias=hutch-box") && strstr(pout, "\"ansible_user\": \"dev\""),
		   "ansible reads the inventory with the pinning options");
		free(pout);
		/*
		 * ansible-playbook never runs as root: a stand-in earlier in PATH
		 * records its own status and what it could read (issue 15.3)
		 */
		if (geteuid() == 0) {
			char bin[PATH_MAX + 8], fake[PATH_MAX + 32], newpath[PATH_MAX + 64], *old = getenv("PATH");
			char *oldcopy = old ? strdup(old) : NULL;

			snprintf(bin, sizeof(bin), "%s/fakebin", tmp);
			util_mkdir_p(bin, 0755);
			snprintf(fake, sizeof(fake), "%s/ansible-playbook", bin);
			f = fopen(fake, "w");
			fprintf(f, "#!/bin/sh\ncat /proc/self/status >%s/ansible.status\n"
				   "for a; do case $a in *.json) cat \"$a\" >/dev/null && echo inv-ok >>%s/ansible.status;; esac; done\n"
				   "cat /etc/shadow >/dev/null 2>&1 && echo shadow-read >>%s/ansible.status\nexit 0\n",
				tmp, tmp, tmp);
			fclose(f);
			chmod(fake, 0755);
			snprintf(newpath, sizeof(newpath), "PATH=%s:%s", bin, oldcopy ? oldcopy : "/usr/bin:/bin");
			putenv(newpath);
			/* proc_default_env() is computed once: the stand-in is found through argv[0] lookup */
			is_int(prov_playbook(&vm, tmp, vm_dir, st2, NULL, NULL), 0, "stand-in ansible-playbook ran");
			snprintf(pb, sizeof(pb), "%s/ansible.status", tmp);
			text = NULL;
			util_read_file(pb, 65536, &text, &len);
			ok(text && !strstr(text, "\nUid:\t0\t") && strstr(text, "CapEff:\t0000000000000000") &&
			   strstr(text, "NoNewPrivs:\t1"), "ansible-playbook runs unprivileged, no caps, no_new_privs");
			ok(text && strstr(text, "inv-ok"), "and can read its inventory");
			ok(text && !strstr(text, "shadow-read"), "but not /etc/shadow");
			free(text);
			if (oldcopy)
				setenv("PATH", oldcopy, 1);
			free(oldcopy);
		}
		json_decref(st2);
	}

	json_decref(st);
	util_rm_rf(tmp);
	return tap_done();
}
