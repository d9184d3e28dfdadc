/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restart policies: the record, the decision and the back-off, and the restart itself (see
 * restart-policy.h). The restart repeats the tail of a creation (container-create.c) with what is on
 * disk already: the rootfs stays mounted while the container is stopped, config.json is the spec that
 * ran, so the new creating process R only needs:
 *
 *   supervisor                          R (own session, dies with us until it is the shim)
 *   fork ──────────────────────────────► 1. join the host mount namespace, open the state directory
 *                                        2. remove the old exit record, bind shim.sock anew
 *                                        3. under systemd: berth-<id>.scope again (container-scope.h)
 *                                        4. remove the old (empty) cgroup, engine_create() from config.json
 *                                        5. execve(berth-shim) ── 'R' when it listens (shim-launch.h)
 *   watch the shim, SHIM_OP_START, "running"
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container-scope.h"
#include "engine.h"
#include "fs-util.h"
#include "health-config.h"
#include "host-mntns.h"
#include "json-util.h"
#include "log.h"
#include "restart-policy.h"
#include "shim-client.h"
#include "shim-launch.h"
#include "shim-protocol.h"

#define RESTART_RECORD_MAX 4096U

/* ---- the record -------------------------------------------------------------------------------- */

static int restart_save(Container *c) {
        RestartState *s = c->restart;
        char buf[512], pol[RESTART_POLICY_STRING_MAX];
        int n;

        n = snprintf(buf, sizeof(buf),
                     "{\"policy\":\"%s\",\"count\":%" PRIu32 ",\"stopped_by_user\":%s,\"log_max\":%" PRIu64
                     ",\"health_restart\":%s,\"health_restarts\":%" PRIu32 "}\n",
                     restart_policy_format(&s->policy, pol), s->count, s->stopped_by_user ? "true" : "false",
                     s->log_max, s->health_restart ? "true" : "false", s->health_restarts);
        if (n < 0 || (size_t) n >= sizeof(buf))
                return -ENOBUFS;
        /* Under /run, as the state record (container.c): atomic, not flushed. */
        return write_file_atomic_nosync_at(c->state_dir_fd, RESTART_FILE, buf, (size_t) n, 0600);
}

static RestartState *restart_state_new(void) {
        RestartState *s = g_new0(RestartState, 1);

        s->creator_fd = -EBADF;
        return s;
}

int restart_state_create(Container *c, const ContainerRequest *req) {
        RestartState *s = restart_state_new();
        int r;

        r = restart_policy_parse(req->restart, &s->policy);
        if (r < 0) {
                restart_state_free(s);
                return r;
        }
        s->log_max = req->log_max_size;
        restart_state_free(c->restart);
        c->restart = s;
        return restart_save(c);
}

typedef struct RestartRecord {
        char *policy;
        uint64_t count, log_max, health_restarts;
        bool stopped_by_user, health_restart;
} RestartRecord;

int restart_state_load(Container *c) {
        static const JsonField table[] = {
                { "policy", JSON_FIELD_STRING, offsetof(RestartRecord, policy), JSON_MANDATORY },
                { "count", JSON_FIELD_UINT64, offsetof(RestartRecord, count), 0 },
                { "stopped_by_user", JSON_FIELD_BOOL, offsetof(RestartRecord, stopped_by_user), 0 },
                { "log_max", JSON_FIELD_UINT64, offsetof(RestartRecord, log_max), 0 },
                { "health_restart", JSON_FIELD_BOOL, offsetof(RestartRecord, health_restart), 0 },
                { "health_restarts", JSON_FIELD_UINT64, offsetof(RestartRecord, health_restarts), 0 },
                {},
        };
        _cleanup_free_ char *msg = NULL;
        _cleanup_json_node_ JsonNode *root = NULL;
        RestartRecord rec = {};
        RestartState *s;
        int r;

        r = json_parse_file_at(c->state_dir_fd, RESTART_FILE, RESTART_RECORD_MAX, &root, &msg);
        if (r == -ENOENT)
                return 0;
        if (r >= 0 && !JSON_NODE_HOLDS_OBJECT(root))
                r = -EBADMSG;
        if (r >= 0)
                r = json_dispatch(json_node_get_object(root), table, &rec, NULL, &msg);
        s = restart_state_new();
        if (r >= 0)
                r = restart_policy_parse(rec.policy, &s->policy);
        if (r >= 0 && (rec.count > UINT32_MAX || rec.health_restarts > rec.count ||
                       (rec.log_max != 0 &&
                        (rec.log_max < REQUEST_LOG_SIZE_MIN || rec.log_max > REQUEST_LOG_SIZE_MAX))))
                r = -EBADMSG;
        free(rec.policy);
        if (r < 0) {
                restart_state_free(s);
                return r;
        }
        s->count = (uint32_t) rec.count;
        s->stopped_by_user = rec.stopped_by_user;
        s->log_max = rec.log_max;
        s->health_restart = rec.health_restart;
        s->health_restarts = (uint32_t) rec.health_restarts;
        restart_state_free(c->restart);
        c->restart = s;
        return 0;
}

void restart_state_free(RestartState *s) {
        if (!s)
                return;
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->creator_source);
        safe_close(s->creator_fd);
        g_free(s);
}

bool restart_in_flight(const Container *c) {
        return c->restart && c->restart->in_flight;
}

bool restart_pending(const Container *c) {
        return c->restart && (c->restart->in_flight || c->restart->timer);
}

uint32_t restart_count(const Container *c) {
        return c->restart ? c->restart->count : 0;
}

uint64_t restart_log_max(const Container *c) {
        return c->restart ? c->restart->log_max : 0;
}

void restart_note_user_stop(Container *c) {
        if (!c->restart || (c->restart->stopped_by_user && !c->restart->health_restart))
                return;
        c->restart->stopped_by_user = true;
        /* A user's stop wins over a health restart asked before it. */
        c->restart->health_restart = false;
        c->restart->timer = sd_event_source_disable_unref(c->restart->timer);
        if (restart_save(c) < 0)
                log_warning("Cannot record the stop of container %s by its user.", c->id);
}

int restart_request_health(Container *c) {
        if (!c->restart) {
                /* A container made before restart records carried log_max: policy "no", the shim's log
                 * default. */
                c->restart = restart_state_new();
                c->restart->policy.mode = RESTART_NO;
        }
        if (c->restart->stopped_by_user)
                return -ECANCELED;
        if (c->restart->health_restart)
                return 0;
        c->restart->health_restart = true;
        /* Written before the kill: a supervisor that dies in between still restarts it on adoption. */
        if (restart_save(c) < 0)
                log_warning("Cannot record the health restart of container %s.", c->id);
        return 0;
}

void restart_health_done(Container *c) {
        if (!c->restart || !c->restart->health_restart)
                return;
        c->restart->health_restart = false;
        if (restart_save(c) < 0)
                log_warning("Cannot record the health restart of container %s as done.", c->id);
}

/* ---- R, the restarting process -------------------------------------------------------------------- */

/* Under systemd the restarted shim and container go to berth-<id>.scope as on a creation
 * (container-scope.h): never into the supervisor's unit. The last run's scope went when it emptied; while
 * systemd has not collected it yet, the call fails and the policy tries again after its next delay. */
static int restarter_join_scope(const Container *c, JsonNode *spec, BerthError *err) {
        g_autofree char *description =
                g_strdup_printf("berth container '%s' (image %.19s)", c->name, strna(c->image_config));
        ContainerScope scope = {};
        char path[PATH_MAX];
        const char *in_spec = NULL;
        JsonObject *linux_obj;
        int r;

        r = container_scope_begin(&scope, c->id, description, err);
        if (r >= 0)
                r = container_scope_finish(&scope, path, sizeof(path), err);
        container_scope_done(&scope);
        if (r < 0)
                return r;
        /* config.json names the cgroup the first run had: the scope's, or the engine would make one
         * outside the unit. */
        linux_obj = JSON_NODE_HOLDS_OBJECT(spec)
                            ? json_object_get_object_member(json_node_get_object(spec), "linux")
                            : NULL;
        if (linux_obj && json_object_has_member(linux_obj, "cgroupsPath"))
                in_spec = json_object_get_string_member(linux_obj, "cgroupsPath");
        if (!in_spec || !streq(in_spec, path))
                return berth_error_set(err, EBADMSG, "config.json's cgroupsPath is not %s", path);
        return 0;
}

static _noreturn_ void restarter_main(Manager *m, const Container *c, int sock) {
        g_autofree char *state_path = g_strdup_printf("%s/%s", m->containers_path, c->id);
        _cleanup_free_ char *msg = NULL;
        g_autoptr(JsonNode) spec = NULL;
        EngineContainer ec = { .init_pid = 0, .start_fd = -1, .exec_err_fd = -1, .pty_master = -1 };
        EngineIO io = { .stdio = { -1, -1, -1 }, .terminal = c->tty };
        int pipes[2][2] = { { -1, -1 }, { -1, -1 } };
        BerthError err = {};
        int dir_fd, listen_fd, r;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        (void) setsid();
        /* As for a creation: the event loop's blocked and ignored signals must not reach the container. */
        shim_launch_reset_signals();

        if (host_mntns_join() < 0)
                _exit(10);
        dir_fd = open(state_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                _exit(11);
        /* The last run's record would tell a restarted supervisor that this run ended already; its health
         * state is the last run's too: the new run starts over as "starting" (docker, podman). */
        (void) unlinkat(dir_fd, SHIM_EXIT_FILE, 0);
        (void) unlinkat(dir_fd, HEALTH_STATE_FILE, 0);
        listen_fd = shim_launch_bind(dir_fd);
        if (listen_fd < 0)
                _exit(12);
        /* Read back as any spec: bounded here, validated by the engine (spec.c) as on a creation. */
        if (json_parse_file_at(dir_fd, "config.json", CONTAINER_SPEC_MAX, &spec, &msg) < 0)
                _exit(13);
        if (container_scope_wanted() && restarter_join_scope(c, spec, &err) < 0) {
                fprintf(stderr, "Restarting container %s failed: %s\n", c->id, err.message);
                (void) unlinkat(dir_fd, SHIM_SOCKET_FILE, 0);
                _exit(17);
        }
        /* The last run's cgroup is empty (its pid namespace died with its init): the engine makes it
         * anew with the spec's limits. */
        (void) engine_cgroup_remove(spec, &err);
        /* A restarted container's output goes to its log, whatever the first run did with it. */
        for (int i = 0; i < 2 && !c->tty; i++) {
                if (pipe2(pipes[i], O_CLOEXEC) < 0)
                        _exit(14);
                io.stdio[i + 1] = pipes[i][1];
        }
        r = engine_create(dir_fd, spec, &io, &ec, &err);
        if (r < 0) {
                fprintf(stderr, "Restarting container %s failed: %s\n", c->id, err.message);
                (void) unlinkat(dir_fd, SHIM_SOCKET_FILE, 0);
                _exit(15);
        }
        for (int i = 0; i < 2; i++)
                pipes[i][1] = safe_close(pipes[i][1]);

        ShimLaunch launch = {
                .id = c->id,
                .init_pid = ec.init_pid,
                .dir_fd = dir_fd,
                .listen_fd = listen_fd,
                .start_fd = ec.start_fd,
                .exec_err_fd = ec.exec_err_fd,
                .ready_fd = sock,
                .log_out_fd = c->tty ? ec.pty_master : pipes[0][0],
                .log_err_fd = c->tty ? -1 : pipes[1][0],
                .created_at = c->created_at,
                .log_max = c->restart->log_max,
        };
        (void) shim_launch_exec(m, &launch);
        (void) kill(ec.init_pid, SIGKILL);
        _exit(16);
}

/* ---- the supervisor's side ---------------------------------------------------------------------- */

static void restart_failed(Container *c, const char *why) {
        RestartState *s = c->restart;

        log_warning("Restarting container %s (%s) failed: %s", c->id, c->name, why);
        s->creator_source = sd_event_source_disable_unref(s->creator_source);
        s->creator_fd = safe_close(s->creator_fd);
        s->in_flight = false;
        if (c->creator_pid > 0) {
                (void) kill(c->creator_pid, SIGKILL);
                (void) waitpid(c->creator_pid, NULL, 0);
                c->creator_pid = 0;
        }
        /* Counted as a failed run: the policy decides again, after the next delay. */
        restart_on_stopped(c, false);
}

static int on_restarter(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Container *c = userdata;
        RestartState *s = c->restart;
        ShimReply reply;
        char b = 0;
        ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);
        int r;

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n != 1 || b != 'R') {
                restart_failed(c, "the restarting process died");
                return 0;
        }
        s->creator_source = sd_event_source_disable_unref(s->creator_source);
        s->creator_fd = safe_close(s->creator_fd);
        s->in_flight = false;
        /* The new shim runs it: a health restart asked for the last run is done. */
        restart_health_done(c);
        c->status = CONTAINER_CREATED;
        c->exit_code = 0;
        g_free(c->reason);
        c->reason = g_strdup("");
        c->finished_at = 0;
        r = container_watch_shim(c);
        if (r < 0)
                log_warning_errno(r, "Failed to watch the shim of %s: %m", c->id);
        if (s->stopped_by_user) {
                /* A user stopped it while it was being set up: it never starts; the shim's exit event
                 * brings the stop (and no restart). */
                log_info("Restart of container %s (%s) cancelled by its user.", c->id, c->name);
                (void) shim_call(c->state_dir_fd, SHIM_OP_KILL, SIGKILL, SHIM_KILL_ALL, &reply);
                return 0;
        }
        r = shim_call(c->state_dir_fd, SHIM_OP_START, 0, 0, &reply);
        if (r < 0 || reply.error != 0) {
                /* An exec failure stops the init: the shim's event brings the exit and the next decision. */
                log_warning("Restarted container %s did not start: %s", c->id,
                            r < 0 ? strerror(-r) : reply.message);
                return 0;
        }
        c->started_at = reply.started_at;
        c->pid = reply.pid > 0 ? (uint32_t) reply.pid : c->pid;
        if (c->status == CONTAINER_CREATED) {
                c->status = CONTAINER_RUNNING;
                (void) container_emit_changed(c);
        }
        log_info("Restarted container %s (%s), restart %" PRIu32 ".", c->id, c->name, s->count);
        return 0;
}

static int restart_now(Container *c) {
        Manager *m = c->manager;
        RestartState *s = c->restart;
        int sp[2], r;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(sp[0]);
                safe_close(sp[1]);
                return r;
        }
        if (pid == 0) {
                safe_close(sp[0]);
                restarter_main(m, c, sp[1]);
        }
        safe_close(sp[1]);
        /* The last run's shim, if it was ours, is gone: container_set_stopped() reaped it. */
        c->creator_pid = pid;
        s->creator_fd = sp[0];
        s->in_flight = true;
        s->count++;
        if (s->health_restart)
                s->health_restarts++;
        if (restart_save(c) < 0)
                log_warning("Cannot record the restart count of container %s.", c->id);
        r = sd_event_add_io(m->event, &s->creator_source, sp[0], EPOLLIN, on_restarter, c);
        if (r < 0) {
                restart_failed(c, "cannot watch the restarting process");
                return 0;
        }
        return 0;
}

static int on_restart_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Container *c = userdata;
        int r;

        c->restart->timer = sd_event_source_disable_unref(c->restart->timer);
        if (c->status != CONTAINER_STOPPED || c->pending_delete || c->restart->stopped_by_user)
                return 0;
        r = restart_now(c);
        if (r < 0)
                log_warning_errno(r, "Cannot restart container %s: %m", c->id);
        return 0;
}

static bool policy_wants_restart(const Container *c, bool adopted) {
        const RestartState *s = c->restart;

        /* podman's --health-on-failure=restart: whatever the policy, unless a user stopped it. */
        if (s->health_restart && !s->stopped_by_user)
                return true;
        switch (s->policy.mode) {
        case RESTART_ON_FAILURE:
                if (s->stopped_by_user || c->exit_code == 0)
                        return false;
                /* N bounds the policy's own restarts, not those the health check asked for. */
                return s->policy.max_retries == 0 || s->count - s->health_restarts < s->policy.max_retries;
        case RESTART_ALWAYS:
                /* docker: a supervisor start brings back even what a user stopped. */
                return !s->stopped_by_user || adopted;
        case RESTART_UNLESS_STOPPED:
                return !s->stopped_by_user;
        default:
                return false;
        }
}

void restart_on_stopped(Container *c, bool adopted) {
        RestartState *s = c->restart;
        uint64_t delay;
        int r;

        if (!s || s->in_flight || s->timer || c->pending_delete || !policy_wants_restart(c, adopted))
                return;
        if (adopted && s->stopped_by_user) {
                s->stopped_by_user = false;
                (void) restart_save(c);
        }
        /* A run that lasted long enough was a success of the policy: start the back-off over. */
        if (c->started_at > 0 && c->finished_at >= c->started_at &&
            c->finished_at - c->started_at >= RESTART_RESET_USEC)
                s->step = 0;
        delay = (uint64_t) RESTART_DELAY_FIRST_USEC << MIN(s->step, 20U);
        if (delay > RESTART_DELAY_MAX_USEC)
                delay = RESTART_DELAY_MAX_USEC;
        else
                s->step++;
        r = sd_event_add_time_relative(c->manager->event, &s->timer, CLOCK_MONOTONIC, delay, 0,
                                       on_restart_timer, c);
        if (r < 0)
                log_warning_errno(r, "Cannot schedule the restart of container %s: %m", c->id);
        else
                log_info("Container %s (%s) restarts in %" PRIu64 " ms (%s).", c->id, c->name, delay / 1000,
                         s->health_restart                  ? "unhealthy, --health-on-failure=restart"
                         : s->policy.mode == RESTART_ALWAYS ? "policy always"
                                                            : "policy on-failure/unless-stopped");
}
