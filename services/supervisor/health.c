/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Health checks: every interval the check runs in the container through the exec path (the shim forks
 * and reaps it, with the container's own confinement); its status line says how it ended. A check that
 * fails `retries` times in a row, after the start period, makes the container unhealthy, and
 * on_failure acts once: kill (SIGKILL to every process; the restart policy decides as for any failure),
 * stop (as a user's stop: SIGTERM, SIGKILL after a grace; no restart by the policy) or restart (podman's:
 * recorded with the restart policy's state, then the same kill, and the supervisor starts it again whatever
 * its policy, restart-policy.h). A check that outlives its timeout is killed and counts as failed. Every
 * change of status is written to <state dir>/health-state and announced with ContainerChanged, on which the
 * broker re-reads the container (Health property, PropertiesChanged). A stopped container keeps showing the
 * status its run ended with (docker, podman); a new run (a restart) starts over as "starting": the
 * restarting process removes health-state (restart-policy.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec.h"
#include "fs-util.h"
#include "health-config.h"
#include "health.h"
#include "log.h"
#include "restart-policy.h"
#include "shim-client.h"

typedef struct Health {
        Manager *manager;
        char *id;
        HealthConfig *config;
        char **argv;
        char status[16];
        uint32_t failures;
        bool acted;
        bool running; /* checking a run; false: stopped, the status is the last run's */
        sd_event_source *timer, *io, *timeout;
        sd_event_source *stop_timer; /* on_failure stop: SIGKILL when the grace ends */
        int status_fd, pidfd;
        char line[64];
        size_t len;
} Health;

static GHashTable *checks; /* id → Health* */

static void health_free(Health *h) {
        if (!h)
                return;
        sd_event_source_disable_unref(h->timer);
        sd_event_source_disable_unref(h->io);
        sd_event_source_disable_unref(h->timeout);
        sd_event_source_disable_unref(h->stop_timer);
        safe_close(h->status_fd);
        safe_close(h->pidfd);
        health_config_free(h->config);
        g_strfreev(h->argv);
        free(h->id);
        free(h);
}

static void health_free_void(void *p) {
        health_free(p);
}

const char *health_status(Container *c) {
        Health *h = checks ? g_hash_table_lookup(checks, c->id) : NULL;
        return h ? h->status : "";
}

static void state_save(Health *h, Container *c) {
        char line[64];
        int n = snprintf(line, sizeof(line), "%s %u %d\n", h->status, h->failures, h->acted);

        (void) write_file_atomic_at(c->state_dir_fd, HEALTH_STATE_FILE, line, (size_t) n, 0600);
}

static void state_load(Health *h, Container *c) {
        _cleanup_close_ int fd =
                openat(c->state_dir_fd, HEALTH_STATE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        char buf[64] = {}, status[16];
        unsigned failures;
        int acted;

        if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
                return;
        if (sscanf(buf, "%15s %u %d", status, &failures, &acted) != 3 ||
            !g_strv_contains((const char *const[]){ "starting", "healthy", "unhealthy", NULL }, status))
                return;
        snprintf(h->status, sizeof(h->status), "%s", status);
        h->failures = failures;
        h->acted = acted != 0;
}

static int arm(Health *h, uint64_t usec);

static void set_status(Health *h, Container *c, const char *status) {
        bool changed = !streq(h->status, status);

        snprintf(h->status, sizeof(h->status), "%s", status);
        state_save(h, c);
        if (changed) {
                log_info("Container %s (%s) is %s.", c->id, c->name, status);
                (void) container_emit_changed(c);
        }
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Health *h = userdata;
        Container *c = manager_find(h->manager, h->id);
        ShimReply reply;

        h->stop_timer = sd_event_source_disable_unref(h->stop_timer);
        if (c && c->status == CONTAINER_RUNNING) {
                log_info("Container %s (%s) did not stop in time: SIGKILL.", c->id, c->name);
                (void) shim_call(c->state_dir_fd, SHIM_OP_KILL, SIGKILL, SHIM_KILL_ALL, &reply);
        }
        return 0;
}

/* podman's on_failure stop: the stop a user would make (SIGTERM to the init, SIGKILL to all after the
 * grace), so the restart policy leaves it stopped as it does after a user's stop. */
static void act_stop(Health *h, Container *c) {
        ShimReply reply;
        int r;

        log_info("Container %s (%s) is unhealthy: stopping it.", c->id, c->name);
        restart_note_user_stop(c);
        (void) shim_call(c->state_dir_fd, SHIM_OP_KILL, SIGTERM, 0, &reply);
        r = sd_event_add_time_relative(h->manager->event, &h->stop_timer, CLOCK_MONOTONIC,
                                       HEALTH_STOP_TIMEOUT_USEC, 0, on_stop_timeout, h);
        if (r < 0)
                (void) shim_call(c->state_dir_fd, SHIM_OP_KILL, SIGKILL, SHIM_KILL_ALL, &reply);
}

static void act(Health *h, Container *c) {
        bool restart = h->config->on_failure == HEALTH_ON_FAILURE_RESTART;
        ShimReply reply;

        if (h->acted || h->config->on_failure == HEALTH_ON_FAILURE_NONE)
                return;
        /* The restart is recorded before anything else: a supervisor that dies from here on still
         * restarts it when it finds it stopped, or (found running) forgets it and acts again. */
        if (restart && restart_request_health(c) < 0) {
                /* A user stopped it meanwhile: their stop is not overridden. */
                log_info("Container %s (%s) is unhealthy while its user stops it: not restarted.", c->id,
                         c->name);
                h->acted = true;
                state_save(h, c);
                return;
        }
        h->acted = true;
        state_save(h, c);
        if (h->config->on_failure == HEALTH_ON_FAILURE_STOP) {
                act_stop(h, c);
                return;
        }
        log_info("Container %s (%s) is unhealthy: %s.", c->id, c->name,
                 restart ? "killing it to restart it" : "killing it");
        (void) shim_call(c->state_dir_fd, SHIM_OP_KILL, SIGKILL, SHIM_KILL_ALL, &reply);
}

static void check_done(Health *h, bool ok) {
        Container *c = manager_find(h->manager, h->id);

        h->io = sd_event_source_disable_unref(h->io);
        h->timeout = sd_event_source_disable_unref(h->timeout);
        h->status_fd = safe_close(h->status_fd);
        h->pidfd = safe_close(h->pidfd);
        h->len = 0;
        if (!c || c->status != CONTAINER_RUNNING)
                return;
        if (ok) {
                h->failures = 0;
                set_status(h, c, "healthy");
        } else {
                /* Failures while the container starts up do not count (docker's start period). */
                uint64_t now = (uint64_t) g_get_real_time();
                bool starting = h->config->start_period_usec > 0 && c->started_at > 0 &&
                                now < c->started_at + h->config->start_period_usec;
                if (!starting)
                        h->failures++;
                if (h->failures >= h->config->retries) {
                        set_status(h, c, "unhealthy");
                        act(h, c);
                } else
                        state_save(h, c);
        }
        (void) arm(h, h->config->interval_usec);
}

static int on_status(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Health *h = userdata;
        ssize_t n = read(fd, h->line + h->len, sizeof(h->line) - 1 - h->len);
        int code;

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n > 0) {
                h->len += (size_t) n;
                if (!memchr(h->line, '\n', h->len) && h->len < sizeof(h->line) - 1)
                        return 0;
        }
        h->line[h->len] = 0;
        check_done(h, sscanf(h->line, "%d", &code) == 1 && code == 0);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Health *h = userdata;

        /* The check ran too long: it is killed, and its status (137) makes it a failure. */
        if (h->pidfd >= 0)
                (void) syscall(SYS_pidfd_send_signal, h->pidfd, SIGKILL, NULL, 0);
        else
                check_done(h, false);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Health *h = userdata;
        Container *c = manager_find(h->manager, h->id);
        ExecOptions o = { .args = h->argv };
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int pty = -EBADF;
        const int stdio[3] = { -1, -1, -1 };
        uint32_t pid = 0;
        int fds[2], r;

        h->timer = sd_event_source_disable_unref(h->timer);
        if (!c || c->status != CONTAINER_RUNNING || h->io)
                return 0;
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
                (void) arm(h, h->config->interval_usec);
                return 0;
        }
        h->status_fd = fds[0];
        r = container_exec(c, &o, stdio, fds[1], &pid, &pty, &why);
        safe_close(fds[1]);
        if (r < 0 && r != -ENOEXEC) {
                /* Not even started: a failed check all the same. */
                log_debug("Health check of %s not started: %s", c->id, strna(why));
                check_done(h, false);
                return 0;
        }
        if (pid > 0)
                h->pidfd = (int) syscall(SYS_pidfd_open, (pid_t) pid, 0);
        r = sd_event_add_io(h->manager->event, &h->io, h->status_fd, EPOLLIN, on_status, h);
        if (r >= 0)
                r = sd_event_add_time_relative(h->manager->event, &h->timeout, CLOCK_MONOTONIC,
                                               h->config->timeout_usec, 0, on_timeout, h);
        if (r < 0)
                check_done(h, false);
        return 0;
}

static int arm(Health *h, uint64_t usec) {
        h->timer = sd_event_source_disable_unref(h->timer);
        return sd_event_add_time_relative(h->manager->event, &h->timer, CLOCK_MONOTONIC, usec, 0, on_timer,
                                          h);
}

/* The run ended: no more checks; the status stays for ls and inspect. */
static void disarm(Health *h) {
        h->timer = sd_event_source_disable_unref(h->timer);
        h->io = sd_event_source_disable_unref(h->io);
        h->timeout = sd_event_source_disable_unref(h->timeout);
        h->stop_timer = sd_event_source_disable_unref(h->stop_timer);
        h->status_fd = safe_close(h->status_fd);
        h->pidfd = safe_close(h->pidfd);
        h->len = 0;
        h->running = false;
}

void health_forget(Container *c) {
        if (checks)
                g_hash_table_remove(checks, c->id);
}

void health_update(Container *c) {
        Health *h;
        int r;

        if (!checks)
                checks = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, health_free_void);
        h = g_hash_table_lookup(checks, c->id);
        if (c->status != CONTAINER_RUNNING) {
                if (h && c->status == CONTAINER_STOPPED)
                        disarm(h);
                return;
        }
        if (h && h->running)
                return;
        /* A run we do not check yet: the first, a restart, or one adopted running. Any health restart
         * asked for an earlier run has happened (or, adopted, its kill never came: we act again). */
        restart_health_done(c);
        if (h)
                g_hash_table_remove(checks, c->id);
        h = calloc(1, sizeof(*h));
        if (!h)
                return;
        *h = (Health){ .manager = c->manager, .status_fd = -EBADF, .pidfd = -EBADF, .running = true };
        h->id = strdup(c->id);
        if (!h->id || health_config_load(c->state_dir_fd, &h->config) < 0 ||
            !(h->argv = health_test_argv(h->config->test))) {
                health_free(h);
                return;
        }
        snprintf(h->status, sizeof(h->status), "starting");
        state_load(h, c);
        g_hash_table_replace(checks, h->id, h);
        r = arm(h, h->config->interval_usec);
        if (r < 0)
                log_warning_errno(r, "Cannot schedule the health check of %s: %m", c->id);
}
