/*
 * sd_notify.c - systemd notifications from the master (see sd_notify.h).
 *
 * The protocol is one AF_UNIX datagram per notification to the socket named
 * by NOTIFY_SOCKET; systemd reads the sender's credentials, so the socket is
 * only ever written from the master (its pid is the service's main pid).
 */
#include "proc/sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/stats.h"

static struct {
    int fd; /* -1: notifications off */
    struct sockaddr_un addr;
    socklen_t addrlen;
    char last_status[256];
} N = {.fd = -1};

int sd_notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (N.fd >= 0)
        return 1;
    if (!path || !path[0] || (path[0] != '/' && path[0] != '@'))
        return 0;
    size_t len = strlen(path);
    if (len >= sizeof(N.addr.sun_path))
        return 0;
    memset(&N.addr, 0, sizeof(N.addr));
    N.addr.sun_family = AF_UNIX;
    memcpy(N.addr.sun_path, path, len);
    if (path[0] == '@')
        N.addr.sun_path[0] = '\0'; /* abstract namespace */
    N.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    N.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    return N.fd >= 0;
}

int sd_notify_enabled(void)
{
    return N.fd >= 0;
}

int sd_notify_send(const char *text)
{
    if (N.fd < 0)
        return -1;
    ssize_t n;
    do
        n = sendto(N.fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&N.addr, N.addrlen);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

void sd_notify_status_text(char *buf, unsigned long cap, long workers, unsigned long generation)
{
    snprintf(buf, cap,
             "%ld worker%s, configuration %lu; connections: %lld active, %lld reading, "
             "%lld writing; requests: %llu",
             workers, workers == 1 ? "" : "s", generation,
             (long long)stats_get(&sy_stats->active), (long long)stats_get(&sy_stats->reading),
             (long long)stats_get(&sy_stats->writing),
             (unsigned long long)stats_getu(&sy_stats->requests));
}

void sd_notify_ready(long workers, unsigned long generation)
{
    if (N.fd < 0)
        return;
    char msg[400];
    sd_notify_status_text(N.last_status, sizeof(N.last_status), workers, generation);
    snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%ld\nSTATUS=%s", (long)getpid(), N.last_status);
    sd_notify_send(msg);
}

void sd_notify_reloading(void)
{
    if (N.fd < 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[128];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    N.last_status[0] = '\0';
    sd_notify_send(msg);
}

void sd_notify_stopping(void)
{
    if (N.fd < 0)
        return;
    N.last_status[0] = '\0';
    sd_notify_send("STOPPING=1\nSTATUS=stopping");
}

void sd_notify_status(long workers, unsigned long generation)
{
    if (N.fd < 0)
        return;
    char text[sizeof(N.last_status)], msg[sizeof(N.last_status) + 8];
    sd_notify_status_text(text, sizeof(text), workers, generation);
    if (strcmp(text, N.last_status) == 0)
        return;
    memcpy(N.last_status, text, sizeof(text));
    snprintf(msg, sizeof(msg), "STATUS=%s", text);
    sd_notify_send(msg);
}
