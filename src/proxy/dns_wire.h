/*
 * dns_wire.h - the DNS messages the run-time upstreams need (RFC 1035): a
 * query for one name and type, and the A/AAAA records of an answer. Pure
 * functions over bytes (fuzzed: fuzz/fuzz_dns.c).
 */
#ifndef SY_PROXY_DNS_WIRE_H
#define SY_PROXY_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28

/* Write a recursive query (id, name, type, class IN) into q; its length,
 * or 0 when the name does not fit or has an empty or too long label. */
size_t dns_query_build(unsigned char *q, size_t cap, uint16_t id, const char *name, int type);

/*
 * Read an answer: its id in *id, the A/AAAA records of the answer section
 * appended to out[*n] (at most `max`, with `port` set), the smallest TTL
 * in *ttl (left as is when none). Returns the RCODE (0 fine), or -1 when
 * the message is malformed or not a response.
 */
int dns_answer_parse(const unsigned char *m, size_t len, uint16_t *id, unsigned port,
                     struct sockaddr_storage *out, unsigned *n, unsigned max, uint32_t *ttl);

#endif
