/*
 * fuzz_dns.c - libFuzzer target for proxy/dns_wire.c, the parser of DNS
 * answers (untrusted bytes from the network).
 *
 * Checked properties: dns_answer_parse() never reads outside the message
 * (ASan), returns -1 or an RCODE (0..15), never appends more than `max`
 * addresses, and every address it appends is IPv4 or IPv6 with the port
 * asked for; a query built by dns_query_build() for a name taken from the
 * input parses back as a response with no answers once its QR bit is set.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dns_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_storage out[4];
    unsigned n = 0;
    uint32_t ttl = 0;
    uint16_t id = 0;
    int rc = dns_answer_parse(data, size, &id, 8080, out, &n, 4, &ttl);
    if (rc < -1 || rc > 15 || n > 4)
        abort();
    for (unsigned i = 0; i < n; i++) {
        if (out[i].ss_family == AF_INET) {
            if (ntohs(((struct sockaddr_in *)&out[i])->sin_port) != 8080)
                abort();
        } else if (out[i].ss_family == AF_INET6) {
            if (ntohs(((struct sockaddr_in6 *)&out[i])->sin6_port) != 8080)
                abort();
        } else {
            abort();
        }
    }
    /* a query for a name made of the input's printable bytes */
    char name[64];
    size_t k = 0;
    for (size_t i = 0; i < size && k < sizeof(name) - 1; i++)
        if ((data[i] >= 'a' && data[i] <= 'z') || data[i] == '.')
            name[k++] = (char)data[i];
    name[k] = '\0';
    unsigned char q[300];
    size_t ql = dns_query_build(q, sizeof(q), 0x1234, name, DNS_TYPE_A);
    if (ql) {
        q[2] |= 0x80;
        n = 0;
        if (dns_answer_parse(q, ql, &id, 80, out, &n, 4, &ttl) != 0 || id != 0x1234 || n != 0)
            abort();
    }
    return 0;
}
