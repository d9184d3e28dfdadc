/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berth-runspec: a runc-like test driver for the engine (build directory only, never installed).
 *
 *   berth-runspec run [--detach] BUNDLE   run BUNDLE/config.json in the foreground, wait, exit with the
 *                                         container's status (N, 128+N on signal N, 127/126 when the
 *                                         process cannot be executed, 137 on an OOM kill)
 *   berth-runspec create BUNDLE           create, print the init's pid, then read stdin: a line "start"
 *                                         starts it and waits as run does; EOF makes the init exit.
 *
 * root.path may be relative to BUNDLE, as with runc. The bundle directory is the state directory. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "exe-seal.h"
#include "fs-util.h"
#include "json-util.h"

#define CONFIG_MAX (16U * 1024U * 1024U)

static volatile pid_t forward_pid = 0;

/* BERTH_RUNSPEC_TIMING=1: print where the time of one run goes (µs since main()), for the benchmark. */
static bool timing = false;
static struct timespec t_main;

static void mark(const char *what) {
        struct timespec t;
        if (!timing)
                return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        fprintf(stderr, "berth-runspec: timing %s %ld us\n", what,
                (long) ((t.tv_sec - t_main.tv_sec) * 1000000L + (t.tv_nsec - t_main.tv_nsec) / 1000L));
}

static void forward_signal(int sig) {
        if (forward_pid > 0)
                (void) kill(forward_pid, sig);
}

static int load_spec(const char *bundle, int *ret_dir_fd, JsonNode **ret) {
        _cleanup_close_ int dir_fd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *data = NULL, *msg = NULL, *abs_bundle = NULL;
        JsonNode *root = NULL;
        size_t size;
        int r;

        dir_fd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return fprintf(stderr, "berth-runspec: cannot open bundle '%s': %m\n", bundle), -errno;
        fd = openat(dir_fd, "config.json", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return fprintf(stderr, "berth-runspec: cannot open '%s/config.json': %m\n", bundle), -errno;
        r = read_regular_file_fd(fd, CONFIG_MAX, &data, &size);
        if (r < 0)
                return fprintf(stderr, "berth-runspec: cannot read config.json: %s\n", strerror(-r)), r;
        r = json_parse_bounded(data, size, CONFIG_MAX, &root, &msg);
        if (r < 0)
                return fprintf(stderr, "berth-runspec: config.json: %s\n", strna(msg)), r;

        /* root.path relative to the bundle, as runc reads it. */
        JsonObject *o = JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
        JsonNode *rn = o ? json_object_get_member(o, "root") : NULL;
        if (rn && JSON_NODE_HOLDS_OBJECT(rn)) {
                JsonObject *ro = json_node_get_object(rn);
                JsonNode *pn = json_object_get_member(ro, "path");
                if (pn && JSON_NODE_HOLDS_VALUE(pn) && json_node_get_value_type(pn) == G_TYPE_STRING &&
                    json_node_get_string(pn)[0] != '/') {
                        abs_bundle = realpath(bundle, NULL);
                        if (!abs_bundle) {
                                json_node_unref(root);
                                return -errno;
                        }
                        g_autofree char *p = g_strdup_printf("%s/%s", abs_bundle, json_node_get_string(pn));
                        json_object_set_string_member(ro, "path", p);
                }
        }
        *ret_dir_fd = TAKE_FD(dir_fd);
        *ret = root;
        return 0;
}

static void relay_terminal(int master, pid_t pid) {
        struct termios saved, raw;
        bool is_tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
        char buf[4096];

        if (is_tty) {
                raw = saved;
                cfmakeraw(&raw);
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        }
        struct pollfd p[2] = { { .fd = master, .events = POLLIN },
                               { .fd = STDIN_FILENO, .events = POLLIN } };
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = read(master, buf, sizeof(buf));
                        if (n <= 0)
                                break;
                        (void) loop_write(STDOUT_FILENO, buf, (size_t) n);
                }
                if (p[1].revents & (POLLIN | POLLHUP)) {
                        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
                        if (n <= 0)
                                p[1].fd = -1;
                        else
                                (void) loop_write(master, buf, (size_t) n);
                }
        }
        if (is_tty)
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
}

static int start_and_wait(int state_dir_fd, JsonNode *spec, EngineContainer *c) {
        EngineExecError x;
        int status;
        ssize_t n;

        forward_pid = c->init_pid;
        mark("created");
        if (loop_write(c->start_fd, "s", 1) < 0)
                fprintf(stderr, "berth-runspec: cannot start the container: %m\n");
        c->start_fd = safe_close(c->start_fd);

        n = read(c->exec_err_fd, &x, sizeof(x));
        if (n == (ssize_t) sizeof(x)) {
                x.message[sizeof(x.message) - 1] = '\0';
                fprintf(stderr, "berth-runspec: %s\n", x.message);
        }
        c->exec_err_fd = safe_close(c->exec_err_fd);
        mark("executed");

        if (c->pty_master >= 0) {
                relay_terminal(c->pty_master, c->init_pid);
                c->pty_master = safe_close(c->pty_master);
        }

        while (waitpid(c->init_pid, &status, 0) < 0)
                if (errno != EINTR) {
                        fprintf(stderr, "berth-runspec: waitpid: %m\n");
                        return 1;
                }

        mark("exited");
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        uint64_t ooms = 0;
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
            engine_oom_kill_count(state_dir_fd, &ooms) >= 0 && ooms > 0)
                fprintf(stderr, "berth-runspec: container was OOM-killed\n");

        BerthError e = {};
        if (engine_cgroup_remove(spec, &e) < 0)
                fprintf(stderr, "berth-runspec: %s\n", e.message);
        mark("cleaned-up");
        return code;
}

static int usage(void) {
        fprintf(stderr, "usage: berth-runspec run [--detach] BUNDLE\n       berth-runspec create BUNDLE\n");
        return 2;
}

int main(int argc, char **argv) {
        _cleanup_close_ int state_dir_fd = -EBADF;
        _cleanup_json_node_ JsonNode *spec = NULL;
        EngineIO io = { .stdio = { 0, 1, 2 } };
        EngineContainer c;
        BerthError e = {};
        bool detach = false, create = false;
        const char *bundle;
        int r;

        /* First thing: run from a sealed copy of ourselves (exe-seal.h, CVE-2019-5736). The tests skip it
         * once on purpose, to see engine_create() refuse. */
        r = getenv("BERTH_RUNSPEC_UNSEALED") ? 0 : exe_seal_reexec(argv);
        if (r < 0) {
                fprintf(stderr, "berth-runspec: cannot re-execute from a sealed copy: %s\n", strerror(-r));
                return 1;
        }

        timing = getenv("BERTH_RUNSPEC_TIMING");
        clock_gettime(CLOCK_MONOTONIC, &t_main);
        if (argc < 3)
                return usage();
        if (streq(argv[1], "run")) {
                int i = 2;
                if (streq(argv[i], "--detach") || streq(argv[i], "-d")) {
                        detach = true;
                        i++;
                }
                if (i != argc - 1)
                        return usage();
                bundle = argv[i];
        } else if (streq(argv[1], "create") && argc == 3) {
                create = true;
                bundle = argv[2];
        } else
                return usage();

        r = load_spec(bundle, &state_dir_fd, &spec);
        if (r < 0)
                return 1;

        /* A container that died before START must not kill us with SIGPIPE on start_fd (the engine
         * resets the container's signals, so this does not leak into it). */
        (void) signal(SIGPIPE, SIG_IGN);
        struct sigaction sa = { .sa_handler = forward_signal, .sa_flags = SA_RESTART };
        sigemptyset(&sa.sa_mask);
        int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                (void) sigaction(sigs[i], &sa, NULL);

        mark("spec-loaded");
        r = engine_create(state_dir_fd, spec, &io, &c, &e);
        if (r < 0) {
                fprintf(stderr, "berth-runspec: %s\n", e.message);
                return 1;
        }

        if (create) {
                char line[64];
                printf("%d\n", (int) c.init_pid);
                fflush(stdout);
                if (!fgets(line, sizeof(line), stdin) || strncmp(line, "start", 5) != 0) {
                        int status;
                        c.start_fd = safe_close(c.start_fd);
                        while (waitpid(c.init_pid, &status, 0) < 0 && errno == EINTR)
                                ;
                        (void) engine_cgroup_remove(spec, &e);
                        return 0;
                }
        }
        if (detach) {
                (void) loop_write(c.start_fd, "s", 1);
                printf("%d\n", (int) c.init_pid);
                return 0;
        }
        return start_and_wait(state_dir_fd, spec, &c);
}
