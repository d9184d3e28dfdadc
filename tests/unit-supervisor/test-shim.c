/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berth-shim and its protocol, against the real binary (BERTH_SHIM_PATH). A stand-in "init" plays the
 * engine's side of the sync points: it waits for the start byte, then execs (or reports a failure). */
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "shim-client.h"

static char *tmp;
static const char *log_max = "300"; /* --log-max of the next shim_spawn() */

typedef struct Shim {
        int dir_fd;
        pid_t pid; /* the shim (our child, the init's parent) */
} Shim;

/* Forks X; X forks the stand-in init, then execs berth-shim with the fds, like the creating process. */
static void shim_spawn(Shim *s, const char *name, const char *const *argv_init, bool detach,
                       int32_t exec_errno) {
        g_autofree char *dir = g_build_filename(tmp, name, NULL);
        int start[2], execerr[2], ready[2], out[2], err[2];
        char c;

        g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
        s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(s->dir_fd, >=, 0);
        g_assert_cmpint(pipe2(start, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(execerr, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(ready, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(out, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(err, O_CLOEXEC), ==, 0);

        s->pid = fork();
        g_assert_cmpint(s->pid, >=, 0);
        if (s->pid == 0) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/shim.sock", dir);
                if (bind(l, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(l, 8) < 0)
                        _exit(100);
                pid_t init = fork();
                if (init == 0) {
                        close(ready[1]);
                        if (read(start[0], &c, 1) != 1)
                                _exit(99);
                        if (exec_errno) {
                                struct { /* engine.h's EngineExecError */
                                        int32_t e, status;
                                        char msg[512];
                                } rec = { exec_errno, exec_errno == ENOENT ? 127 : 126,
                                          "stand-in exec failure" };
                                if (write(execerr[1], &rec, sizeof(rec)) < 0)
                                        _exit(96);
                                _exit(1);
                        }
                        dup2(out[1], 1);
                        dup2(err[1], 2);
                        execv(argv_init[0], (char *const *) argv_init);
                        _exit(98);
                }
                char a[12][32];
                snprintf(a[0], 32, "%d", init);
                snprintf(a[1], 32, "%d", s->dir_fd);
                snprintf(a[2], 32, "%d", l);
                snprintf(a[3], 32, "%d", start[1]);
                snprintf(a[4], 32, "%d", execerr[0]);
                snprintf(a[5], 32, "%d", ready[1]);
                snprintf(a[6], 32, "%d", out[0]);
                snprintf(a[7], 32, "%d", err[0]);
                int keep[] = { s->dir_fd, l, start[1], execerr[0], ready[1], out[0], err[0] };
                for (size_t i = 0; i < G_N_ELEMENTS(keep); i++)
                        fcntl(keep[i], F_SETFD, 0);
                const char *argv[30] = { "berth-shim", "--id",           name, "--init-pid",
                                         a[0],         "--state-dir-fd", a[1], "--listen-fd",
                                         a[2],         "--start-fd",     a[3], "--exec-err-fd",
                                         a[4],         "--ready-fd",     a[5], "--log-max",
                                         log_max };
                size_t n = 17;
                if (detach) {
                        argv[n++] = "--log-out-fd";
                        argv[n++] = a[6];
                        argv[n++] = "--log-err-fd";
                        argv[n++] = a[7];
                }
                argv[n] = NULL;
                execv(g_getenv("BERTH_SHIM_PATH"), (char *const *) argv);
                _exit(97);
        }
        close(start[0]);
        close(start[1]);
        close(execerr[0]);
        close(execerr[1]);
        close(ready[1]);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
        g_assert_cmpint(c, ==, 'R');
        close(ready[0]);
}

static void shim_wait(Shim *s) {
        int status;

        g_assert_cmpint(waitpid(s->pid, &status, 0), ==, s->pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

static char *read_at(int dir_fd, const char *name) {
        int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
        char buf[8192];
        ssize_t n;

        if (fd < 0)
                return NULL;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        g_assert_cmpint(n, >=, 0);
        buf[n] = 0;
        return g_strdup(buf);
}

static void test_exit_code(void) {
        const char *argv[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 7", NULL };
        g_autofree char *rec = NULL, *log = NULL;
        ShimReply r;
        Shim s;

        shim_spawn(&s, "exit", argv, true, 0);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_STATE, 0, 0, &r), ==, 0);
        g_assert_cmpuint(r.status, ==, SHIM_STATUS_CREATED);
        g_assert_cmpint(r.pid, >, 0);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_START, 0, 0, &r), ==, 0);
        g_assert_cmpint(r.error, ==, 0);
        g_assert_cmpuint(r.status, ==, SHIM_STATUS_RUNNING);
        shim_wait(&s);
        rec = read_at(s.dir_fd, "exit");
        g_assert_nonnull(rec);
        g_assert_true(g_str_has_prefix(rec, "7 exited "));
        log = read_at(s.dir_fd, "log");
        g_assert_nonnull(strstr(log, " stdout F out\n"));
        g_assert_nonnull(strstr(log, " stderr F err\n"));
        /* The socket is gone with the shim. */
        g_assert_cmpint(shim_connect(s.dir_fd), <, 0);
        close(s.dir_fd);
}

static void test_kill(void) {
        const char *argv[] = { "/bin/sleep", "1000", NULL };
        g_autofree char *rec = NULL;
        ShimReply r;
        Shim s;

        shim_spawn(&s, "kill", argv, false, 0);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_START, 0, 0, &r), ==, 0);
        /* A second start is refused. */
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_START, 0, 0, &r), ==, 0);
        g_assert_cmpint(r.error, ==, EBUSY);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_STATE, 0, 0, &r), ==, 0);
        g_assert_cmpuint(r.status, ==, SHIM_STATUS_RUNNING);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_KILL, 0, 0, &r), ==, 0);
        g_assert_cmpint(r.error, ==, EINVAL);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_KILL, SIGTERM, 0, &r), ==, 0);
        g_assert_cmpint(r.error, ==, 0);
        shim_wait(&s);
        rec = read_at(s.dir_fd, "exit");
        g_assert_true(g_str_has_prefix(rec, "143 signal "));
        close(s.dir_fd);
}

static void test_exec_failed(void) {
        const char *argv[] = { "/nonexistent", NULL };
        g_autofree char *rec = NULL;
        ShimReply r;
        Shim s;

        shim_spawn(&s, "execfail", argv, false, ENOENT);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_START, 0, 0, &r), ==, 0);
        g_assert_cmpint(r.error, ==, ENOENT);
        g_assert_cmpstr(r.message, ==, "stand-in exec failure");
        shim_wait(&s);
        rec = read_at(s.dir_fd, "exit");
        g_assert_true(g_str_has_prefix(rec, "127 exec-failed "));
        close(s.dir_fd);
}

static void test_event_and_bad_peer(void) {
        const char *argv[] = { "/bin/sh", "-c", "read x; exit 3", NULL };
        ShimRequest q = { .magic = 0xdead, .version = 1, .op = SHIM_OP_STATE };
        ShimReply r;
        Shim s;
        int watch, bad;

        shim_spawn(&s, "event", argv, false, 0);
        /* A malformed request closes that connection and nothing else. */
        bad = shim_connect(s.dir_fd);
        g_assert_cmpint(bad, >=, 0);
        g_assert_cmpint(send(bad, &q, sizeof(q), 0), ==, sizeof(q));
        g_assert_cmpint(recv(bad, &r, sizeof(r), 0), ==, 0);
        close(bad);

        watch = shim_connect(s.dir_fd);
        q.magic = SHIM_PROTOCOL_MAGIC;
        g_assert_cmpint(send(watch, &q, sizeof(q), 0), ==, sizeof(q));
        g_assert_cmpint(recv(watch, &r, sizeof(r), 0), ==, sizeof(r));
        g_assert_cmpuint(r.type, ==, SHIM_MSG_REPLY);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_START, 0, 0, &r), ==, 0);
        /* stdin is /dev/null here: read fails, sh exits 3. The watcher hears running, then stopped. */
        for (;;) {
                g_assert_cmpint(recv(watch, &r, sizeof(r), 0), ==, sizeof(r));
                g_assert_cmpuint(r.type, ==, SHIM_MSG_EVENT);
                if (r.status == SHIM_STATUS_STOPPED)
                        break;
        }
        g_assert_cmpint(r.exit_code, ==, 3);
        g_assert_cmpuint(r.reason, ==, SHIM_REASON_EXITED);
        close(watch);
        shim_wait(&s);
        close(s.dir_fd);
}

static void test_log_rotation(void) {
        const char *argv[] = { "/bin/sh", "-c", "i=0; while [ $i -lt 40 ]; do echo line$i; i=$((i+1)); done",
                               NULL };
        g_autofree char *cur = NULL, *old = NULL;
        ShimReply r;
        Shim s;

        shim_spawn(&s, "rotate", argv, true, 0);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_START, 0, 0, &r), ==, 0);
        shim_wait(&s);
        cur = read_at(s.dir_fd, "log");
        old = read_at(s.dir_fd, "log.1");
        g_assert_nonnull(old);
        /* The cap was 300 bytes: both files are about that size, the newest line is in the current one. */
        g_assert_cmpuint(strlen(old), <, 300 + 100);
        g_assert_nonnull(strstr(cur ?: "", "line39") ?: strstr(old, "line39"));
        close(s.dir_fd);
}

/* SHIM_OP_LOG_FOLLOW: a pipe passed with the request gets "<inode> <size>" of the current log file, then
 * every later record, and EOF when the shim exits. */
static void test_log_follow(void) {
        g_autofree char *stop = g_build_filename(tmp, "follow-stop", NULL);
        g_autofree char *script = g_strdup_printf(
                "echo one; while [ ! -e '%s' ]; do sleep 0.02; done; echo two; echo three >&2", stop);
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        ShimRequest q = { .magic = SHIM_PROTOCOL_MAGIC,
                          .version = SHIM_PROTOCOL_VERSION,
                          .op = SHIM_OP_LOG_FOLLOW };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q) };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        char buf[4096];
        size_t len = 0;
        unsigned long long ino, size;
        struct stat st;
        ShimReply r;
        Shim s;
        int p[2], sock;

        shim_spawn(&s, "follow", argv, true, 0);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_START, 0, 0, &r), ==, 0);
        for (int i = 0; i < 1000; i++) {
                g_autofree char *log = read_at(s.dir_fd, "log");
                if (log && strstr(log, "stdout F one"))
                        break;
                usleep(10000);
        }
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        sock = shim_connect(s.dir_fd);
        g_assert_cmpint(sock, >=, 0);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
        g_assert_cmpint(sendmsg(sock, &mh, 0), ==, (ssize_t) sizeof(q));
        close(p[1]);
        do
                g_assert_cmpint(recv(sock, &r, sizeof(r), 0), ==, (ssize_t) sizeof(r));
        while (r.type != SHIM_MSG_REPLY);
        g_assert_cmpint(r.error, ==, 0);
        close(sock);
        /* The header names the current file and how much of it was written before following began. */
        while (!memchr(buf, '\n', len)) {
                ssize_t n = read(p[0], buf + len, 1);
                g_assert_cmpint(n, ==, 1);
                len++;
        }
        buf[len] = 0;
        g_assert_cmpint(sscanf(buf, "%llu %llu", &ino, &size), ==, 2);
        g_assert_cmpint(fstatat(s.dir_fd, "log", &st, 0), ==, 0);
        g_assert_cmpuint(ino, ==, st.st_ino);
        g_assert_cmpuint(size, ==, (unsigned long long) st.st_size);
        g_assert_cmpint(close(open(stop, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), ==, 0);
        /* Then what came after, and the end with the shim. */
        len = 0;
        for (;;) {
                ssize_t n = read(p[0], buf + len, sizeof(buf) - 1 - len);
                g_assert_cmpint(n, >=, 0);
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = 0;
        g_assert_null(strstr(buf, " one"));
        g_assert_nonnull(strstr(buf, " stdout F two\n"));
        g_assert_nonnull(strstr(buf, " stderr F three\n"));
        close(p[0]);
        shim_wait(&s);
        close(s.dir_fd);
}

/* ---- a follower behind ------------------------------------------------------------------------------ */

/* A follow pipe of pipe_size bytes through shim_call_fds(), as the supervisor makes it; its header read. */
static int follow_pipe(Shim *s, int pipe_size) {
        ShimReply r;
        int p[2], unused = -EBADF;
        char c;

        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpint(fcntl(p[1], F_SETPIPE_SZ, pipe_size), >=, pipe_size);
        g_assert_cmpint(shim_call_fds(s->dir_fd, SHIM_OP_LOG_FOLLOW, 0, &p[1], 1, &r, &unused), ==, 0);
        g_assert_cmpint(r.error, ==, 0);
        close(p[1]);
        do
                g_assert_cmpint(read(p[0], &c, 1), ==, 1);
        while (c != '\n');
        return p[0];
}

/* Appends what fd has now (blocking for at least one byte), or to its end with until_eof. */
static void read_more(int fd, GString *into, bool until_eof) {
        char buf[65536];

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                g_assert_cmpint(n, >=, until_eof ? 0 : 1); /* no EOF before the end */
                g_string_append_len(into, buf, n);
                if (!until_eof || n == 0)
                        return;
        }
}

static bool log_has(Shim *s, const char *needle) {
        g_autofree char *dir = NULL, *cur = NULL, *old = NULL, *path = NULL;
        char proc[64];

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", s->dir_fd);
        dir = g_file_read_link(proc, NULL);
        path = g_build_filename(dir, "log", NULL);
        (void) g_file_get_contents(path, &cur, NULL, NULL);
        g_free(path);
        path = g_build_filename(dir, "log.1", NULL);
        (void) g_file_get_contents(path, &old, NULL, NULL);
        return (cur && strstr(cur, needle)) || (old && strstr(old, needle));
}

/* The records of a follow stream, "<time> stdout F <n>" for n = 0, 1, …, lines - 1 and then "end": each
 * once and in order, except where a marker says that rotation removed bytes; those must be exactly the
 * records missing there (with the rest of one the reader got a part of). Returns the markers seen. */
static unsigned check_follow_stream(const char *stream, unsigned lines) {
        g_auto(GStrv) l = g_strsplit(stream, "\n", -1);
        unsigned next = 0, markers = 0;
        size_t part = 0; /* a record cut short just before a marker: its length */
        bool ended = false;

        for (size_t i = 0; l[i] && l[i][0]; i++) {
                const char *text = strstr(l[i], "Z stdout F ");
                unsigned long long skipped;
                char *end;

                g_assert_false(ended);
                if (strstr(l[i], "Z stderr F [berth] ")) {
                        g_assert_cmpint(sscanf(strstr(l[i], "[berth] "), "[berth] %llu bytes of log skipped",
                                               &skipped),
                                        ==, 1);
                        markers++;
                        if (part > 0) {
                                char num[16];
                                size_t whole = 38 + (size_t) snprintf(num, sizeof(num), "%u", next);
                                g_assert_cmpuint(part, <, whole);
                                g_assert_cmpuint(skipped, >=, whole - part);
                                skipped -= whole - part;
                                next++;
                                part = 0;
                        }
                        while (skipped > 0 && next < lines) {
                                char num[16];
                                size_t whole = 38 + (size_t) snprintf(num, sizeof(num), "%u", next);
                                g_assert_cmpuint(skipped, >=, whole);
                                skipped -= whole;
                                next++;
                        }
                        g_assert_cmpuint(skipped, ==, 0);
                        continue;
                }
                g_assert_cmpuint(part, ==, 0); /* a part only right before a marker */
                if (text && strcmp(text + 11, "end") == 0 && next == lines) {
                        ended = true;
                        continue;
                }
                if (text == l[i] + 26 && text[11] != 0 && strtoul(text + 11, &end, 10) == next &&
                    *end == 0) {
                        next++;
                        continue;
                }
                part = strlen(l[i]);
        }
        g_assert_true(ended);
        g_assert_cmpuint(next, ==, lines);
        return markers;
}

/* A reader that does not read while the container writes far more than its pipe holds: it is not
 * dropped; once it reads, it gets every record once, in order, then what is logged live, then EOF. (The
 * container gives up waiting after a minute only so that a failed run leaves nothing behind.) */
static void test_log_follow_behind(void) {
        g_autofree char *stop = g_build_filename(tmp, "behind-stop", NULL);
        g_autofree char *script = g_strdup_printf(
                "i=0; while [ $i -lt 20000 ]; do echo $i; i=$((i+1)); done; "
                "n=0; while [ ! -e '%s' ] && [ $n -lt 3000 ]; do sleep 0.02; n=$((n+1)); done; echo end",
                stop);
        const char *argv[] = { "/bin/sh", "-c", script, NULL };
        g_autoptr(GString) got = g_string_new(NULL);
        ShimReply r;
        Shim s;
        int fd;

        log_max = "100000000";
        shim_spawn(&s, "behind", argv, true, 0);
        log_max = "300";
        fd = follow_pipe(&s, 4096);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_START, 0, 0, &r), ==, 0);
        /* All of it logged while the pipe held a page: the follower is long behind. */
        while (!log_has(&s, " stdout F 19999\n"))
                usleep(10000);
        /* It catches up, and is live again: the end comes as it is logged. */
        while (!strstr(got->str, " stdout F 19999\n"))
                read_more(fd, got, false);
        g_assert_cmpint(close(open(stop, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), ==, 0);
        read_more(fd, got, true);
        g_assert_cmpuint(check_follow_stream(got->str, 20000), ==, 0);
        close(fd);
        shim_wait(&s);
        close(s.dir_fd);
}

/* The same across rotations (--log-max 300) and the container's exit while the reader still does not
 * read: the shim exits (a child serves the follower), the reader gets what is in the files, each
 * record once and in order, and a marker with the exact size of what was rotated away before it read it. */
static void test_log_follow_behind_rotation(void) {
        const char *argv[] = { "/bin/sh", "-c",
                               "i=0; while [ $i -lt 5000 ]; do echo $i; i=$((i+1)); done; echo end", NULL };
        g_autoptr(GString) got = g_string_new(NULL);
        ShimReply r;
        Shim s;
        int fd;

        shim_spawn(&s, "behind-rotation", argv, true, 0);
        fd = follow_pipe(&s, 4096);
        g_assert_cmpint(shim_call(s.dir_fd, SHIM_OP_START, 0, 0, &r), ==, 0);
        shim_wait(&s);
        read_more(fd, got, true);
        g_assert_cmpuint(check_follow_stream(got->str, 5000), >=, 1);
        g_assert_nonnull(strstr(got->str, " stdout F 4999\n"));
        close(fd);
        close(s.dir_fd);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        if (geteuid() != 0) {
                /* The shim talks to root only (SO_PEERCRED): nothing to test as another user. */
                g_test_skip("needs root");
                return 77;
        }
        signal(SIGPIPE, SIG_IGN);
        tmp = g_dir_make_tmp("berth-shim-XXXXXX", NULL);
        g_test_add_func("/shim/exit-code-and-log", test_exit_code);
        g_test_add_func("/shim/kill", test_kill);
        g_test_add_func("/shim/exec-failed", test_exec_failed);
        g_test_add_func("/shim/event-and-bad-peer", test_event_and_bad_peer);
        g_test_add_func("/shim/log-rotation", test_log_rotation);
        g_test_add_func("/shim/log-follow", test_log_follow);
        g_test_add_func("/shim/log-follow-behind", test_log_follow_behind);
        g_test_add_func("/shim/log-follow-behind-rotation", test_log_follow_behind_rotation);
        r = g_test_run();
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
        if (system(cmd) != 0)
                g_printerr("could not remove %s\n", tmp);
        return r;
}
