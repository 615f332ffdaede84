// SPDX-License-Identifier: MIT
/**
 * DOC: cmd_images - `hutch images [list|pull|rm|build]`
 *
 * The cache is $XDG_CACHE_HOME/hutch/images (see images/img.c for its
 * layout).  `build` runs a recipe script from images/recipes (a Debian
 * package based image for hosts without internet, and the test guests) and
 * files its output in the cache under the recipe's name, so that
 * `image: NAME` in hutch.yaml finds it without a network.
 */
#include "images/img.h"
#include "src/cmd.h"
#include "src/log.h"
#include "src/proc.h"
#include "src/trust.h"
#include "src/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static const char *const img_side_ext[] = { ".sha256", ".source", ".verified", ".part", ".sums" };

static void images_usage(void)
{
	fprintf(stderr, "usage: hutch images [list]\n"
			"       hutch images pull NAME|URL [--sha256 HEX]\n"
			"       hutch images rm NAME\n"
			"       hutch images build NAME [--force]\n");
}

/* an image name as `images rm/build` take it: [a-z0-9][a-z0-9._-]{0,63} */
static bool images_name_ok(const char *s)
{
	size_t i;

	if (!s || !isalnum((unsigned char)s[0]))
		return false;
	for (i = 0; s[i]; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return i <= 64;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && !strcmp(s + a - b, suf);
}

/* first line's value of "source=" in <path>.source, or "?" */
static void images_source(const char *path, char *buf, size_t n)
{
	char side[PATH_MAX], *txt = NULL;

	if (util_snprintf(buf, n, "?") || util_snprintf(side, sizeof(side), "%s.source", path) ||
	    util_read_file(side, 16384, &txt, NULL))
		return;
	if (!strncmp(txt, "source=", 7)) {
		char *nl = strchr(txt, '\n');

		if (nl)
			*nl = '\0';
		log_escape(buf, n, txt + 7, strlen(txt + 7));
	}
	free(txt);
}

static void images_human(uint64_t b, char *buf, size_t n)
{
	if (b >= (1ull << 30))
		snprintf(buf, n, "%.1fG", (double)b / (double)(1ull << 30));
	else
		snprintf(buf, n, "%.1fM", (double)b / (double)(1ull << 20));
}

static int images_list(struct cli *cli)
{
	char dir[PATH_MAX], path[PATH_MAX], side[PATH_MAX], src[1024], name[256], hum[32];
	json_t *arr = cli->json ? json_array() : NULL;
	struct dirent **ents = NULL;
	int n, i, rc = EXIT_OK;

	if (img_cache_dir(dir, sizeof(dir))) {
		log_err("no cache directory");
		return EXIT_ERR;
	}
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		if (errno != ENOENT) {
			log_errno(-errno, "%s", dir);
			return EXIT_ERR;
		}
		n = 0;
	}
	if (!cli->json && n >= 0)
		printf("%-28s %8s  %-12s  %s\n", "NAME", "SIZE", "SHA256", "SOURCE");
	for (i = 0; i < n; i++) {
		const char *f = ents[i]->d_name;
		char *sha = NULL;
		struct stat st;
		bool side_file = false;

		for (size_t k = 0; k < UTIL_ARRAY_SIZE(img_side_ext); k++)
			if (ends_with(f, img_side_ext[k]))
				side_file = true;
		if (f[0] == '.' || side_file || strstr(f, ".tmp.") || !strncmp(f, "build-", 6))
			continue;
		if (util_path_join(path, sizeof(path), dir, f) ||
		    util_snprintf(side, sizeof(side), "%s.sha256", path) ||
		    stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
		    util_read_file(side, 8192, &sha, NULL))
			continue;
		snprintf(name, sizeof(name), "%s", f);
		if (ends_with(name, ".qcow2") && strncmp(name, "u-", 2))
			name[strlen(name) - 6] = '\0';
		images_source(path, src, sizeof(src));
		if (strlen(sha) < 64) {
			free(sha);
			continue;
		}
		sha[64] = '\0';
		if (arr) {
			json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:s, s:s}", "name", name,
							     "path", path, "size",
							     (json_int_t)st.st_size, "sha256", sha,
							     "source", src));
		} else {
			images_human((uint64_t)st.st_size, hum, sizeof(hum));
			printf("%-28s %8s  %.12s  %s\n", name, hum, sha, src);
		}
		free(sha);
	}
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	if (arr) {
		if (json_dumpf(arr, stdout, JSON_INDENT(2)) < 0)
			rc = EXIT_ERR;
		putchar('\n');
		json_decref(arr);
	}
	return rc;
}

static int images_pull(struct cli *cli, int argc, char **argv)
{
	const char *spec = NULL, *sha = NULL;
	struct img_ref ref;
	char cwd[PATH_MAX];
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sha256") && i + 1 < argc) {
			sha = argv[++i];
		} else if (!strncmp(argv[i], "--sha256=", 9)) {
			sha = argv[i] + 9;
		} else if (argv[i][0] == '-' || spec) {
			images_usage();
			return EXIT_USAGE;
		} else {
			spec = argv[i];
		}
	}
	if (!spec) {
		images_usage();
		return EXIT_USAGE;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return EXIT_ERR;
	rc = img_resolve(spec, sha, cli->dir[0] ? cli->dir : cwd, cli->tty && !cli->quiet, &ref);
	if (rc == -EINVAL && sha && strlen(sha) != 64)
		return EXIT_USAGE;
	if (rc)
		return rc == -ELIBACC ? EXIT_NODEP : EXIT_ERR; /* libcurl/libcrypto missing */
	if (cli->json) {
		json_t *o = json_pack("{s:s, s:s, s:I}", "path", ref.path, "format", ref.format,
				      "vsize", (json_int_t)ref.vsize);

		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
	} else {
		printf("%s\n", ref.path);
	}
	return EXIT_OK;
}

/* the cached file for NAME: <NAME>.qcow2 for aliases and builds, else NAME itself */
static int images_find(const char *name, char *path, size_t n)
{
	char dir[PATH_MAX], file[300];
	int rc;

	rc = img_cache_dir(dir, sizeof(dir));
	if (rc)
		return rc;
	if (!util_snprintf(file, sizeof(file), "%s.qcow2", name) &&
	    !util_path_join(path, n, dir, file) && access(path, F_OK) == 0)
		return 0;
	rc = util_path_join(path, n, dir, name);
	if (rc)
		return rc;
	return access(path, F_OK) == 0 ? 0 : -ENOENT;
}

/* warn about VM disks whose backing file is @path: they stop working without it */
static void images_warn_users(const char *path)
{
	char data[PATH_MAX], vms[PATH_MAX], disk[PATH_MAX], backing[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (util_data_dir(data, sizeof(data)) || util_path_join(vms, sizeof(vms), data, "vms"))
		return;
	d = opendir(vms);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (util_snprintf(disk, sizeof(disk), "%s/%s/disk.qcow2", vms, de->d_name) ||
		    img_qcow2_backing(disk, backing, sizeof(backing)))
			continue;
		if (!strcmp(backing, path))
			log_warn("VM %s uses %s as its base: it will not start until it is "
				 "destroyed and created again",
				 de->d_name, path);
	}
	closedir(d);
}

static int images_rm(int argc, char **argv)
{
	char path[PATH_MAX], side[PATH_MAX];

	if (argc != 2 || !images_name_ok(argv[1])) {
		images_usage();
		return EXIT_USAGE;
	}
	if (images_find(argv[1], path, sizeof(path))) {
		log_err("no cached image '%s' (see 'hutch images list')", argv[1]);
		return EXIT_ERR;
	}
	images_warn_users(path);
	if (unlink(path) < 0) {
		log_errno(-errno, "%s", path);
		return EXIT_ERR;
	}
	for (size_t k = 0; k < 3; k++)
		if (!util_snprintf(side, sizeof(side), "%s%s", path, img_side_ext[k]))
			unlink(side);
	log_info("removed %s", path);
	return EXIT_OK;
}

/* $HUTCH_RECIPES, else <dir of this executable>/images/recipes (source tree),
 * else <exe dir>/../share/hutch/recipes (installed), else DATADIR's */
static int images_recipes_dir(char *buf, size_t n)
{
	const char *env = getenv("HUTCH_RECIPES");
	char exe[PATH_MAX];
	ssize_t l;

	if (env && *env)
		return util_snprintf(buf, n, "%s", env);
	l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (l > 0) {
		char *slash;

		exe[l] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			struct stat st;

			*slash = '\0';
			if (!util_snprintf(buf, n, "%s/images/recipes", exe) && stat(buf, &st) == 0 &&
			    S_ISDIR(st.st_mode))
				return 0;
			/* installed as PREFIX/bin/hutch: PREFIX/share/hutch/recipes,
			 * whatever PREFIX the binary was built with */
			if (!util_snprintf(buf, n, "%s/../share/hutch/recipes", exe) &&
			    stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
				return 0;
		}
	}
	return util_snprintf(buf, n, "%s", HUTCH_DATADIR "/recipes");
}

/*
 * The recipe's environment: the user's, plus HUTCH_GUEST_CACHE (where
 * recipes keep downloaded packages between builds) under hutch's cache dir
 * unless the user set one.  @env has room for environ + 2; @buf holds the
 * added variable.
 */
static const char *const *images_recipe_env(const char **env, size_t cap, char *buf, size_t n)
{
	char cache[PATH_MAX];
	size_t k = 0;

	for (char **e = environ; *e && k + 2 < cap; e++)
		env[k++] = *e;
	if (!getenv("HUTCH_GUEST_CACHE") && !util_cache_dir(cache, sizeof(cache)) &&
	    !util_snprintf(buf, n, "HUTCH_GUEST_CACHE=%s/recipes", cache))
		env[k++] = buf;
	env[k] = NULL;
	return env;
}

static int images_build(struct cli *cli, int argc, char **argv)
{
	char recipes[PATH_MAX], script[PATH_MAX], dir[PATH_MAX], out[PATH_MAX], img[PATH_MAX];
	char final[PATH_MAX], sha[65], source[PATH_MAX + 16], file[80], side[PATH_MAX];
	char why[TRUST_WHY_MAX];
	const char *name = NULL;
	struct proc_fdmap fds[2] = { { 2, 1 }, { 2, 2 } };
	struct img_ref ref;
	bool force = false;
	int i, rc, st, code = EXIT_ERR;
	pid_t pid;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force"))
			force = true;
		else if (argv[i][0] == '-' || name)
			name = "";
		else
			name = argv[i];
	}
	if (!name || !images_name_ok(name)) {
		images_usage();
		return EXIT_USAGE;
	}
	if (images_recipes_dir(recipes, sizeof(recipes)) ||
	    util_snprintf(script, sizeof(script), "%s/%s.sh", recipes, name) ||
	    img_cache_dir(dir, sizeof(dir)) || util_snprintf(file, sizeof(file), "%s.qcow2", name) ||
	    util_path_join(final, sizeof(final), dir, file))
		return EXIT_ERR;
	if (access(script, R_OK) != 0) {
		log_err("no recipe %s", script);
		return EXIT_ERR;
	}
	if (!force && access(final, F_OK) == 0) {
		log_info("%s is already built (--force builds it again)", final);
		printf("%s\n", final);
		return EXIT_OK;
	}
	rc = trust_dir(dir, 2, why, sizeof(why));	/* the cache: 0700, nobody else's */
	if (rc == -EPERM)
		log_err("%s", why);
	if (rc || util_snprintf(out, sizeof(out), "%s/build-%s.XXXXXX", dir, name) || !mkdtemp(out)) {
		log_errno(rc ? rc : -errno, "%s", dir);
		return EXIT_ERR;
	}
	{
		/* run the script itself when executable, else through bash */
		const char *av_exec[] = { script, out, NULL };
		const char *av_bash[] = { "bash", script, out, NULL };
		size_t n_env = 0;
		const char **env;
		const char *const *envp;
		char gc[PATH_MAX + 32];

		while (environ[n_env])
			n_env++;
		env = calloc(n_env + 3, sizeof(*env));
		if (!env)
			goto out;
		envp = images_recipe_env(env, n_env + 3, gc, sizeof(gc));
		struct proc_opts o = {
			.argv = access(script, X_OK) == 0 ? av_exec : av_bash,
			.envp = envp,
			.fds = fds,
			.n_fds = 2,
		};

		log_info("building %s with %s", name, script);
		rc = proc_spawn(&o, &pid, NULL);
		free(env);
		if (rc) {
			log_errno(rc, "%s", script);
			goto out;
		}
		rc = proc_wait(pid, &st);
		if (rc || proc_exit_code(st) != 0) {
			log_err("recipe %s failed (exit %d)", script, rc ? -1 : proc_exit_code(st));
			goto out;
		}
	}
	if (util_path_join(img, sizeof(img), out, "image.qcow2"))
		goto out;
	if (access(img, F_OK) != 0) {
		log_err("recipe %s left no image.qcow2 in its output directory", script);
		goto out;
	}
	if (img_probe(img, &ref))
		goto out;
	rc = img_hash_file(img, "sha256", sha, sizeof(sha));
	if (rc) {
		log_errno(rc, "%s", img);
		goto out;
	}
	/* the old records go first: a reader never pairs the new image with the old sha256 */
	for (size_t k = 0; k < 3; k++)
		if (!util_snprintf(side, sizeof(side), "%s%s", final, img_side_ext[k]))
			unlink(side);
	if (rename(img, final) < 0) {
		log_errno(-errno, "%s", final);
		goto out;
	}
	if (util_snprintf(source, sizeof(source), "recipe:%s", script) ||
	    img_cache_record(final, sha, source, NULL)) {
		log_err("%s: could not record its sha256", final);
		goto out;
	}
	(void)cli;
	printf("%s\n", final);
	code = EXIT_OK;
out:
	util_rm_rf(out);
	return code;
}

static int cmd_images(struct cli *cli, struct vm_target *t, int argc, char **argv)
{
	const char *sub;
	int i, j;

	(void)t;
	/* --json is also taken after the verb: `hutch images list --json` */
	for (i = j = 0; i < argc; i++) {
		if (i > 0 && !strcmp(argv[i], "--json"))
			cli->json = true;
		else
			argv[j++] = argv[i];
	}
	argc = j;
	sub = argc > 1 ? argv[1] : "list";

	if (!strcmp(sub, "list")) {
		if (argc > 2) {
			images_usage();
			return EXIT_USAGE;
		}
		return images_list(cli);
	}
	if (!strcmp(sub, "pull"))
		return images_pull(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "rm"))
		return images_rm(argc - 1, argv + 1);
	if (!strcmp(sub, "build"))
		return images_build(cli, argc - 1, argv + 1);
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		images_usage();
		return EXIT_OK;
	}
	images_usage();
	return EXIT_USAGE;
}

static const char *const images_valopts[] = { "--sha256", NULL };

const struct cmd_entry cmd_images_entry = {
	.name = "images",
	.usage = "[list | pull NAME|URL [--sha256 HEX] | rm NAME | build NAME [--force]]",
	.summary = "manage the base image cache (--json)",
	.help = "Base images are downloaded once into $XDG_CACHE_HOME/hutch/images, verified\n"
		"(sha256 or sha512 from the distribution's checksum file, or image_sha256), and\n"
		"never modified: each VM's disk is a copy-on-write overlay over one.\n"
		"\n"
		"  list               cached images, their size and where they came from\n"
		"  pull NAME|URL      download and verify (aliases: debian-12, debian-13,\n"
		"                     ubuntu-24.04, fedora, arch; or an https URL)\n"
		"  rm NAME            remove a cached image\n"
		"  build NAME         make an image from Debian packages (debootstrap) for hosts\n"
		"                     without internet, cached under NAME (--force: again)\n"
		"\n"
		"Examples:\n"
		"  hutch images pull debian-12\n"
		"  hutch images build debian-12\n",
	.valopts = images_valopts,
	.fn = cmd_images,
};
