// SPDX-License-Identifier: MIT
/*
 * Unit tests for cfg: defaults, every key, vms: with defaults, path
 * resolution, the kernel-without-image rule, limits, and the round trip
 * cfg_print -> cfg_load that `hutch check-config` relies on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cfg.h"
#include "src/util.h"
#include "tests/unit/tap.h"

static struct cfg_error err;

/* load @yaml as /proj/hutch.yaml; NULL on error (err.msg says why) */
static struct cfg *load(const char *yaml)
{
	struct cfg *c = NULL;

	if (cfg_load_buffer(yaml, strlen(yaml), "hutch.yaml", "/proj", &c, &err))
		return NULL;
	return c;
}

/* the error message of loading @yaml, "" if it loaded */
static const char *load_err(const char *yaml)
{
	struct cfg *c = load(yaml);

	if (c) {
		cfg_free(c);
		return "";
	}
	return err.msg;
}

static bool str_eq(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

static void test_defaults(void)
{
	struct cfg *c = load("name: agent\n");
	const struct cfg_vm *v;

	ok(c != NULL, "minimal config loads");
	if (!c)
		return;
	v = cfg_find_vm(c, NULL);
	ok(str_eq(c->path, "/proj/hutch.yaml") && str_eq(c->dir, "/proj"), "path and dir absolute");
	ok(c->n_vms == 1 && v && !strcmp(v->name, "agent"), "one VM named agent");
	ok(str_eq(v->image, "debian-12") && !v->image_sha256, "image defaults to debian-12");
	ok(v->cpus == 2 && v->memory_mib == 2048 && v->disk_gib == 0, "cpus 2, memory 2048, disk 0");
	ok(v->accel == CFG_ACCEL_AUTO && v->firmware == CFG_FW_BIOS, "accel auto, firmware bios");
	ok(!v->kernel.path && !v->kernel.initrd && !v->kernel.cmdline, "no kernel");
	ok(v->network.mode == CFG_NET_NAT && v->network.isolation && !v->network.ipv6 &&
	   !v->network.n_host_access && !v->network.n_forward, "network nat, isolated, no ipv6");
	ok(v->n_shares == 0, "no shared folders unless configured");
	ok(!v->ssh.user && v->ssh.key == CFG_KEY_MANAGED && !v->ssh.key_path, "ssh key managed");
	ok(v->autoconnect == CFG_AUTO_NONE && v->cloud_init_wait, "autoconnect none, cloud_init_wait");
	ok(v->timeouts.boot == 300 && v->timeouts.ssh == 300 && v->timeouts.cloud_init == 1800 &&
	   v->timeouts.shutdown == 60, "timeouts 300/300/1800/60");
	ok(cfg_find_vm(c, "agent") == v && cfg_find_vm(c, "other") == NULL, "cfg_find_vm by name");
	cfg_free(c);
}

static void test_empty_sections(void)
{
	struct cfg *c = load("name: a\nnetwork:\n  # all commented out\nshared_folders:\nkernel:\n"
			     "ssh:\ntimeouts: ~\n");
	const struct cfg_vm *v = c ? &c->vms[0] : NULL;

	ok(v && v->network.mode == CFG_NET_NAT && v->network.isolation && !v->n_shares &&
	   !v->kernel.path && str_eq(v->image, "debian-12") && v->timeouts.boot == 300,
	   "empty sections (null) mean the defaults%s%s", c ? "" : ": ", c ? "" : err.msg);
	cfg_free(c);
	ok(strstr(load_err("name: a\nkernel: {}\n"), "kernel: missing 'path'"),
	   "an empty kernel mapping still needs a path");
}

static const char full[] =
	"name: web-1\n"
	"image: images/base.qcow2\n"
	"image_sha256: ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\n"
	"cpus: 8\n"
	"memory: 8192\n"
	"disk: 40\n"
	"accel: tcg\n"
	"firmware: bios\n"
	"kernel: {path: k/../k/vmlinuz, initrd: ./k/initrd.img, cmdline: \"console=ttyS0 quiet\"}\n"
	"network:\n"
	"  mode: user\n"
	"  isolation: false\n"
	"  ipv6: True\n"
	"  host_access:\n"
	"    - allow-host-port tcp/8080\n"
	"    - allow-host-port udp/53\n"
	"    - allow-lan-host 192.168.1.50\n"
	"  forward: [ \"tcp/8080:80\", \"udp/8080:53\" ]\n"
	"shared_folders:\n"
	"  - {host: workspace, guest: /workspace, tag: ws, size: 20, isolation: false}\n"
	"  - host: /proj/sub/data\n"
	"ssh: {user: dev, key: keys/id_ed25519}\n"
	"autoconnect: console\n"
	"cloud_init_wait: false\n"
	"timeouts: {boot: 10, ssh: 20, cloud_init: 30, shutdown: 40}\n";

static void test_every_key(void)
{
	struct cfg *c = load(full);
	const struct cfg_vm *v;
	char a[INET_ADDRSTRLEN];

	ok(c != NULL, "full config loads%s%s", c ? "" : ": ", c ? "" : err.msg);
	if (!c)
		return;
	v = &c->vms[0];
	ok(!strcmp(v->name, "web-1"), "name");
	ok(str_eq(v->image, "/proj/images/base.qcow2"), "relative image path made absolute");
	ok(str_eq(v->image_sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"),
	   "image_sha256 lowercased");
	ok(v->cpus == 8 && v->memory_mib == 8192 && v->disk_gib == 40, "cpus, memory, disk");
	ok(v->accel == CFG_ACCEL_TCG && v->firmware == CFG_FW_BIOS, "accel, firmware");
	ok(str_eq(v->kernel.path, "/proj/k/vmlinuz") && str_eq(v->kernel.initrd, "/proj/k/initrd.img") &&
	   str_eq(v->kernel.cmdline, "console=ttyS0 quiet"), "kernel path/initrd resolved, cmdline kept");
	ok(v->network.mode == CFG_NET_USER && !v->network.isolation && v->network.ipv6,
	   "network mode, isolation, ipv6 (True accepted)");
	ok(v->network.n_host_access == 3 && v->network.host_access[0].kind == CFG_HA_HOST_PORT &&
	   v->network.host_access[0].proto == CFG_PROTO_TCP && v->network.host_access[0].port == 8080 &&
	   v->network.host_access[1].proto == CFG_PROTO_UDP && v->network.host_access[1].port == 53 &&
	   v->network.host_access[2].kind == CFG_HA_LAN_HOST &&
	   !strcmp(inet_ntop(AF_INET, &v->network.host_access[2].addr, a, sizeof(a)), "192.168.1.50"),
	   "host_access entries");
	ok(v->network.n_forward == 2 && v->network.forward[0].proto == CFG_PROTO_TCP &&
	   v->network.forward[0].host_port == 8080 && v->network.forward[0].guest_port == 80 &&
	   v->network.forward[1].proto == CFG_PROTO_UDP && v->network.forward[1].host_port == 8080,
	   "forwards (same host port on tcp and udp is fine)");
	ok(v->n_shares == 2 && str_eq(v->shares[0].host, "/proj/workspace") &&
	   str_eq(v->shares[0].guest, "/workspace") && str_eq(v->shares[0].tag, "ws") &&
	   v->shares[0].size_gib == 20 && !v->shares[0].isolation, "share with every key");
	ok(v->n_shares == 2 && str_eq(v->shares[1].host, "/proj/sub/data") &&
	   str_eq(v->shares[1].guest, "/data") && str_eq(v->shares[1].tag, "data") &&
	   v->shares[1].size_gib == 10 && v->shares[1].isolation,
	   "share defaults: guest /<base>, tag <base>, 10 GiB, isolated");
	ok(str_eq(v->ssh.user, "dev") && v->ssh.key == CFG_KEY_PATH &&
	   str_eq(v->ssh.key_path, "/proj/keys/id_ed25519"), "ssh user and key path");
	ok(v->autoconnect == CFG_AUTO_CONSOLE && !v->cloud_init_wait, "autoconnect, cloud_init_wait");
	ok(v->timeouts.boot == 10 && v->timeouts.ssh == 20 && v->timeouts.cloud_init == 30 &&
	   v->timeouts.shutdown == 40, "timeouts");
	cfg_free(c);
}

static void test_vms(void)
{
	struct cfg *c = load("cpus: 4\n"
			     "network: {mode: user, ipv6: true}\n"
			     "timeouts: {boot: 99}\n"
			     "vms:\n"
			     "  - name: a\n"
			     "  - name: b\n"
			     "    cpus: 1\n"
			     "    network: {ipv6: false}\n"
			     "    kernel: {path: /proj/boot/vmlinuz}\n");

	ok(c != NULL, "vms: list loads%s%s", c ? "" : ": ", c ? "" : err.msg);
	if (!c)
		return;
	ok(c->n_vms == 2, "two VMs");
	ok(!strcmp(c->vms[0].name, "a") && c->vms[0].cpus == 4 && c->vms[0].network.mode == CFG_NET_USER &&
	   c->vms[0].network.ipv6 && c->vms[0].timeouts.boot == 99 && c->vms[0].timeouts.ssh == 300,
	   "top-level keys are defaults for each VM");
	ok(c->vms[1].cpus == 1 && !c->vms[1].network.ipv6 && c->vms[1].network.mode == CFG_NET_USER,
	   "a VM's keys override, mappings merge key by key");
	ok(str_eq(c->vms[0].image, "debian-12") && c->vms[1].image == NULL,
	   "kernel without image: image is NULL (no disk)");
	ok(cfg_find_vm(c, "b") == &c->vms[1] && cfg_find_vm(c, NULL) == &c->vms[0],
	   "cfg_find_vm: by name, first when NULL");
	cfg_free(c);

	ok(strstr(load_err("vms:\n  - name: a\n  - name: a\n"), "hutch.yaml:3:11: name: 'a' is used by another VM"),
	   "duplicate VM names refused");
	ok(strstr(load_err("name: x\nvms:\n  - name: a\n"), "hutch.yaml:1:1: 'name' cannot be a default"),
	   "name beside vms: refused");
	ok(strstr(load_err("vms: []\n"), "the list is empty"), "empty vms: refused");
	ok(strstr(load_err("vms:\n  - name: a\n    vms: []\n"), "unknown key 'vms'"), "vms inside vms refused");
}

static void test_image_kernel(void)
{
	struct cfg *c;

	c = load("name: a\nkernel: {path: k}\nimage: debian-12\n");
	ok(c && str_eq(c->vms[0].image, "debian-12") && str_eq(c->vms[0].kernel.path, "/proj/k"),
	   "kernel with image keeps the image");
	cfg_free(c);
	c = load("name: a\nimage: https://example.org/x.qcow2\n");
	ok(c && str_eq(c->vms[0].image, "https://example.org/x.qcow2"), "https URL kept as is");
	cfg_free(c);
	c = load("name: a\nimage: disk.img\n");
	ok(c && str_eq(c->vms[0].image, "/proj/disk.img"), "bare .img name is a local path");
	cfg_free(c);
	c = load("name: a\nimage: /proj/./x/../d.qcow2\n");
	ok(c && str_eq(c->vms[0].image, "/proj/d.qcow2"), "absolute path normalised lexically");
	cfg_free(c);
	ok(strstr(load_err("name: a\nimage: /abs/d.qcow2\n"), "hutch.yaml:2:8: image: '/abs/d.qcow2' is "
							       "outside the project directory"),
	   "an image outside the project refused");
	is_int(cfg_load_buffer("name: a\nkernel: {path: ../k}\n", 29, "hutch.yaml", "/proj", &c, &err),
	       -EPERM, "a path outside the project is -EPERM (exit 77)");
	ok(strstr(load_err("name: a\nimage: http://example.org/x.qcow2\n"), "use https://"),
	   "plain http refused with a hint");
	ok(strstr(load_err("name: a\nkernel: {initrd: i}\n"), "hutch.yaml:2:9: kernel: missing 'path'"),
	   "kernel without path refused");
}

static void test_paths(void)
{
	struct cfg *c;
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

	setenv("HOME", "/proj/u", 1);
	c = load("name: a\nssh: {key: ~/.ssh/id}\n");
	ok(c && str_eq(c->vms[0].ssh.key_path, "/proj/u/.ssh/id"), "~/ is $HOME");
	cfg_free(c);
	setenv("HOME", "/home/u", 1);
	ok(strstr(load_err("name: a\nssh: {key: ~/.ssh/id}\n"), "outside the project"),
	   "~/.ssh is outside the project: refused");
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	free(home);
	c = load("name: a\nssh: {key: generated}\n");
	ok(c && c->vms[0].ssh.key == CFG_KEY_GENERATED && !c->vms[0].ssh.key_path, "ssh key generated");
	cfg_free(c);
	ok(strstr(load_err("name: a\nshared_folders: [{host: ../sibling}]\n"), "outside the project"),
	   "a share beside the project is refused");
	ok(strstr(load_err("name: a\nshared_folders: [{host: hooks/x}]\n"), "runs on the host"),
	   "a share inside hooks/ is refused");
	ok(strstr(load_err("name: a\nssh: {key: \"{{ lookup('pipe', 'id') }}\"}\n"),
		  "ssh.key: '{{', '{%' and '{#' are not allowed"), "Jinja in a value refused");
	ok(strstr(load_err("name: a\nfirmware: uefi\n"), "hutch.yaml:2:11: firmware: uefi is not supported"),
	   "firmware: uefi refused");
	ok(strstr(load_err("name: a\nshared_folders: [{host: .}]\n"), "is the project directory"),
	   "sharing the project directory refused");
	ok(strstr(load_err("name: a\nshared_folders: [{host: ..}]\n"), "is the project directory or contains"),
	   "sharing a parent of the project refused");
	ok(strstr(load_err("name: a\nshared_folders: [{host: /}]\n"), "contains"), "sharing / refused");
	ok(strstr(load_err("name: a\nshared_folders: [{host: a/x}, {host: b/x}]\n"), "tag 'x' is used twice"),
	   "duplicate tags refused");
}

static void test_errors(void)
{
	ok(strstr(load_err("name: a\ncpu: 4\n"), "hutch.yaml:2:1: unknown key 'cpu' (did you mean 'cpus'?)"),
	   "unknown key with suggestion");
	ok(strstr(load_err("name: a\nnetwork: {mdoe: nat}\n"), "did you mean 'mode'?"),
	   "suggestion at a nested level (swap)");
	ok(strstr(load_err("name: a\ncpus: 0\n"), "hutch.yaml:2:7: cpus: 0 is out of range 1..256"),
	   "out of range, with the range");
	ok(strstr(load_err("name: a\nmemory: 99999999999999999999\n"), "out of range 128..1048576"),
	   "overflowing number is out of range");
	ok(strstr(load_err("name: a\ncpus: two\n"), "expected an integer"), "type: integer");
	ok(strstr(load_err("name: a\ncpus: \"2\"\n"), "expected an integer"), "quoted number is a string");
	ok(strstr(load_err("name: a\nnetwork: nat\n"), "expected a mapping"), "type: mapping");
	ok(strstr(load_err("name: a\ncloud_init_wait: yes\n"), "yes/no/on/off are not accepted"),
	   "yes is not a boolean");
	ok(strstr(load_err("name: a\nname: b\n"), "hutch.yaml:2:1: duplicate key 'name' (first at line 1)"),
	   "duplicate key");
	ok(strstr(load_err("cpus: 2\n"), "missing 'name:'"), "name required");
	ok(strstr(load_err("name: Agent\n"), "not a valid VM name"), "bad name");
	ok(strstr(load_err("name: a\nx: &a 1\n"), "anchors"), "anchor refused");
	ok(strstr(load_err("name: a\n  b: c\n"), "hutch.yaml:2:4: YAML syntax error"), "syntax error position");
	ok(strstr(load_err(""), "empty"), "empty file");
	ok(strstr(load_err("name: a\n---\nname: b\n"), "only one YAML document"), "two documents");
	ok(strstr(load_err("name: a\nnetwork: {host_access: [allow-lan-host 8.8.8.8]}\n"),
		  "not a LAN address"), "public address in allow-lan-host refused");
	ok(strstr(load_err("name: a\nnetwork: {forward: [tcp/80:80, tcp/80:81]}\n"), "forwarded twice"),
	   "duplicate forward refused");
	ok(strstr(load_err("name: a\nnetwork: {forward: [tcp/0:80]}\n"), "1..65535"), "port 0 refused");
	ok(strstr(load_err("name: a\nnetwork: {mode: none, forward: [tcp/80:80]}\n"), "not none"),
	   "forward without a network refused");
	ok(strstr(load_err("name: a\ntimeouts: {boot: 86401}\n"), "1..86400"), "timeout range");
	ok(strstr(load_err("name: a\nimage_sha256: abc\n"), "64 hexadecimal"), "sha256 length");
	ok(strstr(load_err("name: a\nkernel: {path: k, cmdline: \"a\\tb\"}\n"), "control characters"),
	   "control characters refused");
}

static void test_limits(void)
{
	const char bomb[] = "name: a\nl: &a [x, x]\nm: &b [*a, *a]\nn: [*b, *b]\n";
	size_t n = 1024 * 1024 + 16, i;
	char *big = malloc(n + 1), *deep = malloc(200);

	ok(strstr(load_err(bomb), "anchors"), "billion laughs refused");
	if (big) {
		memset(big, '#', n);
		big[n] = '\0';
		ok(strstr(load_err(big), "larger than"), "over 1 MiB refused");
	}
	if (deep) {
		for (i = 0; i < 40; i++)
			deep[i] = '[';
		deep[i] = '\0';
		ok(strstr(load_err(deep), "nested too deeply"), "depth capped");
	}
	free(big);
	free(deep);
}

static void test_round_trip(const char *what, const char *yaml)
{
	struct cfg *c = load(yaml), *c2 = NULL;
	json_t *j1 = NULL, *j2 = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *m;

	if (!c) {
		ok(0, "round trip %s: %s", what, err.msg);
		return;
	}
	m = open_memstream(&text, &len);
	ok(m && cfg_print(m, c) == 0, "cfg_print %s", what);
	if (m)
		fclose(m);
	ok(text && cfg_load_buffer(text, len, "p.yaml", "/proj", &c2, &err) == 0,
	   "printed %s loads again (paths are absolute)", what);
	if (c2) {
		cfg_to_json(c, &j1);
		cfg_to_json(c2, &j2);
		ok(json_equal(json_object_get(j1, "vms"), json_object_get(j2, "vms")),
		   "round trip %s gives the same config", what);
	}
	json_decref(j1);
	json_decref(j2);
	free(text);
	cfg_free(c);
	cfg_free(c2);
}

static void test_file(void)
{
	char dir[] = "/tmp/t_cfg.XXXXXX", path[64], cwd[4096];
	struct cfg *c = NULL;
	int rc;

	if (!mkdtemp(dir) || !getcwd(cwd, sizeof(cwd))) {
		ok(0, "temp dir");
		return;
	}
	snprintf(path, sizeof(path), "%s/hutch.yaml", dir);
	util_write_atomic(path, "name: f\nimage: ./d.qcow2\n", 25, 0644);
	rc = cfg_load(path, &c, &err);
	ok(rc == 0 && c && !strncmp(c->path, dir, strlen(dir)) && !strcmp(c->dir, dir),
	   "cfg_load from a file: path and dir");
	ok(c && !strncmp(c->vms[0].image, dir, strlen(dir)), "image relative to the file's directory");
	cfg_free(c);
	c = NULL;
	if (chdir(dir) == 0) {
		rc = cfg_load("hutch.yaml", &c, &err);
		ok(rc == 0 && c && !strcmp(c->dir, dir), "relative file name: dir made absolute");
		cfg_free(c);
		c = NULL;
		if (chdir(cwd))
			ok(0, "chdir back");
	}
	rc = cfg_load("/nonexistent/hutch.yaml", &c, &err);
	ok(rc == -ENOENT && strstr(err.msg, "/nonexistent/hutch.yaml: cannot read"), "missing file: -ENOENT");
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_defaults();
	test_every_key();
	test_empty_sections();
	test_vms();
	test_image_kernel();
	test_paths();
	test_errors();
	test_limits();
	test_file();
	test_round_trip("minimal", "name: agent\n");
	test_round_trip("every key", full);
	test_round_trip("vms", "cpus: 3\nvms:\n  - name: a\n  - name: b\n    kernel: {path: k, cmdline: \"x=\\\"y\\\" é ✓\"}\n"
			       "    shared_folders: [{host: \"x y\", guest: /x, tag: xy}]\n");
	return tap_done();
}
