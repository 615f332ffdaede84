// SPDX-License-Identifier: MIT
/* libFuzzer: arbitrary bytes through the DNS message parser (queries and upstream replies) and the query check. */
#include <stdint.h>
#include <string.h>

#include "net/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_question q;
	uint16_t id, flags;

	if (dns_parse(data, size, &id, &flags, &q) == 0) {
		if (q.name_len == 0 || q.name_len > DNS_NAME_MAX)
			__builtin_trap();
		/* the wire name must end with the root label */
		if (q.name[q.name_len - 1] != 0)
			__builtin_trap();
	}
	if (dns_parse_query(data, size, &id, &flags, &q) == 0) {
		struct dns_question q2;
		uint16_t id2, flags2;

		/* a query the forwarder relays is a message, with opcode QUERY and QR 0 */
		if (dns_parse(data, size, &id2, &flags2, &q2) || (flags & 0xf800) || id != id2)
			__builtin_trap();
	}
	return 0;
}
