/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "config.h"
#include "fs-at.h"
#include "bus-names.h"
#include "container.h"
#include "container-scope.h"
#include "digest.h"
#include "request.h"
#include "engine.h"
#include "fs-util.h"
#include "host-mntns.h"
#include "json-util.h"
#include "event-journal.h"
#include "health.h"
#include "log.h"
#include "container-reap.h"
#include "net-attach.h"
#include "active-rootfs.h"
#include "shim-client.h"
#include "user-resolve.h"
#include "containers-life.h"
#include "freezer.h"
#include "restart-policy.h"

bool container_id_is_valid(const char *id) {
        return id && strlen(id) == CONTAINER_ID_LEN && strspn(id, "0123456789abcdef") == CONTAINER_ID_LEN;
}

const char *container_status_to_string(ContainerStatus s) {
        switch (s) {
        case CONTAINER_CREATING:
        case CONTAINER_CREATED:
                return "created";
        case CONTAINER_RUNNING:
                return "running";
        default:
                return "stopped";
        }
}

static void message_unref(void *p) {
        sd_bus_message_unref(p);
}

Container *container_new(Manager *m, const char *id) {
        Container *c = g_new0(Container, 1);

        c->manager = m;
        c->id = g_strdup(id);
        c->reason = g_strdup("");
        c->state_dir_fd = -EBADF;
        c->shim_fd = -EBADF;
        c->creator_fd = -EBADF;
        c->pty_fd = -EBADF;
        c->waiters = g_ptr_array_new_with_free_func(message_unref);
        return c;
}

void container_free(Container *c) {
        if (!c)
                return;
        sd_event_source_disable_unref(c->shim_source);
        sd_event_source_disable_unref(c->creator_source);
        sd_event_source_disable_unref(c->cleanup_source);
        safe_close(c->shim_fd);
        safe_close(c->creator_fd);
        safe_close(c->pty_fd);
        safe_close(c->state_dir_fd);
        g_ptr_array_unref(c->waiters);
        restart_state_free(c->restart);
        health_forget(c);
        sd_bus_message_unref(c->pending_delete);
        sd_bus_message_unref(c->create_msg);
        g_free(c->id);
        g_free(c->name);
        g_free(c->image_config);
        g_free(c->reason);
        g_free(c);
}

Container *manager_find(Manager *m, const char *id) {
        Container *c = container_id_is_valid(id) ? g_hash_table_lookup(m->containers, id) : NULL;
        return c && c->status != CONTAINER_CREATING ? c : NULL;
}

bool manager_name_in_use(Manager *m, const char *name) {
        GHashTableIter it;
        Container *c;

        g_hash_table_iter_init(&it, m->containers);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &c))
                if (streq_ptr(c->name, name))
                        return true;
        return false;
}

int container_write_state(Container *c, bool complete) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;
        _cleanup_free_ char *s = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "id");
        json_builder_add_string_value(b, c->id);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, c->name);
        json_builder_set_member_name(b, "owner");
        json_builder_add_int_value(b, c->owner);
        json_builder_set_member_name(b, "image_config");
        json_builder_add_string_value(b, c->image_config);
        json_builder_set_member_name(b, "detach");
        json_builder_add_boolean_value(b, c->detach);
        json_builder_set_member_name(b, "tty");
        json_builder_add_boolean_value(b, c->tty);
        json_builder_set_member_name(b, "created_at");
        json_builder_add_int_value(b, (gint64) c->created_at);
        json_builder_set_member_name(b, "complete");
        json_builder_add_boolean_value(b, complete);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        s = json_to_string_compact(root);
        if (!s)
                return -ENOMEM;
        /* The state directory is under /run: what it describes dies with the machine, so the record is
         * atomic (a killed supervisor leaves the old or the new one) but not flushed to disk. */
        return write_file_atomic_nosync_at(c->state_dir_fd, CONTAINER_STATE_FILE, s, strlen(s), 0600);
}

typedef struct StateRecord {
        char *id, *name, *image_config;
        uint64_t owner, created_at;
        bool detach, tty, complete;
} StateRecord;

int container_read_state(Container *c, bool *ret_complete) {
        static const JsonField table[] = {
                { "id", JSON_FIELD_STRING, offsetof(StateRecord, id), JSON_MANDATORY },
                { "name", JSON_FIELD_STRING, offsetof(StateRecord, name), JSON_MANDATORY },
                { "owner", JSON_FIELD_UINT64, offsetof(StateRecord, owner), JSON_MANDATORY },
                { "image_config", JSON_FIELD_STRING, offsetof(StateRecord, image_config), JSON_MANDATORY },
                { "detach", JSON_FIELD_BOOL, offsetof(StateRecord, detach), 0 },
                { "tty", JSON_FIELD_BOOL, offsetof(StateRecord, tty), 0 },
                { "created_at", JSON_FIELD_UINT64, offsetof(StateRecord, created_at), 0 },
                { "complete", JSON_FIELD_BOOL, offsetof(StateRecord, complete), 0 },
                {},
        };
        _cleanup_free_ char *msg = NULL;
        _cleanup_json_node_ JsonNode *root = NULL;
        StateRecord rec = {};
        DigestAlgorithm alg;
        int r;

        r = json_parse_file_at(c->state_dir_fd, CONTAINER_STATE_FILE, CONTAINER_STATE_MAX, &root, &msg);
        if (r >= 0 && !JSON_NODE_HOLDS_OBJECT(root))
                r = -EBADMSG;
        if (r >= 0)
                r = json_dispatch(json_node_get_object(root), table, &rec, NULL, &msg);
        if (r >= 0 && (!streq(rec.id, c->id) || rec.owner >= UINT32_MAX))
                r = -EBADMSG;
        /* The same checks a request's values passed before they were written. */
        if (r >= 0 && (!container_name_is_valid(rec.name) || digest_validate(rec.image_config, &alg) < 0 ||
                       alg != DIGEST_SHA256))
                r = -EBADMSG;
        if (r >= 0) {
                c->name = g_strdup(rec.name);
                c->owner = (uint32_t) rec.owner;
                c->image_config = g_strdup(rec.image_config);
                c->detach = rec.detach;
                c->tty = rec.tty;
                c->created_at = rec.created_at;
                *ret_complete = rec.complete;
        }
        free(rec.id);
        free(rec.name);
        free(rec.image_config);
        return r;
}

static int parse_u64_strict(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

int container_read_exit(Container *c) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        uint64_t code, started, finished;
        char *f[5] = {};
        size_t n = 0;
        int r;

        fd = openat(c->state_dir_fd, SHIM_EXIT_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = read_regular_file_fd(fd, SHIM_EXIT_RECORD_MAX, &data, NULL);
        if (r < 0)
                return r;
        data[strcspn(data, "\n")] = 0;
        for (char *save = NULL, *t = strtok_r(data, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
                f[n++] = t;
        if (n != 4 || parse_u64_strict(f[0], &code) < 0 || code > 255 ||
            parse_u64_strict(f[2], &started) < 0 || parse_u64_strict(f[3], &finished) < 0)
                return -EBADMSG;
        if (!streq(f[1], "exited") && !streq(f[1], "signal") && !streq(f[1], "oom") &&
            !streq(f[1], "exec-failed"))
                return -EBADMSG;
        c->exit_code = (int) code;
        g_free(c->reason);
        c->reason = g_strdup(f[1]);
        if (started)
                c->started_at = started;
        c->finished_at = finished;
        return 0;
}

/* The engine made the cgroup from config.json's linux.cgroupsPath; it removes it the same way. No
 * config.json: creation never reached the engine, so there is no cgroup. */
static int cgroup_remove(int state_dir_fd) {
        _cleanup_free_ char *msg = NULL;
        _cleanup_json_node_ JsonNode *spec = NULL;
        BerthError err = {};
        int r;

        r = json_parse_file_at(state_dir_fd, "config.json", CONTAINER_SPEC_MAX, &spec, &msg);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = engine_cgroup_remove(spec, &err);
        if (r < 0)
                log_warning("Failed to remove a container's cgroup: %s", err.message);
        return r;
}

/* Forks the child that removes what a container leaves: the rootfs mount (in the host's namespace), the
 * active snapshot, the cgroup, the state directory. Its exit status is the positive errno, 0 = done. */
static pid_t cleanup_fork(Manager *m, const char *id) {
        _cleanup_free_ char *rootfs = NULL;
        pid_t pid;

        if (!container_id_is_valid(id))
                return -EINVAL;
        if (asprintf_safe(&rootfs, "%s/%s/rootfs", m->containers_path, id) < 0)
                return -ENOMEM;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int r;
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                /* The rootfs is mounted in the host's namespace: unmount it there. */
                r = host_mntns_join();
                /* Processes a dead shim left running would keep the rootfs and cgroup busy. */
                if (r >= 0)
                        (void) container_kill_orphans(id);
                if (r >= 0) {
                        /* The network first: its DEL needs the namespace file and the record. A DEL that
                         * fails does not keep the container: its namespace file and the lease stay,
                         * and the next start's net_reconcile() tries again. */
                        g_autofree char *runtime_dir = g_path_get_dirname(m->containers_path);
                        _cleanup_close_ int state_fd = openat(
                                m->containers_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (state_fd >= 0 && net_detach(runtime_dir, m->containers_path, state_fd, id) < 0)
                                log_warning("Container %s: network DEL failed; retried at the next start.",
                                            id);
                }
                if (r >= 0)
                        r = active_rootfs_remove(m->snapshots_path, id, rootfs);
                if (r >= 0) {
                        _cleanup_close_ int state_fd = openat(
                                m->containers_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (state_fd >= 0)
                                r = cgroup_remove(state_fd);
                }
                /* Under systemd: the container's scope, with the shim's cgroup, goes too, also when
                 * something above failed (systemd collects an empty scope by itself; this covers a
                 * shim still exiting and whatever a failed create left in it). */
                if (container_scope_wanted()) {
                        int q = container_scope_stop(id);
                        if (q < 0)
                                log_warning_errno(q, "Failed to stop berth-%s.scope: %m", id);
                }
                if (r >= 0) {
                        _cleanup_close_ int dir_fd =
                                open(m->containers_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = dir_fd < 0 ? -errno : rm_rf_at(dir_fd, id, NULL);
                        if (r == -ENOENT)
                                r = 0;
                }
                _exit(r < 0 ? (-r & 0xff) : 0);
        }
        return pid;
}

static int cleanup_status(int code, int status) {
        if (code != CLD_EXITED)
                return -EIO;
        return -status;
}

int container_cleanup(Manager *m, const char *id) {
        siginfo_t si = {};
        pid_t pid;

        pid = cleanup_fork(m, id);
        if (pid < 0)
                return pid;
        while (waitid(P_PID, (id_t) pid, &si, WEXITED) < 0)
                if (errno != EINTR)
                        return -errno;
        return cleanup_status(si.si_code, si.si_status);
}

static int on_cleanup_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Container *c = userdata;
        Manager *m = c->manager;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = TAKE_PTR(c->pending_delete);
        g_autofree char *id = g_strdup(c->id);
        int r = cleanup_status(si->si_code, si->si_status);

        c->cleanup_source = sd_event_source_disable_unref(c->cleanup_source);
        if (r < 0) {
                /* Stays listed, stopped: a later DeleteContainer tries again. */
                log_warning_errno(r, "Failed to remove container %s: %m", id);
                if (msg)
                        (void) sd_bus_reply_method_errorf(
                                msg, BERTH_ERROR_IO, "Cannot remove container %s: %s", id, strerror(-r));
                return 0;
        }
        g_hash_table_remove(m->containers, id);
        log_info("Removed container %s.", id);
        if (msg)
                (void) sd_bus_reply_method_return(msg, NULL);
        return 0;
}

void container_delete_async(Container *c) {
        siginfo_t si = { .si_code = CLD_EXITED };
        pid_t pid;
        int r;

        /* Unmounting the overlay waits for an RCU grace period (10–25 ms here): in a child the event
         * loop does not wait for, so other containers' calls go on meanwhile. c->pending_delete (if
         * any) is answered when it is done; until then the container stays listed, stopped, and a
         * second DeleteContainer is Busy. */
        pid = cleanup_fork(c->manager, c->id);
        if (pid < 0) {
                si.si_status = (int) -pid;
                (void) on_cleanup_exit(NULL, &si, c);
                return;
        }
        r = sd_event_add_child(c->manager->event, &c->cleanup_source, pid, WEXITED, on_cleanup_exit, c);
        if (r >= 0)
                return;
        /* Cannot watch it: wait here, as before. */
        while (waitid(P_PID, (id_t) pid, &si, WEXITED) < 0 && errno == EINTR)
                ;
        (void) on_cleanup_exit(NULL, &si, c);
}

int container_emit_changed(Container *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        int r;

        if (c->status == CONTAINER_CREATING)
                return 0;
        health_update(c);      /* health.c: checks run while the container does */
        event_journal_note(c); /* its Event signals go out before this ContainerChanged */
        /* SECURITY: unicast to the broker, never broadcast: every container's id, state and exit status
         * would otherwise reach any connection on the system bus with a match rule (the broker tells each
         * owner about their own containers, services/broker/owner-signal.c). */
        r = sd_bus_message_new_signal(c->manager->bus, &sig, BERTH_SUPERVISOR_PATH, BERTH_SUPERVISOR_IFACE,
                                      "ContainerChanged");
        if (r >= 0)
                r = sd_bus_message_set_destination(sig, BERTH_BROKER_NAME);
        /* As the broadcast was: a broker that is not running is not started by it (it re-reads
         * ListContainers when it starts). */
        if (r >= 0)
                r = sd_bus_message_set_auto_start(sig, false);
        if (r >= 0)
                r = sd_bus_message_append(sig, "ssis", c->id, container_status_string(c), c->exit_code,
                                          c->reason);
        if (r >= 0)
                r = sd_bus_send(c->manager->bus, sig, NULL);
        return r;
}

void container_set_stopped(Container *c) {
        if (c->status != CONTAINER_STOPPED) {
                c->status = CONTAINER_STOPPED;
                c->paused = false;
                c->pid = 0;
                log_info("Container %s (%s) stopped: %s %d.", c->id, c->name, c->reason, c->exit_code);
                (void) container_emit_changed(c);
        }
        c->shim_source = sd_event_source_disable_unref(c->shim_source);
        c->shim_fd = safe_close(c->shim_fd);
        if (c->creator_pid > 0) {
                /* The shim we forked (not one adopted after a restart): it exits right after its last
                 * event; reap it. */
                while (waitpid(c->creator_pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                c->creator_pid = 0;
        }
        for (unsigned i = 0; i < c->waiters->len; i++)
                (void) sd_bus_reply_method_return(c->waiters->pdata[i], "is", c->exit_code, c->reason);
        g_ptr_array_set_size(c->waiters, 0);
        if (!c->pending_delete)
                restart_on_stopped(c, false);
        if (c->pending_delete && !c->cleanup_source)
                container_delete_async(c); /* c may be gone after this */
}

static void apply_reply(Container *c, const ShimReply *r) {
        c->pid = r->pid > 0 ? (uint32_t) r->pid : 0;
        if (r->started_at)
                c->started_at = r->started_at;
        if (r->status == SHIM_STATUS_STOPPED) {
                c->exit_code = r->exit_code;
                g_free(c->reason);
                c->reason = g_strdup(shim_reason_to_string(r->reason));
                c->finished_at = r->finished_at;
        }
}

static int on_shim_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Container *c = userdata;
        ShimReply r;
        int k;

        for (;;) {
                k = shim_receive(fd, &r);
                if (k == -EAGAIN)
                        return 0;
                if (k < 0)
                        break;
                apply_reply(c, &r);
                if (r.status == SHIM_STATUS_RUNNING && c->status == CONTAINER_CREATED) {
                        c->status = CONTAINER_RUNNING;
                        (void) container_emit_changed(c);
                } else if (r.status == SHIM_STATUS_STOPPED) {
                        container_set_stopped(c); /* may free c (pending delete): return at once */
                        return 0;
                }
        }
        /* The shim is gone: its exit record says how the container ended. */
        if (container_read_exit(c) < 0 && c->status != CONTAINER_STOPPED) {
                c->exit_code = 255;
                g_free(c->reason);
                c->reason = g_strdup("");
                c->finished_at = (uint64_t) g_get_real_time();
        }
        container_set_stopped(c);
        return 0;
}

int container_watch_shim(Container *c) {
        ShimRequest q = { .magic = SHIM_PROTOCOL_MAGIC,
                          .version = SHIM_PROTOCOL_VERSION,
                          .op = SHIM_OP_STATE };
        int fd, r;

        fd = shim_connect(c->state_dir_fd);
        if (fd < 0)
                return fd;
        c->shim_fd = fd;
        /* A state request makes the shim answer once; from then on it pushes its events here. */
        if (send(fd, &q, sizeof(q), MSG_NOSIGNAL) != (ssize_t) sizeof(q))
                return -errno;
        r = sd_event_add_io(c->manager->event, &c->shim_source, fd, EPOLLIN, on_shim_event, c);
        if (r < 0)
                return r;
        return 0;
}

/* ---- start-up ---------------------------------------------------------------------------------- */

static void adopt_one(Manager *m, const char *id) {
        Container *c = container_new(m, id);
        bool complete = false;
        ShimReply reply;
        int r;

        c->state_dir_fd = openat(m->containers_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = c->state_dir_fd < 0 ? -errno : container_read_state(c, &complete);
        if (r >= 0 && complete && restart_state_load(c) < 0)
                log_warning("Ignoring the unreadable restart record of container %s.", id);
        if (r < 0 || !complete) {
                /* Killed mid-create: the broker never heard of it. A shim may already run it. */
                if (c->state_dir_fd >= 0 &&
                    shim_call(c->state_dir_fd, SHIM_OP_KILL, SIGKILL, SHIM_KILL_ALL, &reply) >= 0)
                        for (int i = 0; i < 100; i++) {
                                if (shim_call(c->state_dir_fd, SHIM_OP_STATE, 0, 0, &reply) < 0 ||
                                    reply.status == SHIM_STATUS_STOPPED)
                                        break;
                                (void) usleep(20000);
                        }
                log_info("Removing container %s left half-created by an earlier run.", id);
                r = container_cleanup(m, id);
                if (r < 0)
                        log_warning_errno(r, "Failed to clean container %s: %m", id);
                container_free(c);
                return;
        }

        r = shim_call(c->state_dir_fd, SHIM_OP_STATE, 0, 0, &reply);
        if (r >= 0 && reply.status != SHIM_STATUS_STOPPED) {
                apply_reply(c, &reply);
                c->status = reply.status == SHIM_STATUS_RUNNING ? CONTAINER_RUNNING : CONTAINER_CREATED;
                r = container_watch_shim(c);
                if (r < 0)
                        log_warning_errno(r, "Failed to watch the shim of %s: %m", id);
                if (c->status == CONTAINER_RUNNING && freezer_get(c->state_dir_fd, &c->paused) < 0)
                        c->paused = false;
                log_info("Re-adopted container %s (%s), %s.", id, c->name, container_status_string(c));
                health_update(c);
        } else {
                c->status = CONTAINER_STOPPED;
                if (container_read_exit(c) < 0) {
                        /* Neither a shim nor its record: it died with the machine's state unknown. */
                        c->exit_code = 255;
                        c->finished_at = (uint64_t) g_get_real_time();
                }
                log_info("Container %s (%s) exited while we were away: %s %d.", id, c->name, c->reason,
                         c->exit_code);
        }
        g_hash_table_replace(m->containers, c->id, c);
        event_journal_note(c); /* an exit (or health change) while we were away: recorded once */
        if (c->status == CONTAINER_STOPPED)
                restart_on_stopped(c, true);
}

static void reconcile_networks(Manager *m) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return;
        if (pid == 0) {
                g_autofree char *runtime_dir = g_path_get_dirname(m->containers_path);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                /* The plugins must see the host's /run/berth/netns, /var/lib/cni and /proc/sys. */
                if (host_mntns_join() < 0)
                        _exit(1);
                /* A supervisor on another runtime directory (a test's) must not judge the host's
                 * leases: their containers are not in its directory. */
                (void) net_reconcile(runtime_dir, m->containers_path, streq(runtime_dir, BERTH_RUNTIMEDIR));
                _exit(0);
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
}

int manager_adopt_containers(Manager *m) {
        struct dirent *de;
        DIR *d;
        int r;

        r = opendir_at(m->containers_fd, ".", &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (!container_id_is_valid(de->d_name)) {
                        log_warning("Ignoring unexpected entry '%s' in %s.", de->d_name, m->containers_path);
                        continue;
                }
                adopt_one(m, de->d_name);
        }
        closedir(d);

        /* Active snapshots without a state directory: a create killed between the two. */
        _cleanup_close_ int active_fd =
                openat(m->snapshots_fd, ROOTFS_ACTIVE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (active_fd >= 0 && opendir_at(active_fd, ".", &d) >= 0) {
                while ((de = readdir(d)))
                        if (container_id_is_valid(de->d_name) &&
                            !g_hash_table_contains(m->containers, de->d_name)) {
                                log_info("Removing orphaned active snapshot %s.", de->d_name);
                                (void) container_cleanup(m, de->d_name);
                        }
                closedir(d);
        }

        /* Network attachments whose container is gone (a reboot, a crash during removal). */
        reconcile_networks(m);
        return 0;
}
