/*
 * log.c - error log writer and cached time strings (see log.h).
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

static int log_fd = 2;
static int log_is_stderr = 1;
static char log_path[4096];
static enum log_level log_lvl = LOG_LVL_ERR;

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

const char *log_level_name(enum log_level lvl)
{
    return (unsigned)lvl < 8 ? level_names[lvl] : "unknown";
}

static uid_t owner_uid = (uid_t)-1;
static gid_t owner_gid = (gid_t)-1;

void log_set_owner(uid_t uid, gid_t gid)
{
    owner_uid = uid;
    owner_gid = gid;
}

int log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && owner_uid != (uid_t)-1 && fchown(fd, owner_uid, owner_gid) < 0) {
        /* Not fatal: the workers may still be able to write it. */
    }
    return fd;
}

int log_open(const char *path, enum log_level level)
{
    log_lvl = level;
    if (strcmp(path, "stderr") == 0) {
        if (!log_is_stderr && log_fd > 2)
            close(log_fd);
        log_fd = 2;
        log_is_stderr = 1;
        log_path[0] = '\0';
        return 0;
    }
    if (!log_is_stderr && strcmp(path, log_path) == 0)
        return 0; /* already open (a reload that kept error_log) */
    int fd = log_open_file(path);
    if (fd < 0)
        return -1;
    if (!log_is_stderr && log_fd > 2)
        close(log_fd);
    log_fd = fd;
    log_is_stderr = 0;
    snprintf(log_path, sizeof(log_path), "%s", path);
    return 0;
}

void log_redirect_stderr(void)
{
    if (!log_is_stderr && log_fd > 2)
        dup2(log_fd, 2);
}

void log_reopen(void)
{
    if (log_is_stderr || !log_path[0])
        return;
    int fd = log_open_file(log_path);
    if (fd < 0)
        return;
    dup2(fd, log_fd);
    close(fd);
}

enum log_level log_level_get(void)
{
    return log_lvl;
}

int log_to_stderr(void)
{
    return log_is_stderr;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* a full disk must not stop traffic */
        }
        p += w;
        n -= (size_t)w;
    }
}

void sy_log(enum log_level lvl, const char *fmt, ...)
{
    if (lvl > log_lvl)
        return;
    char line[4096];
    int pid = (int)getpid();
    int n = snprintf(line, sizeof(line), "%s [%s] %d#%d: ", time_errlog(), log_level_name(lvl),
                     pid, pid);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    write_all(log_fd, line, len);
}

void sy_log_stderr(enum log_level lvl, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char line[4200];
    int n = snprintf(line, sizeof(line), "switchyard: [%s] %s\n", log_level_name(lvl), msg);
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    write_all(2, line, (size_t)n);
    if (!log_is_stderr && lvl <= log_lvl)
        sy_log(lvl, "%s", msg);
}

void sy_log_lines(enum log_level lvl, const char *text, int to_stderr)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        if (to_stderr)
            sy_log_stderr(lvl, "%.*s", len, text);
        else
            sy_log(lvl, "%.*s", len, text);
        text += len + (nl ? 1 : 0);
    }
}

/* ---- cached time strings ---- */

static struct {
    int64_t sec;
    char http[32], local[96], iso[96], err[96];
} tc = {.sec = -1};

static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void time_format_http(int64_t t, char out[30])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char tmp[96];
    snprintf(tmp, sizeof(tmp), "%s, %02d %s %04d %02d:%02d:%02d GMT", wday[tm.tm_wday],
             tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(out, tmp, 29);
    out[29] = '\0';
}

static void time_refresh(void)
{
    uint64_t wall = loop_wall_ms();
    if (wall == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        wall = (uint64_t)ts.tv_sec * 1000;
    }
    int64_t sec = (int64_t)(wall / 1000);
    if (sec == tc.sec)
        return;
    tc.sec = sec;
    time_format_http(sec, tc.http);
    time_t tt = (time_t)sec;
    struct tm tm;
    localtime_r(&tt, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(tc.local, sizeof(tc.local), "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
             mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60,
             off % 60);
    snprintf(tc.iso, sizeof(tc.iso), "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
             off / 60, off % 60);
    snprintf(tc.err, sizeof(tc.err), "%04d/%02d/%02d %02d:%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

const char *time_http_date(void)
{
    time_refresh();
    return tc.http;
}
const char *time_local(void)
{
    time_refresh();
    return tc.local;
}
const char *time_iso8601(void)
{
    time_refresh();
    return tc.iso;
}
const char *time_errlog(void)
{
    time_refresh();
    return tc.err;
}

static int month_index(const char *p)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(p, mon[i], 3) == 0)
            return i;
    return -1;
}

int64_t time_parse_http(const char *s, size_t len)
{
    char buf[64];
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    int d, y, h, mi, se;
    char m[4], wd[16];
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(buf, "%3s, %2d %3s %4d %2d:%2d:%2d GMT", wd, &d, m, &y, &h, &mi, &se) == 7) {
        /* IMF-fixdate */
    } else if (sscanf(buf, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT", wd, &d, m, &y, &h, &mi,
                      &se) == 7) {
        y += y < 70 ? 2000 : 1900; /* RFC 850 */
    } else if (sscanf(buf, "%3s %3s %2d %2d:%2d:%2d %4d", wd, m, &d, &h, &mi, &se, &y) == 7) {
        /* asctime */
    } else {
        return -1;
    }
    int mo = month_index(m);
    if (mo < 0 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || y < 1970)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    return (int64_t)timegm(&tm);
}
