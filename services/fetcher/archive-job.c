/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* memfd_create(), vasprintf() */
#endif
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "archive-dl.h"
#include "archive-job.h"
#include "berth-limits.h"
#include "bus-names.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "sandbox.h"

typedef struct ArchiveJob {
        ArchiveContext *ctx;
        sd_bus_message *call;
        sd_event_source *child_source;
        int report_fd;
        archive_reply_fn reply;
} ArchiveJob;

static void archive_job_free(ArchiveJob *j) {
        if (!j)
                return;
        sd_event_source_disable_unref(j->child_source);
        sd_bus_message_unref(j->call);
        safe_close(j->report_fd);
        free(j);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ArchiveJob *, archive_job_free);

int archive_report_error(ArchiveReport *rep, const char *name, int r, const char *format, ...) {
        if (!rep->error_name) {
                rep->error_name = name ?: BERTH_ERROR_IO;
                free(rep->error_message);
                rep->error_message = format_varargs(format);
        }
        return r == 0 ? -EIO : -abs(r);
}

void archive_stall_guard(void) {
        (void) alarm(ARCHIVE_STALL_TIMEOUT_SEC);
}

/* Only error names we know travel back; anything else a (compromised) child claims becomes IO. */
static const char *known_error(const char *name) {
        static const char *const names[] = {
                BERTH_ERROR_INVALID_REFERENCE,
                BERTH_ERROR_NOT_FOUND,
                BERTH_ERROR_LIMIT,
                BERTH_ERROR_DIGEST_MISMATCH,
                BERTH_ERROR_BAD_CONTENT,
                BERTH_ERROR_UNSUPPORTED,
                BERTH_ERROR_IO,
        };

        for (size_t i = 0; name && i < ELEMENTSOF(names); i++)
                if (streq(name, names[i]))
                        return names[i];
        return BERTH_ERROR_IO;
}

/* The archive child's system calls: reading and writing the user's stream, the store's *at() file
 * work (ingest, verify, rename into blobs/), memory, time, the stall alarm, exit. SECURITY: no socket(),
 * no exec, no clone, no kill, no ptrace, no mount/unshare, no ioctl; everything else kills the child. */
static const char *const archive_syscalls[] = {
        "read",        "write",         "pread64",        "pwrite64",    "readv",           "writev",
        "lseek",       "close",         "fstat",          "newfstatat",  "statx",           "fstatfs",
        "openat",      "openat2",       "getdents64",     "mkdirat",     "unlinkat",        "renameat",
        "renameat2",   "linkat",        "ftruncate",      "fallocate",   "fchmod",          "fsync",
        "fdatasync",   "brk",           "munmap",         "mremap",      "madvise",         "futex",
        "getrandom",   "clock_gettime", "gettimeofday",   "nanosleep",   "clock_nanosleep", "getpid",
        "gettid",      "getuid",        "geteuid",        "getgid",      "getegid",         "alarm",
        "setitimer",   "rt_sigreturn",  "rt_sigprocmask", "exit",        "exit_group",      "sysinfo",
#if defined(__SANITIZE_ADDRESS__) || defined(BERTH_SANITIZE)
        "sigaltstack", "rt_sigaction",  "prctl",          "sched_yield", "readlinkat",      "getppid",
#endif
        NULL,
};

static const SandboxProfile archive_profile = {
        .caps = 0,
        .syscalls = archive_syscalls,
        /* The fetcher is unprivileged: it needs a user namespace for the others. Under systemd its unit
         * forbids namespaces (RestrictNamespaces=yes) and gives the service its own mount sandbox; the
         * filter (no socket()) then keeps the child off the network by itself. */
        .user_namespace = true,
        .namespaces_optional = true,
};

/* SECURITY (issue 12, finding 6): the child parses hostile archives; it keeps only the store's
 * directories, the user's stream and the report, loses the network and every path (an empty root), and
 * runs under an allow-list that kills. libarchive is loaded before, while files can still be opened. */
static int archive_child_sandbox(ArchiveContext *ctx, int report_fd, int user_fd, ArchiveReport *rep) {
        int keep[12];
        size_t n = 0;
        char err[256] = "";
        int r;

        keep[n++] = report_fd;
        keep[n++] = user_fd;
        n += content_store_fds(ctx->store, keep + n, ELEMENTSOF(keep) - n);
        r = sandbox_enter_profile(&archive_profile, NULL, -EBADF, keep, n, NULL, err, sizeof(err));
        if (r < 0)
                return archive_report_error(rep, BERTH_ERROR_IO, r,
                                            "Failed to sandbox the archive worker: %s",
                                            err[0] ? err : strerror(-r));
        return 0;
}

static _noreturn_ void child_main(ArchiveContext *ctx, int report_fd, int user_fd, archive_child_fn fn,
                                  void *userdata) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        ArchiveReport rep = { .result = b };
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *text = NULL;
        const char *dl_error = NULL;
        sigset_t all;
        int r;

        /* SECURITY: the child parses or writes user-supplied streams: it dies with the fetcher, can
         * never gain privileges (no setuid binaries, no file capabilities), and takes SIGALRM (stall)
         * and SIGTERM with their default actions. It touches neither the bus nor the event loop. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        (void) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        (void) signal(SIGPIPE, SIG_IGN); /* EPIPE instead */
        (void) signal(SIGALRM, SIG_DFL);
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);

        json_builder_begin_object(b);
        /* libarchive is mapped here, in the child, never in the fetcher (archive-dl.h). */
        r = archive_dl_open(&dl_error);
        if (r < 0)
                r = archive_report_error(&rep, BERTH_ERROR_IO, r, "Cannot load libarchive: %s",
                                         strna(dl_error));
        else
                r = archive_child_sandbox(ctx, report_fd, user_fd, &rep);
        if (r >= 0)
                r = fn(userdata, &rep);
        if (r < 0) {
                g_autoptr(JsonBuilder) e = json_builder_new();

                json_builder_begin_object(e);
                json_builder_set_member_name(e, "error");
                json_builder_add_string_value(e, rep.error_name ?: BERTH_ERROR_IO);
                json_builder_set_member_name(e, "message");
                json_builder_add_string_value(e, rep.error_message ?: strerror(-r));
                json_builder_end_object(e);
                root = json_builder_get_root(e);
        } else {
                json_builder_end_object(b);
                root = json_builder_get_root(b);
        }
        text = json_to_string_compact(root);
        if (!text || loop_write(report_fd, text, strlen(text)) < 0)
                _exit(EXIT_FAILURE);
        _exit(r < 0 ? 2 : EXIT_SUCCESS);
}

static void reply_error(sd_bus_message *call, const char *name, const char *message) {
        int r = sd_bus_reply_method_errorf(call, name, "%s", message);
        if (r < 0)
                log_debug_errno(r, "Failed to send error reply: %m");
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        _cleanup_(archive_job_freep) ArchiveJob *j = userdata;
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *text = NULL, *msg = NULL;
        const char *member = sd_bus_message_get_member(j->call);
        size_t size = 0;
        JsonObject *o;
        int r;

        j->ctx->n_jobs--;
        if (si->si_code != CLD_EXITED) {
                log_error("%s worker (pid %d) was killed by signal %d.", strna(member), (int) si->si_pid,
                          si->si_status);
                reply_error(
                        j->call, BERTH_ERROR_IO,
                        si->si_status == SIGALRM ? "The archive stream stalled (no data moved for too long)"
                        : si->si_status == SIGSYS
                                ? "The archive worker was killed by its sandbox (a forbidden system call)"
                                : "The archive worker was killed");
                return 0;
        }
        /* The memfd the child wrote; bounded, and an empty one fails json_parse_bounded(). */
        r = read_regular_file_fd(j->report_fd, ARCHIVE_RESULT_MAX, &text, &size);
        if (r >= 0)
                r = json_parse_bounded(text, size, ARCHIVE_RESULT_MAX, &root, &msg);
        if (r < 0 || !JSON_NODE_HOLDS_OBJECT(root)) {
                log_error("%s worker (pid %d) exited with status %d without a usable report.", strna(member),
                          (int) si->si_pid, si->si_status);
                reply_error(j->call, BERTH_ERROR_IO, "The archive worker failed");
                return 0;
        }
        o = json_node_get_object(root);
        if (json_object_has_member(o, "error")) {
                const char *name = json_object_get_string_member_with_default(o, "error", NULL);
                const char *message = json_object_get_string_member_with_default(o, "message", NULL);

                log_error("%s failed: %s", strna(member), strna(message));
                reply_error(j->call, known_error(name), message ?: "Archive processing failed");
                return 0;
        }
        r = j->reply(j->call, o);
        if (r < 0) {
                log_error_errno(r, "Failed to reply to %s: %m", strna(member));
                reply_error(j->call, BERTH_ERROR_IO, "The archive worker's report is malformed");
        }
        return 0;
}

int archive_job_spawn(ArchiveContext *ctx, sd_bus_message *call, int user_fd, archive_child_fn child,
                      void *userdata, archive_reply_fn reply, sd_bus_error *error) {
        ArchiveJob *j;
        pid_t pid;
        int r;

        if (ctx->n_jobs >= ARCHIVE_JOBS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY,
                                         "Too many archive imports/exports running (limit %u)",
                                         ARCHIVE_JOBS_MAX);
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->ctx = ctx;
        j->reply = reply;
        j->report_fd = memfd_create("berth-archive-report", MFD_CLOEXEC);
        if (j->report_fd < 0) {
                r = -errno;
                archive_job_free(j);
                return sd_bus_error_set_errnof(error, -r, "Failed to create the report file: %m");
        }

        pid = fork();
        if (pid < 0) {
                r = -errno;
                archive_job_free(j);
                return sd_bus_error_set_errnof(error, -r, "Failed to fork the archive worker: %m");
        }
        if (pid == 0)
                child_main(ctx, j->report_fd, user_fd, child, userdata);

        /* SIGCHLD is blocked by bus_service_main(), as sd-event's child sources want. */
        r = sd_event_add_child(ctx->event, &j->child_source, pid, WEXITED, on_child_exit, j);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                archive_job_free(j);
                return sd_bus_error_set_errnof(error, -r, "Failed to watch the archive worker: %m");
        }
        j->call = sd_bus_message_ref(call);
        ctx->n_jobs++;
        log_debug("%s: worker pid %d", strna(sd_bus_message_get_member(call)), (int) pid);
        return 1;
}
