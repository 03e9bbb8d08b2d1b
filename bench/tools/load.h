/*
 * load.h - shared declarations of sy-load, the WebSocket load generator.
 *
 *   sy-load.c     main: options, threads, phases, the JSON report
 *   load_opts.c   command line and URL parsing
 *   load_net.c    sockets (source addresses), TLS, the upgrade request
 *   load_conn.c   one connection: connect, TLS, upgrade, frames, close
 *   load_run.c    the per-thread event loop and what each mode does
 */
#ifndef SY_LOAD_H
#define SY_LOAD_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "hist.h"
#include "wsproto.h"

/* ------------------------------------------------------------ options */

enum mode { MODE_ECHO, MODE_PACED, MODE_HANDSHAKE, MODE_BULK, MODE_IDLE };

struct opts {
    enum mode mode;
    const char *mode_name;
    const char *url;
    char host[256], path[1024], hosthdr[300];
    char sni[256];             /* empty: no SNI (IP literal) */
    int port, tls;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int conns, threads, inflight;
    double duration, rate, hold, timeout;
    int hold_given, down, allow_errors;
    size_t size;
    uint32_t *srcs;            /* --bind-from addresses, host order */
    int nsrcs;
};

extern struct opts O;

void opts_parse(int argc, char **argv);

/* ------------------------------------------------------------ time */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define SEC 1000000000ull
#define CONNECT_TIMEOUT (15 * SEC)  /* TCP connect + TLS + upgrade */
#define CLOSE_TIMEOUT (5 * SEC)     /* our close frame -> server's close */
#define EOF_WAIT (1 * SEC)          /* server's close frame -> its FIN */

/* ------------------------------------------------------------ phases */

/* Set by main, read by the workers. */
enum phase { PH_OPEN, PH_RUN, PH_STOP };
extern _Atomic int g_phase;
extern _Atomic uint64_t g_t0;       /* start of the measured run */
extern _Atomic int g_settled;       /* workers done with their open phase */

/* ------------------------------------------------------------ connections */

enum err { E_CONNECT, E_HANDSHAKE, E_CLOSED, E_PROTOCOL, E_TIMEOUT, E_LOST, E_NKINDS };
extern const char *const err_names[E_NKINDS];

enum cstate { CS_IDLE, CS_CONNECTING, CS_TLS, CS_SEND_REQ, CS_READ_101, CS_OPEN, CS_CLOSING };

struct upgrade {      /* a pre-built upgrade request and its expected accept */
    char req[1500];
    size_t req_len;
    char accept[29];
};

struct bulk {         /* ws-bulk upload: a batch of frames being written */
    uint8_t hdr[16][WS_MAX_HDR];
    int nframes;
    size_t pos, total, hl;
};

struct lconn {
    int fd;
    uint8_t state;
    uint8_t on_runq;
    uint8_t close_rcvd;    /* the server's close frame arrived */
    uint8_t in_frame;      /* inside a data frame's payload */
    uint8_t frame_fin;
    uint8_t in_msg;        /* a fragmented message has started */
    uint8_t ts_got;        /* first payload bytes of the message so far */
    uint8_t waiting;       /* ws-echo / ws-idle: a message is in flight */
    uint8_t starting;      /* counted in lworker.starting */
    uint8_t ts[8];
    uint32_t idx, gen;     /* gen: which socket of this slot an event is for */
    uint64_t msg_len;      /* payload bytes of the message being received */
    uint64_t restart_at;   /* ws-handshake: when to start again */
    SSL *ssl;
    const struct upgrade *up;
    size_t req_off;
    uint8_t *carry;        /* unparsed input: partial head or frame header */
    size_t carry_len;
    uint64_t pay_left;
    uint8_t *out;          /* output the socket did not take */
    size_t out_off, out_len, out_cap;
    uint64_t t0;           /* connect start, then send time of the message */
    uint64_t deadline;     /* of the current connect/handshake/close step */
    uint64_t inflight;     /* ws-paced: messages sent, echo not yet seen */
    struct bulk *bulk;
    struct lconn *next;    /* run queue */
};

struct lworker {
    int id, ep;
    struct lconn *c;
    int n;                 /* connections of this worker */
    uint8_t *rbuf;
    uint8_t *sbuf;         /* message being built: header + payload */
    uint64_t rng;
    struct lconn *runq, *runq_tail;

    /* results */
    struct hist hist;
    uint64_t ops, bytes, sent, opened, echoed;
    uint64_t errors[E_NKINDS];
    uint64_t t_start, t_end;

    uint64_t t_open_done;
    _Atomic uint64_t snap_opened, snap_errors;  /* for main after the open phase */

    /* mode state */
    int stopping;          /* the measured part is over: close down */
    int next_start;        /* next connection to open (open phase) */
    int starting;          /* connections between connect and 101 */
    int live;              /* connections with a socket */
    int live_open;         /* connections that reached 101 and are still up */
    uint64_t pending;      /* ws-paced / ws-idle: echoes still awaited */
    uint32_t *open_idx;    /* ws-paced: the open connections at the start */
    uint32_t *restart, *restart_tmp;  /* ws-handshake: slots to start again */
    int nrestart;
    uint64_t last_sweep;
    pthread_t tid;
};

/* random payload of the largest message; sent as is (it is already "masked") */
extern uint8_t *g_payload;

/* load_net.c */
int net_init(void);
int net_socket_connect(int *fd_out);
SSL *net_tls_new(int fd);
ssize_t tr_read(struct lconn *c, void *buf, size_t n);
ssize_t tr_writev(struct lconn *c, const struct iovec *iov, int cnt);
const struct upgrade *net_upgrade(uint64_t r);
int net_check_101(const struct lconn *c, const char *head, size_t len);

/* load_conn.c */
void conn_start(struct lworker *w, struct lconn *c);
void conn_event(struct lworker *w, struct lconn *c, uint32_t ev);
void conn_fail(struct lworker *w, struct lconn *c, enum err e);
void conn_drop(struct lworker *w, struct lconn *c);
void conn_close_gently(struct lworker *w, struct lconn *c);
int conn_send_msg(struct lworker *w, struct lconn *c, uint64_t ts);
void conn_check_deadline(struct lworker *w, struct lconn *c, uint64_t now);
int conn_output_pending(const struct lconn *c);
void runq_push(struct lworker *w, struct lconn *c);

/* load_run.c: what each mode does at each step of a connection */
void mode_on_open(struct lworker *w, struct lconn *c);
void mode_on_message(struct lworker *w, struct lconn *c, uint64_t len);
void mode_on_writable(struct lworker *w, struct lconn *c);
void mode_on_gone(struct lworker *w, struct lconn *c, int was_open, int ok);
void *worker_main(void *arg);

static inline uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: cheap, good enough for masks and key choice */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

#endif
