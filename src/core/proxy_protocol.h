/*
 * proxy_protocol.h - the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) that an L4 balancer puts in front of a connection to say
 * who the client was.
 *
 * pp_parse() is a pure function over a byte buffer: no I/O, no allocation, no
 * global state, so it is unit-tested at every split point and fuzzed
 * (fuzz/fuzz_proxy_protocol.c). The connection side (h1_proxy_protocol.c)
 * peeks at the socket, feeds what it saw, and consumes exactly the header.
 *
 * Contract (picohttpparser's): the return value is the header length (> 0),
 * PP_NEED_MORE when `buf` is a proper prefix of a header that may still
 * become valid, or PP_ERROR with `out->reason` set. PP_NEED_MORE therefore
 * guarantees that every byte seen so far belongs to the header, and a
 * positive return never counts a byte past the header.
 */
#ifndef SY_CORE_PROXY_PROTOCOL_H
#define SY_CORE_PROXY_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PP_NEED_MORE (-2)
#define PP_ERROR     (-1)

/* Longest v1 line the spec allows, "\r\n" included. */
#define PP_V1_MAX 107
/* Longest v2 header accepted (16-byte fixed part + addresses + TLVs). The
 * length field allows 64 KiB; nginx reads at most 4096 bytes of header, and
 * nothing real sends more than a few hundred bytes of TLVs. */
#define PP_V2_MAX 4096
/* Most bytes pp_parse() ever needs to see to decide: a caller's buffer of
 * this size is always enough. */
#define PP_MAX_HEADER PP_V2_MAX

/* The addresses a header carried. family is 0 when it carried none the
 * proxy can use: v1 UNKNOWN, v2 LOCAL, v2 AF_UNSPEC/AF_UNIX or a
 * non-stream transport. Then the connection keeps its real peer. */
struct pp_addrs {
    uint8_t family;             /* 0, AF_INET or AF_INET6 */
    uint8_t src[16], dst[16];   /* network order; IPv4 in the first 4 bytes */
    uint16_t src_port, dst_port;/* host order */
};

struct pp_result {
    struct pp_addrs addrs;
    unsigned version;           /* 1 or 2 (once known; 0 before) */
    const char *reason;         /* PP_ERROR: static phrase saying why */
};

/*
 * Parse the PROXY protocol header at the start of `buf` (`len` bytes).
 * Returns the header length, PP_NEED_MORE or PP_ERROR (see above). `out` is
 * always written; its addresses are meaningful only for a positive return.
 */
ssize_t pp_parse(const void *buf, size_t len, struct pp_result *out);

/* Format one side's address as text ("1.2.3.4", "::1"); returns the length
 * (0 when there is no address). `cap` >= 46 is always enough. */
size_t pp_addr_text(const struct pp_addrs *a, int dst, char *out, size_t cap);

#endif
