// SPDX-License-Identifier: MIT
/*
 * TEMPORARY weak stand-ins for cfg_load/cfg_free/cfg_find_vm, img_*, iso_write
 * until the real modules land on main.  The integrator deletes this file;
 * nothing may depend on it.  The config parser understands only what the
 * core's tests use: name, cpus, memory, accel, image, kernel{path,initrd,
 * cmdline}, network{mode}, timeouts{boot,shutdown}.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "images/img.h"
#include "images/iso.h"
#include "src/cfg.h"
#include "src/util.h"

static char *zz_abs(const char *dir, const char *v)
{
	char *s;

	if (v[0] == '/')
		return strdup(v);
	if (asprintf(&s, "%s/%s", dir, v) < 0)
		return NULL;
	return s;
}

static const char *zz_scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int zz_map(yaml_document_t *d, yaml_node_t *m, const char *path, struct cfg *c,
		  struct cfg_vm *vm, const char *section, struct cfg_error *e)
{
	yaml_node_pair_t *p;

	if (!m || m->type != YAML_MAPPING_NODE) {
		snprintf(e->msg, sizeof(e->msg), "%s:1:1: expected a mapping", path);
		return -EINVAL;
	}
	for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(d, p->key);
		yaml_node_t *vn = yaml_document_get_node(d, p->value);
		const char *k = zz_scalar(kn), *v = zz_scalar(vn);
		long l;

		if (!k)
			goto bad;
		if (!strcmp(section, "")) {
			if (!strcmp(k, "name") && v && util_name_valid(v))
				snprintf(vm->name, sizeof(vm->name), "%s", v);
			else if (!strcmp(k, "cpus") && v && !util_parse_long(v, 1, 256, &l))
				vm->cpus = (unsigned)l;
			else if (!strcmp(k, "memory") && v && !util_parse_long(v, 128, 1048576, &l))
				vm->memory_mib = (unsigned)l;
			else if (!strcmp(k, "accel") && v && !strcmp(v, "auto"))
				vm->accel = CFG_ACCEL_AUTO;
			else if (!strcmp(k, "accel") && v && !strcmp(v, "kvm"))
				vm->accel = CFG_ACCEL_KVM;
			else if (!strcmp(k, "accel") && v && !strcmp(v, "tcg"))
				vm->accel = CFG_ACCEL_TCG;
			else if (!strcmp(k, "image") && v)
				vm->image = strdup(v);
			else if (!strcmp(k, "kernel")) {
				if (zz_map(d, vn, path, c, vm, "kernel", e))
					return -EINVAL;
			} else if (!strcmp(k, "network")) {
				if (zz_map(d, vn, path, c, vm, "network", e))
					return -EINVAL;
			} else if (!strcmp(k, "timeouts")) {
				if (zz_map(d, vn, path, c, vm, "timeouts", e))
					return -EINVAL;
			} else
				goto bad;
		} else if (!strcmp(section, "kernel") && v) {
			if (!strcmp(k, "path"))
				vm->kernel.path = zz_abs(c->dir, v);
			else if (!strcmp(k, "initrd"))
				vm->kernel.initrd = zz_abs(c->dir, v);
			else if (!strcmp(k, "cmdline"))
				vm->kernel.cmdline = strdup(v);
			else
				goto bad;
		} else if (!strcmp(section, "network") && v && !strcmp(k, "mode")) {
			if (!strcmp(v, "nat"))
				vm->network.mode = CFG_NET_NAT;
			else if (!strcmp(v, "user"))
				vm->network.mode = CFG_NET_USER;
			else if (!strcmp(v, "none"))
				vm->network.mode = CFG_NET_NONE;
			else
				goto bad;
		} else if (!strcmp(section, "timeouts") && v && !util_parse_long(v, 1, 86400, &l)) {
			if (!strcmp(k, "boot"))
				vm->timeouts.boot = (unsigned)l;
			else if (!strcmp(k, "shutdown"))
				vm->timeouts.shutdown = (unsigned)l;
			else if (!strcmp(k, "ssh"))
				vm->timeouts.ssh = (unsigned)l;
			else if (!strcmp(k, "cloud_init"))
				vm->timeouts.cloud_init = (unsigned)l;
			else
				goto bad;
		} else {
			goto bad;
		}
		continue;
bad:
		snprintf(e->msg, sizeof(e->msg), "%s:%lu:%lu: bad key or value '%s'", path,
			 (unsigned long)(kn ? kn->start_mark.line + 1 : 0),
			 (unsigned long)(kn ? kn->start_mark.column + 1 : 0), k ? k : "?");
		return -EINVAL;
	}
	return 0;
}

__attribute__((weak)) void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_vms; i++) {
		free(c->vms[i].image);
		free(c->vms[i].kernel.path);
		free(c->vms[i].kernel.initrd);
		free(c->vms[i].kernel.cmdline);
	}
	free(c->vms);
	free(c->path);
	free(c->dir);
	free(c);
}

__attribute__((weak)) int cfg_load(const char *path, struct cfg **out, struct cfg_error *e)
{
	yaml_parser_t yp;
	yaml_document_t d;
	struct cfg *c;
	FILE *f;
	char *tmp;
	int rc;

	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		snprintf(e->msg, sizeof(e->msg), "%s: %s", path, strerror(errno));
		return rc;
	}
	c = calloc(1, sizeof(*c));
	c->vms = calloc(1, sizeof(*c->vms));
	c->n_vms = 1;
	c->path = realpath(path, NULL);
	tmp = strdup(c->path ? c->path : path);
	c->dir = strdup(dirname(tmp));
	free(tmp);
	c->vms[0] = (struct cfg_vm){ .cpus = 2, .memory_mib = 2048, .network.mode = CFG_NET_NAT,
				     .network.isolation = true, .cloud_init_wait = true,
				     .timeouts = { 300, 300, 1800, 60 } };
	yaml_parser_initialize(&yp);
	yaml_parser_set_input_file(&yp, f);
	if (!yaml_parser_load(&yp, &d)) {
		snprintf(e->msg, sizeof(e->msg), "%s:%lu:%lu: %s", path,
			 (unsigned long)yp.problem_mark.line + 1,
			 (unsigned long)yp.problem_mark.column + 1, yp.problem ? yp.problem : "?");
		yaml_parser_delete(&yp);
		fclose(f);
		cfg_free(c);
		return -EINVAL;
	}
	rc = zz_map(&d, yaml_document_get_root_node(&d), path, c, &c->vms[0], "", e);
	if (!rc && !c->vms[0].name[0]) {
		snprintf(e->msg, sizeof(e->msg), "%s:1:1: name is required", path);
		rc = -EINVAL;
	}
	yaml_document_delete(&d);
	yaml_parser_delete(&yp);
	fclose(f);
	if (rc) {
		cfg_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

__attribute__((weak)) const struct cfg_vm *cfg_find_vm(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->n_vms; i++)
		if (!name || !strcmp(c->vms[i].name, name))
			return &c->vms[i];
	return NULL;
}

__attribute__((weak)) int img_resolve(const char *spec, const char *sha256,
				      const char *project_dir, bool progress, struct img_ref *out)
{
	(void)spec;
	(void)sha256;
	(void)project_dir;
	(void)progress;
	(void)out;
	return -ENOSYS;
}

__attribute__((weak)) int img_overlay_create(const struct img_ref *base, const char *path,
					     unsigned disk_gib)
{
	(void)base;
	(void)path;
	(void)disk_gib;
	return -ENOSYS;
}

/* not an ISO: the files back to back, enough for the core's tests */
__attribute__((weak)) int iso_write(const char *path, const char *volid,
				    const struct iso_file *files, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	(void)volid;
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		fwrite(files[i].data, 1, files[i].len, f);
	fclose(f);
	rc = util_write_atomic(path, buf, len, 0600);
	free(buf);
	return rc;
}
