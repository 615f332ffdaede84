// SPDX-License-Identifier: MIT
/*
 * t_img: the parsers of untrusted image metadata: checksum files in the
 * formats the aliases use (Debian SHA512SUMS, Ubuntu SHA256SUMS with
 * '*', Fedora's BSD-style CHECKSUM inside PGP armour, Arch's .SHA256) and
 * qcow2 headers (versions, backing file, external data file, truncation).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "images/img.h"
#include "tap.h"

#define H64  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define H128 H64 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static int find(const char *text, const char *name, char algo[8], char *hex)
{
	return img_checksum_find(text, strlen(text), name, algo, hex, 129);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static void qhdr(uint8_t *b, uint32_t version)
{
	memset(b, 0, 512);
	memcpy(b, "QFI\xfb", 4);
	put_be32(b + 4, version);
	put_be32(b + 20, 16);
	put_be64(b + 24, 10ull << 30);
	if (version == 3)
		put_be32(b + 100, 104);
}

int main(void)
{
	char algo[8], hex[129];
	struct img_qcow2_hdr h;
	uint8_t b[512];

	/* checksum files */
	is_int(find(H128 "  debian-12-genericcloud-amd64.qcow2\n" H128
			 "  debian-12-genericcloud-amd64.raw\n",
		    "debian-12-genericcloud-amd64.qcow2", algo, hex),
	       0, "Debian SHA512SUMS entry found");
	ok(!strcmp(algo, "sha512") && !strcmp(hex, H128), "sha512 and its digest");
	is_int(find(H64 " *noble-server-cloudimg-amd64.img\r\n", "noble-server-cloudimg-amd64.img",
		    algo, hex),
	       0, "Ubuntu binary-mode line with CRLF");
	ok(!strcmp(algo, "sha256") && !strcmp(hex, H64), "sha256 and its digest");
	is_int(find("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
		    "# Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2: 123 bytes\n"
		    "SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = " H64 "\n"
		    "-----BEGIN PGP SIGNATURE-----\nxyz\n",
		    "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2", algo, hex),
	       0, "Fedora BSD-style line inside PGP armour");
	ok(!strcmp(algo, "sha256") && !strcmp(hex, H64), "BSD sha256 digest");
	is_int(find("SHA512 (x.qcow2) = " H128 "\n", "x.qcow2", algo, hex), 0, "BSD SHA512 line");
	ok(!strcmp(algo, "sha512"), "BSD SHA512 algo");
	is_int(find("0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF  ./a.qcow2",
		    "a.qcow2", algo, hex),
	       0, "upper-case hex, ./ prefix, no final newline");
	ok(!strcmp(hex, H64), "digest lower-cased");
	is_int(find(H64 "  a.qcow2.sig\n" H64 "  xa.qcow2\n", "a.qcow2", algo, hex), -ENOENT,
	       "prefix/suffix names do not match");
	is_int(find(H64 "a  a.qcow2\n", "a.qcow2", algo, hex), -ENOENT, "65 hex digits rejected");
	is_int(find("SHA256 (a.qcow2) = " H64 "0\n", "a.qcow2", algo, hex), -ENOENT,
	       "BSD digest of the wrong length rejected");
	is_int(find("SHA256 (a.qcow2) = zz" H64 "\n", "a.qcow2", algo, hex), -ENOENT,
	       "BSD digest with non-hex rejected");
	is_int(find(H64 " a.qcow2\n", "a.qcow2", algo, hex), -ENOENT, "single space rejected");
	is_int(find("", "a.qcow2", algo, hex), -ENOENT, "empty file");
	is_int(img_checksum_find(H64 "  a", strlen(H64 "  a"), "a", algo, hex, 10), -ENAMETOOLONG,
	       "small output buffer refused");

	/* qcow2 headers */
	qhdr(b, 3);
	is_int(img_qcow2_parse(b, sizeof(b), &h), 0, "v3 header parsed");
	ok(h.version == 3 && h.size == 10ull << 30 && !h.backing_offset, "v3 fields");
	qhdr(b, 2);
	is_int(img_qcow2_parse(b, 72, &h), 0, "v2 header of 72 bytes parsed");
	qhdr(b, 3);
	is_int(img_qcow2_parse(b, 103, &h), -EINVAL, "v3 header cut at 103 bytes refused");
	is_int(img_qcow2_parse(b, 71, &h), -EINVAL, "71 bytes refused");
	qhdr(b, 4);
	is_int(img_qcow2_parse(b, sizeof(b), &h), -ENOTSUP, "version 4 unsupported");
	qhdr(b, 3);
	b[0] = 'X';
	is_int(img_qcow2_parse(b, sizeof(b), &h), -EINVAL, "bad magic");
	qhdr(b, 3);
	put_be64(b + 8, 200);
	put_be32(b + 16, 10);
	memcpy(b + 200, "/etc/passw", 10);
	is_int(img_qcow2_parse(b, sizeof(b), &h), 0, "header with a backing file parses");
	ok(h.backing_offset == 200 && h.backing_size == 10, "backing file offset and size reported");
	put_be32(b + 16, 1024);
	is_int(img_qcow2_parse(b, sizeof(b), &h), -EINVAL, "backing name over 1023 bytes refused");
	put_be64(b + 8, UINT64_MAX - 4);
	put_be32(b + 16, 10);
	is_int(img_qcow2_parse(b, sizeof(b), &h), -EINVAL, "backing offset overflow refused");
	qhdr(b, 3);
	put_be64(b + 72, IMG_QCOW2_INCOMPAT_DATA_FILE);
	is_int(img_qcow2_parse(b, sizeof(b), &h), 0, "header with an external data file parses");
	ok(h.incompatible & IMG_QCOW2_INCOMPAT_DATA_FILE, "external data file bit reported");
	qhdr(b, 3);
	put_be32(b + 20, 40);
	is_int(img_qcow2_parse(b, sizeof(b), &h), -EINVAL, "absurd cluster_bits refused");
	qhdr(b, 3);
	put_be32(b + 100, 50);
	is_int(img_qcow2_parse(b, sizeof(b), &h), -EINVAL, "v3 header_length < 104 refused");
	return tap_done();
}
