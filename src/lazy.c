// SPDX-License-Identifier: MIT
/*
 * dlopen(3) of libcurl and libcrypto on first use: see src/lazy.h for why
 * (the supervisor's memory).  glibc 2.34+ has dlopen in libc: no -ldl.
 */
#include "src/lazy.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#include "src/log.h"

struct lazy_sym {
	const char *name;
	size_t off; /* of the function pointer in the table */
};

#define LAZY_SYM(type, field, sym) { #sym, offsetof(struct type, field) }

static const struct lazy_sym lazy_curl_syms[] = {
	LAZY_SYM(lazy_curl, global_init, curl_global_init),
	LAZY_SYM(lazy_curl, easy_init, curl_easy_init),
	LAZY_SYM(lazy_curl, easy_setopt, curl_easy_setopt),
	LAZY_SYM(lazy_curl, easy_perform, curl_easy_perform),
	LAZY_SYM(lazy_curl, easy_getinfo, curl_easy_getinfo),
	LAZY_SYM(lazy_curl, easy_cleanup, curl_easy_cleanup),
	LAZY_SYM(lazy_curl, easy_reset, curl_easy_reset),
	LAZY_SYM(lazy_curl, easy_strerror, curl_easy_strerror),
};

static const struct lazy_sym lazy_crypto_syms[] = {
	LAZY_SYM(lazy_crypto, sha256, EVP_sha256),
	LAZY_SYM(lazy_crypto, sha512, EVP_sha512),
	LAZY_SYM(lazy_crypto, digest, EVP_Digest),
	LAZY_SYM(lazy_crypto, md_ctx_new, EVP_MD_CTX_new),
	LAZY_SYM(lazy_crypto, md_ctx_free, EVP_MD_CTX_free),
	LAZY_SYM(lazy_crypto, digest_init_ex, EVP_DigestInit_ex),
	LAZY_SYM(lazy_crypto, digest_update, EVP_DigestUpdate),
	LAZY_SYM(lazy_crypto, digest_final_ex, EVP_DigestFinal_ex),
	LAZY_SYM(lazy_crypto, md_get_size, EVP_MD_get_size),
};

/*
 * lazy_load() - dlopen @soname and fill @table from @syms
 * @pkg: the Debian package to name in the error
 *
 * Every slot is a pointer to a function; storing the dlsym() result through
 * a void (*)(void) slot and calling it through its real type is what POSIX
 * guarantees for dlsym.  The handle is kept forever: unloading libcurl or
 * libcrypto (which register atexit handlers) is not safe.
 */
static int lazy_load(const char *soname, const char *pkg, const struct lazy_sym *syms,
		     size_t nsyms, void *table)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		log_err("cannot load %s (install %s): %s", soname, pkg, dlerror());
		return -ELIBACC;
	}
	for (size_t i = 0; i < nsyms; i++) {
		void *p;

		dlerror();
		p = dlsym(h, syms[i].name);
		if (!p) {
			log_err("cannot load %s (install %s): it has no %s", soname, pkg,
				syms[i].name);
			return -ELIBACC; /* h stays open: harmless, and we never retry */
		}
		*(void (**)(void))((char *)table + syms[i].off) = (void (*)(void))p;
	}
	return 0;
}

int lazy_curl(const struct lazy_curl **out)
{
	static struct lazy_curl t;
	static int rc = 1; /* 1: not tried yet */

	if (rc == 1) {
		rc = lazy_load("libcurl.so.4", "libcurl4", lazy_curl_syms,
			       sizeof(lazy_curl_syms) / sizeof(lazy_curl_syms[0]), &t);
		if (!rc && t.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_err("curl_global_init failed");
			rc = -ENOMEM;
		}
	}
	if (!rc)
		*out = &t;
	return rc;
}

int lazy_crypto(const struct lazy_crypto **out)
{
	static struct lazy_crypto t;
	static int rc = 1;

	if (rc == 1)
		rc = lazy_load("libcrypto.so.3", "libssl3", lazy_crypto_syms,
			       sizeof(lazy_crypto_syms) / sizeof(lazy_crypto_syms[0]), &t);
	if (!rc)
		*out = &t;
	return rc;
}
