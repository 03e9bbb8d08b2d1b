/*
 * main.c - command line (nginx-compatible), startup, master process.
 *
 *   switchyard [-?hvVtTq] [-s signal] [-p prefix] [-e filename] [-c filename] [-g directives]
 *
 * The master reads and checks the configuration, opens the listening
 * sockets, writes the pid file and forks the workers (or, with
 * `master_process off`, runs the single worker itself). It restarts a worker
 * that dies and forwards signals; it never handles traffic.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include "conf/conf.h"
#include "conf/modules.h"
#include "conf/notes.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/live.h"
#include "core/version.h"
#include "proc/master.h"
#include "proc/runtime.h"
#include "proc/sd_notify.h"
#include "proc/worker.h"
#include "proxy/ws_frame.h"
#include "core/metrics.h"

/* Both can be set at build time (`make install` and the Debian package build
 * the installed binary with SY_CONF_PATH=/etc/switchyard/switchyard.conf). */
#ifndef SY_PREFIX
#define SY_PREFIX "/usr/local/switchyard/"
#endif
#ifndef SY_CONF_PATH
#define SY_CONF_PATH "conf/switchyard.conf" /* relative to the prefix */
#endif

struct options {
    const char *prefix;
    const char *conf;
    const char *errlog;
    const char *g;
    const char *signal_name;
    int test, dump, quiet, version, version_full, help;
};

static void usage(void)
{
    fprintf(stderr,
            "Usage: switchyard [-?hvVtTq] [-s signal] [-p prefix]\n"
            "             [-e filename] [-c filename] [-g directives]\n\n"
            "Options:\n"
            "  -?,-h         : this help\n"
            "  -v            : show version and exit\n"
            "  -V            : show version and configure options then exit\n"
            "  -t            : test configuration and exit\n"
            "  -T            : test configuration, dump it and exit\n"
            "  -q            : suppress non-error messages during configuration testing\n"
            "  -s signal     : send signal to a master process: stop, quit, reopen, reload\n"
            "  -p prefix     : set prefix path (default: " SY_PREFIX ")\n"
            "  -e filename   : set error log file (default: logs/error.log)\n"
            "  -c filename   : set configuration file (default: " SY_CONF_PATH ")\n"
            "  -g directives : set global directives out of configuration file\n\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            fprintf(stderr, "switchyard: invalid option: \"%s\"\n", a);
            return -1;
        }
        for (const char *p = a + 1; *p; p++) {
            const char **dst = NULL;
            switch (*p) {
            case '?': case 'h': o->help = 1; break;
            case 'v': o->version = 1; break;
            case 'V': o->version = o->version_full = 1; break;
            case 't': o->test = 1; break;
            case 'T': o->test = o->dump = 1; break;
            case 'q': o->quiet = 1; break;
            case 'p': dst = &o->prefix; break;
            case 'c': dst = &o->conf; break;
            case 'e': dst = &o->errlog; break;
            case 'g': dst = &o->g; break;
            case 's': dst = &o->signal_name; break;
            default:
                fprintf(stderr, "switchyard: invalid option: \"%c\"\n", *p);
                return -1;
            }
            if (dst) {
                if (p[1]) {
                    *dst = p + 1;
                } else if (i + 1 < argc) {
                    *dst = argv[++i];
                } else {
                    fprintf(stderr, "switchyard: option \"-%c\" requires %s\n", *p,
                            *p == 's' ? "signal name" : *p == 'g' ? "directives" : "file name");
                    return -1;
                }
                break;
            }
        }
    }
    if (o->signal_name && strcmp(o->signal_name, "stop") && strcmp(o->signal_name, "quit") &&
        strcmp(o->signal_name, "reopen") && strcmp(o->signal_name, "reload")) {
        fprintf(stderr, "switchyard: invalid option: \"-s %s\"\n", o->signal_name);
        return -1;
    }
    return 0;
}

/*
 * -v / -V, in nginx's form (tools such as nginx-tests' Test::Nginx read it):
 * the compiler, the OpenSSL built with and run with, SNI, and configure
 * arguments generated from the module table (src/conf/modules.c), so that
 * `--without-X` is printed exactly for the modules nginx has by default and
 * Switchyard does not.
 */
static void print_version(int full)
{
    fprintf(stderr, "switchyard version: switchyard/" SY_VERSION "\n");
    /* The nginx release whose configuration language this build follows, in
     * nginx's own words: tools that drive nginx (certbot's nginx plugin,
     * nginx-tests' Test::Nginx has_version) find their version here. */
    fprintf(stderr, "nginx version: nginx/" SY_NGINX_COMPAT_VERSION
                    " (compatible; switchyard/" SY_VERSION ")\n");
    if (!full)
        return;
#ifdef __VERSION__
    fprintf(stderr, "built by gcc " __VERSION__ "\n");
#endif
    const char *running = OpenSSL_version(OPENSSL_VERSION);
    if (strcmp(running, OPENSSL_VERSION_TEXT) == 0)
        fprintf(stderr, "built with " OPENSSL_VERSION_TEXT "\n");
    else
        fprintf(stderr, "built with " OPENSSL_VERSION_TEXT " (running with %s)\n", running);
    fprintf(stderr, "TLS SNI support enabled\n");
    fprintf(stderr, "configure arguments: --prefix=" SY_PREFIX);
    if (SY_CONF_PATH[0] == '/')
        fprintf(stderr, " --conf-path=" SY_CONF_PATH);
    const struct conf_module *m;
    for (unsigned i = 0; (m = conf_module_at(i)) != NULL; i++) {
        const char *sw = conf_module_switch(m);
        if (sw)
            fprintf(stderr, " %s%s", sw, m->name);
    }
    fprintf(stderr, "\n");
}

/* Make `path` absolute, as a directory ending in '/'. */
static char *dir_path(const char *path)
{
    char cwd[4096];
    size_t len = strlen(path);
    char *out;
    if (path[0] == '/') {
        out = malloc(len + 2);
        if (!out)
            return NULL;
        memcpy(out, path, len + 1);
    } else {
        if (!getcwd(cwd, sizeof(cwd)))
            return NULL;
        size_t cl = strlen(cwd);
        out = malloc(cl + len + 3);
        if (!out)
            return NULL;
        snprintf(out, cl + len + 3, "%s/%s", cwd, path);
        len = strlen(out);
    }
    len = strlen(out);
    if (len == 0 || out[len - 1] != '/') {
        out[len] = '/';
        out[len + 1] = '\0';
    }
    return out;
}

static char *join(const char *prefix, const char *path)
{
    size_t n = strlen(prefix) + strlen(path) + 1;
    char *out = malloc(n);
    if (!out)
        return NULL;
    if (path[0] == '/')
        snprintf(out, n, "%s", path);
    else
        snprintf(out, n, "%s%s", prefix, path);
    return out;
}

static void print_warnings(char *warn)
{
    char *save = NULL;
    for (char *line = strtok_r(warn, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        sy_log_stderr(LOG_LVL_WARN, "%s", line);
}

static void emit_note(const char *msg)
{
    sy_log_stderr(LOG_LVL_NOTICE, "%s", msg);
}

static int send_signal(struct generation *gen, const char *name)
{
    int sig = !strcmp(name, "stop")     ? SIGTERM
              : !strcmp(name, "quit")   ? SIGQUIT
              : !strcmp(name, "reopen") ? SIGUSR1
                                        : SIGHUP;
    FILE *f = fopen(gen->main.pid_path, "r");
    if (!f) {
        sy_log_stderr(LOG_LVL_ERR, "open() \"%s\" failed (%d: %s)", gen->main.pid_path, errno,
                      strerror(errno));
        return 1;
    }
    long pid = 0;
    int ok = fscanf(f, "%ld", &pid) == 1 && pid > 0;
    fclose(f);
    if (!ok) {
        sy_log_stderr(LOG_LVL_ERR, "invalid PID number in \"%s\"", gen->main.pid_path);
        return 1;
    }
    if (kill((pid_t)pid, sig) < 0) {
        sy_log_stderr(LOG_LVL_ERR, "kill(%ld, %d) failed (%d: %s)", pid, sig, errno,
                      strerror(errno));
        return 1;
    }
    return 0;
}

/* The pid file, written under a temporary name and renamed: a reader (-s,
 * a script, an upgrade) never sees it empty. */
static int write_pid(const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        sy_log_stderr(LOG_LVL_EMERG, "open() \"%s\" failed (%d: %s)", tmp, errno, strerror(errno));
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    ssize_t w = write(fd, buf, (size_t)n);
    close(fd);
    if (w != n || rename(tmp, path) < 0) {
        sy_log_stderr(LOG_LVL_EMERG, "writing the pid file \"%s\" failed (%d: %s)", path, errno,
                      strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return -1;
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        if (fd > 1)
            close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    runtime_hooks_install();
    struct options o;
    memset(&o, 0, sizeof(o));
    if (parse_args(argc, argv, &o) < 0)
        return 1;
    if (o.help) {
        print_version(0);
        usage();
        return 0;
    }
    if (o.version) {
        print_version(o.version_full);
        if (!o.test)
            return 0;
    }
    char *prefix = dir_path(o.prefix ? o.prefix : SY_PREFIX);
    char *conf = join(prefix, o.conf ? o.conf : SY_CONF_PATH);
    if (!prefix || !conf)
        return 1;
    if (o.errlog) {
        char *path = strcmp(o.errlog, "stderr") == 0 ? strdup(o.errlog) : join(prefix, o.errlog);
        if (!path || log_open(path, LOG_LVL_ERR) < 0) {
            /* nginx keeps going with stderr when -e cannot be opened at first. */
            sy_log_stderr(LOG_LVL_ALERT,
                          "could not open error log file: open() \"%s\" failed (%d: %s)",
                          path ? path : o.errlog, errno, strerror(errno));
        }
        free(path);
    }

    char err[8192] = "", warn[8192] = "";
    struct generation *gen = gen_load(prefix, conf, o.g, err, sizeof(err), warn, sizeof(warn));
    if (!gen) {
        if (warn[0])
            print_warnings(warn);
        sy_log_lines(LOG_LVL_EMERG, err, 1);
        if (o.test)
            fprintf(stderr, "switchyard: configuration file %s test failed\n", conf);
        free(prefix);
        free(conf);
        return 1;
    }
    if (warn[0])
        print_warnings(warn);
    if (o.test) {
        if (!o.quiet)
            conf_websocket_notes(gen, emit_note);
        if (!o.quiet) {
            fprintf(stderr, "switchyard: the configuration file %s syntax is ok\n", conf);
            fprintf(stderr, "switchyard: configuration file %s test is successful\n", conf);
        }
        if (o.dump)
            gen_dump(gen, 1);
        gen_free(gen);
        free(prefix);
        free(conf);
        return 0;
    }
    if (o.signal_name) {
        int rc = send_signal(gen, o.signal_name);
        gen_free(gen);
        free(prefix);
        free(conf);
        return rc;
    }

    /* Block the control signals before anything becomes visible (sockets, pid
     * file): until the loop reads them from its signalfd they stay pending
     * instead of killing the process. */
    /* The stub_status counters: mapped before any fork, shared by all. */
    if (stats_init() != 0)
        sy_log_stderr(LOG_LVL_ALERT, "mmap() of the status counters failed, each process "
                                     "counts its own");
    if (live_init() != 0) /* the status page's tables (core/live.h), likewise */
        sy_log_stderr(LOG_LVL_ALERT, "mmap() of the status page tables failed");
    if (metrics_init() != 0)
        sy_log_stderr(LOG_LVL_ALERT, "mmap() of the metrics failed, nothing is counted");

    sigset_t ctl;
    master_control_signals(&ctl);
    sigprocmask(SIG_BLOCK, &ctl, NULL);

    /* Load OpenSSL's SHA-1 (the WebSocket accept key) before the workers
     * fork: otherwise the first handshake in each worker reads openssl.cnf
     * and loads providers, about 1 MiB each, under a client's request. */
    char accept[29];
    ws_accept_for_key("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);

    struct gen_rt *rt = rt_create(gen); /* frees gen if it fails */
    if (!rt)
        goto start_failed;
    gen->serial = 1;
    if (worker_open_listeners(rt) < 0)
        goto start_failed;
    if (log_open(gen->main.error_log_path, gen->main.error_log_level) < 0) {
        sy_log_stderr(LOG_LVL_EMERG, "open() \"%s\" failed (%d: %s)", gen->main.error_log_path,
                      errno, strerror(errno));
        goto start_failed;
    }
    /* started by an old binary's SIGUSR2: stay its child, as nginx */
    if (gen->main.daemon && !worker_inherited() && daemonize() < 0) {
        sy_log_stderr(LOG_LVL_EMERG, "daemon() failed (%d: %s)", errno, strerror(errno));
        goto start_failed;
    }
    if (gen->main.daemon && !worker_inherited())
        log_redirect_stderr();
    /* The pid file appears only once the sockets are bound. */
    if (write_pid(gen->main.pid_path) < 0)
        goto start_failed;
    char *pid_path = strdup(gen->main.pid_path);
    struct worker_opts wo = {.prefix = prefix, .conf_path = conf, .g_directives = o.g, .ctl_fd = -1,
                             .argv = argv, .pid_path = pid_path};
    sy_log(LOG_LVL_NOTICE, "switchyard/" SY_VERSION " started");
    if (worker_inherited())
        sy_log(LOG_LVL_NOTICE, "using the listening sockets inherited from the previous binary");
    int rc;
    /* NOTIFY_SOCKET (systemd Type=notify): the master reports READY itself;
     * a single process (master_process off) is ready once its sockets are. */
    if (sd_notify_init() && !gen->main.master_process)
        sd_notify_ready(1, 1);
    int gen_master = gen->main.master_process;
    if (gen_master)
        rc = master_run(rt, &wo);
    else
        rc = worker_run(rt, &wo);
    if (pid_path) {
        if (gen_master && master_pid_moved()) { /* the new binary has NAME */
            char old[4200];
            snprintf(old, sizeof(old), "%s.oldbin", pid_path);
            unlink(old);
        } else {
            unlink(pid_path);
        }
        free(pid_path);
    }
    free(prefix);
    free(conf);
    return rc;

start_failed:
    /* (a failed bind() ends here: LeakSanitizer checks this exit too) */
    rt_release(rt);
    free(prefix);
    free(conf);
    return 1;
}
