/* SPDX-License-Identifier: MIT */
#ifndef HUTCH_LAZY_H
#define HUTCH_LAZY_H
/**
 * DOC: lazy - libcurl and libcrypto, loaded on first use
 *
 * The per-VM supervisor is this same binary and lives as long as its VM,
 * one per VM.  Linked normally, libcurl alone pulls in some 25 libraries
 * (gnutls, krb5, ldap, ssh2, nghttp2, p11-kit, ...) and with libcrypto they
 * made ~7 MB of the supervisor's ~8.5 MB resident set, yet the supervisor
 * never downloads nor hashes anything.  So neither library is linked:
 * the verbs that need one (image downloads, checksums, the MAC that `up`
 * derives from the VM's name) load it here with dlopen(3) the first time,
 * and every other process never maps it.  We still use the real libraries
 * (no hand-written HTTP or SHA-256): only when they are mapped changes.
 *
 * The function pointers are typed from the libraries' own headers
 * (__typeof__ of the declarations), so a call through them is checked by
 * the compiler just like a direct call; the CURLOPT_* and other constants
 * come from the headers at compile time.  The libraries are never
 * unloaded.  Single-threaded callers only; loading is idempotent.
 */
#include <curl/curl.h>
#include <openssl/evp.h>

/** struct lazy_curl - the libcurl calls hutch makes */
struct lazy_curl {
	__typeof__(&curl_global_init) global_init;
	__typeof__(&curl_easy_init) easy_init;
	__typeof__(&curl_easy_setopt) easy_setopt;
	__typeof__(&curl_easy_perform) easy_perform;
	__typeof__(&curl_easy_getinfo) easy_getinfo;
	__typeof__(&curl_easy_cleanup) easy_cleanup;
	__typeof__(&curl_easy_reset) easy_reset;
	__typeof__(&curl_easy_strerror) easy_strerror;
};

/** struct lazy_crypto - the libcrypto calls hutch makes */
struct lazy_crypto {
	__typeof__(&EVP_sha256) sha256;
	__typeof__(&EVP_sha512) sha512;
	__typeof__(&EVP_Digest) digest;
	__typeof__(&EVP_MD_CTX_new) md_ctx_new;
	__typeof__(&EVP_MD_CTX_free) md_ctx_free;
	__typeof__(&EVP_DigestInit_ex) digest_init_ex;
	__typeof__(&EVP_DigestUpdate) digest_update;
	__typeof__(&EVP_DigestFinal_ex) digest_final_ex;
	__typeof__(&EVP_MD_get_size) md_get_size;
};

/**
 * lazy_curl() - load libcurl.so.4 (once) and initialise it
 * @out: set to the function table on success
 *
 * The first call dlopen()s the library, resolves every symbol and calls
 * curl_global_init(); later calls return the same result without logging
 * again.
 * Return: 0; -ELIBACC when the library or one of its symbols is missing
 * ("cannot load libcurl.so.4 (install libcurl4)" is logged): map it to
 * EXIT_NODEP; -ENOMEM when curl_global_init() fails.
 */
int lazy_curl(const struct lazy_curl **out);

/**
 * lazy_crypto() - load libcrypto.so.3 (once)
 * @out: set to the function table on success
 * Return: 0, or -ELIBACC (logged once, as for lazy_curl())
 */
int lazy_crypto(const struct lazy_crypto **out);

#endif
