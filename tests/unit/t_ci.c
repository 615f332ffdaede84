// SPDX-License-Identifier: MIT
/* cloud-init user-data: parsing cloud-init.yml and rendering what the guest gets */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/ci.h"
#include "src/proc.h"
#include "src/util.h"
#include "tests/unit/tap.h"

#define KEY_A "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKr1111111111111111111111111111111111111111"
#define KEY_B "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKr2222222222222222222222222222222222222222"
#define HOST_PUB "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHo5555555555555555555555555555555555555555 hutch-t"
#define HOST_PRIV "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"

static int parse(const char *s, struct ci_info *i)
{
	return ci_parse(s, strlen(s), i);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

int main(void)
{
	static struct ci_info info;
	struct ci_mount mounts[] = { { "workspace", "/workspace" }, { "data", "/srv/my \"data\"" } };
	struct ci_input in = { .pubkey = KEY_A " hutch", .user = "alice", .host_priv = HOST_PRIV,
			       .host_pub = HOST_PUB, .mounts = mounts, .n_mounts = 2 };
	char *out = NULL, user[40];
	size_t len;
	const char *doc;

	/* first user */
	is_int(parse("#cloud-config\nusers:\n  - default\n  - name: dev\n    shell: /bin/bash\n  - name: other\n", &info), 0, "parse users list");
	ok(!strcmp(info.user, "dev"), "first user is the first mapping with a name, 'default' skipped (%s)", info.user);
	ok(info.kind == CI_KIND_CLOUD_CONFIG, "kind cloud-config");
	ok(!info.has_keys, "no keys in that file");
	is_int(parse("#cloud-config\nusers: [default, bob, {name: carol}]\n", &info), 0, "flow users list");
	ok(!strcmp(info.user, "bob"), "a plain string entry other than default counts (%s)", info.user);
	is_int(parse("#cloud-config\nwrite_files:\n  - path: /x\nusers:\n  - {gecos: x}\n  - name: eve\n", &info), 0, "mapping without name skipped");
	ok(!strcmp(info.user, "eve"), "eve (%s)", info.user);
	is_int(parse("#cloud-config\nfoo:\n  users:\n    - name: nested\n", &info), 0, "nested users key");
	ok(info.user[0] == '\0', "only the top-level users: counts");
	is_int(parse("#cloud-config\nusers:\n  - name: \"Bad User\"\n  - name: ok_user\n", &info), 0, "invalid name");
	ok(!strcmp(info.user, "ok_user"), "an invalid user name is not taken (%s)", info.user);

	/* keys */
	is_int(parse("#cloud-config\nusers:\n  - name: dev\n    ssh_authorized_keys:\n      - __HUTCH_PUBKEY__\n", &info), 0, "placeholder");
	ok(info.has_placeholder && info.has_keys, "placeholder means keys");
	is_int(parse("#cloud-config\nusers:\n  - name: dev\n    ssh_authorized_keys:\n      - " KEY_B " hutch\n      - " KEY_A " me@laptop\n", &info), 0, "hutch key line");
	is_int(info.n_hutch_keys, 1, "one key with comment hutch");
	ok(!strcmp(info.hutch_keys[0], KEY_B), "the hutch key recorded without comment");
	ok(!ci_key_same(info.hutch_keys[0], KEY_A " hutch"), "mismatch detected against another key");
	ok(ci_key_same(info.hutch_keys[0], KEY_B " hutch"), "same key matches whatever the comment");
	ok(info.has_keys, "keys present");
	ok(!ci_key_valid("ssh-ed25519"), "type alone is not a key");
	ok(!ci_key_valid("ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIKr1"), "unknown type is not a key");

	/* mounts, other kinds, errors */
	is_int(parse("#cloud-config\nmounts:\n  - [a, /a]\n", &info), 0, "mounts");
	ok(info.has_mounts, "user mounts seen");
	is_int(parse("#!/bin/sh\necho __HUTCH_PUBKEY__ > /root/k\n", &info), 0, "shell script");
	ok(info.kind == CI_KIND_OTHER && info.has_placeholder, "script: other kind, placeholder seen");
	ok(parse("#cloud-config\nusers: [\n", &info) == -EINVAL, "broken YAML refused");
	{
		char deep[400];
		size_t i;

		strcpy(deep, "#cloud-config\n");
		for (i = 0; i < 100; i++)
			strcat(deep, "[");
		ok(parse(deep, &info) == -EINVAL, "nesting over the cap refused");
	}
	ok(ci_parse("x", CI_USER_MAX + 1, &info) == -EFBIG, "size cap");

	/* default user-data */
	in.user_file = NULL;
	is_int(ci_render(&in, &out, &len), 0, "render default");
	doc = out;
	ok(!strncmp(doc, "#cloud-config\n", 14), "default is #cloud-config");
	ok(strstr(doc, "  - name: alice\n") != NULL, "default user");
	ok(strstr(doc, "NOPASSWD:ALL") != NULL, "passwordless sudo");
	ok(strstr(doc, "\"" KEY_A " hutch\"") != NULL, "managed key authorized");
	ok(strstr(doc, "ssh_deletekeys: true\nssh_genkeytypes: [ed25519]\n") != NULL, "image host keys deleted, none generated");
	ok(strstr(doc, "  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    b3Bl") != NULL, "host private key as block scalar");
	ok(strstr(doc, "  ed25519_public: \"" HOST_PUB "\"") != NULL, "host public key");
	ok(strstr(doc, "  - [\"workspace\", \"/workspace\", \"virtiofs\", \"defaults,nofail\", \"0\", \"0\"]") != NULL, "share mount entry");
	ok(strstr(doc, "\"/srv/my \\\"data\\\"\"") != NULL, "guest path quoted");
	free(out);

	/* user cloud-config: multipart */
	{
		const char *u = "#cloud-config\nusers:\n  - name: dev\n    ssh_authorized_keys:\n      - __HUTCH_PUBKEY__\nruncmd:\n  - [echo, __HUTCH_PUBKEY__]";

		is_int(parse(u, &info), 0, "parse user file");
		in.user_file = u;
		in.user_len = strlen(u);
		in.info = &info;
		is_int(ci_render(&in, &out, &len), 0, "render multipart");
		doc = out;
		ok(!strncmp(doc, "Content-Type: multipart/mixed; boundary=\"", 41), "multipart/mixed header");
		ok(strstr(doc, "\nMIME-Version: 1.0\n") != NULL, "MIME-Version (cloud-init looks for it)");
		{
			char b[80];
			const char *q = doc + 41;
			size_t bl = strcspn(q, "\"");
			char close[90];

			snprintf(b, sizeof(b), "--%.*s\n", (int)bl, q);
			snprintf(close, sizeof(close), "--%.*s--\n", (int)bl, q);
			is_int(count(doc, b), 2, "two parts");
			ok(len >= strlen(close) && !strcmp(doc + len - strlen(close), close), "closing boundary last");
		}
		is_int(count(doc, "__HUTCH_PUBKEY__"), 0, "every placeholder replaced");
		is_int(count(doc, KEY_A " hutch"), 2, "by the key");
		ok(strstr(doc, "Content-Type: text/cloud-config; charset=\"utf-8\"\nMIME-Version: 1.0\nContent-Disposition: attachment; filename=\"cloud-init.yml\"\n\n#cloud-config\nusers:") != NULL, "user part first, as text/cloud-config");
		ok(strstr(doc, "[echo, " KEY_A " hutch]\n--") != NULL, "user text ends with a newline before the boundary");
		ok(strstr(doc, "filename=\"hutch.cfg\"\n\n#cloud-config\n") != NULL, "hutch part is cloud-config");
		ok(strstr(doc, "merge_how:\n  - name: list\n    settings: [append]\n  - name: dict\n    settings: [no_replace, recurse_list]\n") != NULL, "merge_how appends lists, merges dicts");
		ok(strstr(doc, "ssh_keys:\n  ed25519_private: |\n") != NULL, "host key in hutch part");
		ok(strstr(doc, "mounts:\n  - [\"workspace\"") != NULL, "share mounts added when the user has none");
		free(out);
	}
	{
		const char *u = "#cloud-config\nmounts:\n  - [x, /x]\n";

		parse(u, &info);
		in.user_file = u;
		in.user_len = strlen(u);
		is_int(ci_render(&in, &out, &len), 0, "render with user mounts");
		is_int(count(out, "mounts:"), 1, "no hutch mounts when the user wrote mounts:");
		free(out);
	}
	{
		const char *u = "#!/bin/sh\necho hi\n";

		parse(u, &info);
		in.user_file = u;
		in.user_len = strlen(u);
		is_int(ci_render(&in, &out, &len), 0, "render script");
		ok(strstr(out, "Content-Type: text/x-shellscript;") != NULL, "script passes through as x-shellscript");
		ok(strstr(out, "filename=\"hutch.cfg\"") != NULL, "plus the hutch part");
		free(out);
	}
	/* what cloud-init itself does with it: python's email parser, then YAML */
	{
		static const char py[] =
			"import email, sys, yaml\n"
			"m = email.message_from_string(open(sys.argv[1]).read())\n"
			"assert m.is_multipart() and m.get_content_type() == 'multipart/mixed'\n"
			"p = m.get_payload()\n"
			"assert [x.get_content_type() for x in p] == ['text/cloud-config', 'text/cloud-config']\n"
			"u = yaml.safe_load(p[0].get_payload(decode=True))\n"
			"h = yaml.safe_load(p[1].get_payload(decode=True))\n"
			"assert u['users'][0]['name'] == 'dev', u\n"
			"assert u['users'][0]['ssh_authorized_keys'] == [sys.argv[2]], u\n"
			"assert h['ssh_keys']['ed25519_private'].startswith('-----BEGIN OPENSSH PRIVATE KEY-----\\n'), h\n"
			"assert h['ssh_keys']['ed25519_public'] == sys.argv[3]\n"
			"assert h['ssh_deletekeys'] is True and h['ssh_genkeytypes'] == ['ed25519']\n"
			"assert h['merge_how'][0] == {'name': 'list', 'settings': ['append']}\n"
			"assert h['mounts'][1] == ['data', '/srv/my \"data\"', 'virtiofs', 'defaults,nofail', '0', '0'], h\n"
			"print('valid')\n";
		const char *u = "#cloud-config\nusers:\n  - name: dev\n    ssh_authorized_keys:\n      - __HUTCH_PUBKEY__\n";
		char tmpl[] = "/tmp/t_ci.XXXXXX", *pout = NULL;
		const char *argv[] = { "python3", "-c", py, tmpl, KEY_A " hutch", HOST_PUB, NULL };
		int fd = mkstemp(tmpl), status = -1;

		parse(u, &info);
		in.user_file = u;
		in.user_len = strlen(u);
		in.pubkey = KEY_A " hutch";
		is_int(ci_render(&in, &out, &len), 0, "render for python");
		ok(fd >= 0 && util_write_all(fd, out, len) == 0, "written to %s", tmpl);
		close(fd);
		is_int(proc_run(argv, NULL, &pout, 8192, &status), 0, "python3 ran");
		ok(proc_exit_code(status) == 0 && pout && strstr(pout, "valid"),
		   "MIME parses as cloud-init reads it, both parts valid YAML: %s", pout ? pout : "");
		free(pout);
		free(out);
		unlink(tmpl);
	}
	in.pubkey = KEY_A "\nevil: 1";
	ok(ci_render(&in, &out, &len) == -EINVAL, "a key with a newline is refused");

	/* default user */
	setenv("USER", "root", 1);
	ci_default_user(user, sizeof(user));
	ok(!strcmp(user, "hutch"), "root -> hutch");
	setenv("USER", "dana", 1);
	ci_default_user(user, sizeof(user));
	ok(!strcmp(user, "dana"), "$USER");
	setenv("USER", "Bad;name", 1);
	ci_default_user(user, sizeof(user));
	ok(!strcmp(user, "hutch"), "invalid $USER -> hutch");
	return tap_done();
}
