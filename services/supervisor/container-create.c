/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CreateContainer after authorisation: the supervisor checks everything it can from its own namespace,
 * then forks the creating process P, which does the rest in the host mount namespace and execs into
 * berth-shim (run-contract.md, "Process tree"):
 *
 *   supervisor                                 P (own session, dies with us until it is the shim)
 *   parse request, load image config (rehash)
 *   state dir, state record (incomplete)
 *   fork ─────────────────────────────────────► 1. join the host mount namespace
 *                                              2. bind shim.sock (so a restart sees it)
 *                                              3. active snapshot + overlay on rootfs/
 *                                              4. resolve the user in the image; network: netns,
 *                                                 CNI ADD, /etc files (net-attach.c); build config.json
 *                                              5. engine_create(): init cloned, waits to start
 *   ◄──────────────────── record (error | init pid [+ pty master]) ─ 6.
 *                                              7. execve(berth-shim) ── 'R' when it listens
 *   state record complete, reply
 *
 * Every failure in P undoes P's own work before it reports; a P killed with us is cleaned at our next
 * start (state record never completed). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-names.h"
#include "bus-polkit.h"
#include "bus-util.h"
#include "container.h"
#include "container-scope.h"
#include "engine.h"
#include "fs-util.h"
#include "health-config.h"
#include "host-mntns.h"
#include "image-config.h"
#include "json-util.h"
#include "log.h"
#include "net-attach.h"
#include "request.h"
#include "active-rootfs.h"
#include "shim-launch.h"
#include "shim-protocol.h"
#include "spec-build.h"
#include "user-resolve.h"
#include "restart-policy.h"

typedef struct CreateRecord {
        int32_t error; /* positive errno, 0 = created */
        int32_t init_pid;
        char message[BERTH_ERROR_MESSAGE_MAX];
} CreateRecord;

typedef struct CreateArgs {
        const char *id;
        ContainerRequest *request;
        ImageInfo image;
        int stdio[3];
        int mount_fds[REQUEST_MOUNTS_MAX];
} CreateArgs;

/* ---- P, the creating process -------------------------------------------------------------------- */

static _noreturn_ void creator_fail(int sock, int error, const char *fmt, ...) _printf_(3, 4);
static _noreturn_ void creator_fail(int sock, int error, const char *fmt, ...) {
        CreateRecord rec = { .error = error > 0 ? error : EIO };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(rec.message, sizeof(rec.message), fmt, ap);
        va_end(ap);
        (void) send(sock, &rec, sizeof(rec), MSG_NOSIGNAL);
        _exit(1);
}

/* linux.cgroupsPath without systemd: a plain cgroup. Under systemd the container's cgroup is a child of
 * the scope that holds P (container-scope.h). */
static char *cgroup_path_for(const char *id) {
        return g_strdup_printf("/berth/%s", id);
}

static _noreturn_ void creator_main(Manager *m, CreateArgs *a, int sock, uint64_t created_at) {
        g_autofree char *state_path = g_strdup_printf("%s/%s", m->containers_path, a->id);
        g_autofree char *rootfs_path = g_strdup_printf("%s/rootfs", state_path);
        g_autofree char *cgroup_path = NULL;
        g_autofree char *runtime_dir = g_path_get_dirname(m->containers_path);
        g_autofree char *hostname =
                isempty(a->request->hostname) ? g_strndup(a->id, 12) : g_strdup(a->request->hostname);
        g_autofree char *netns_path = NULL;
        g_autofree char *msg = NULL;
        g_autoptr(JsonNode) spec = NULL;
        EngineContainer ec = { .init_pid = 0, .start_fd = -1, .exec_err_fd = -1, .pty_master = -1 };
        EngineIO io = { .terminal = a->request->tty };
        int log_pipes[2][2] = { { -1, -1 }, { -1, -1 } };
        int session[2] = { -1, -1 };
        bool foreground = !a->request->detach;
        int dir_fd, listen_fd, rootfs_fd, r;
        BerthError err = {};
        UserIds user;

        /* Until we are the shim, we die with the supervisor: a restart then finds an incomplete
         * record and cleans up. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        (void) setsid();
        shim_launch_reset_signals();

        r = host_mntns_join();
        if (r < 0)
                creator_fail(sock, -r, "cannot join the host mount namespace: %s", strerror(-r));
        /* Under systemd: out of the supervisor's unit into the container's own scope. Asked for now,
         * waited for once the rootfs is mounted. */
        bool scoped = container_scope_wanted();
        ContainerScope scope = {};
        if (scoped) {
                g_autofree char *description = g_strdup_printf("berth container '%s' (image %.19s)",
                                                               a->request->name, a->request->image_config);
                if (container_scope_begin(&scope, a->id, description, &err) < 0)
                        creator_fail(sock, err.error, "%s", err.message);
        }
        dir_fd = open(state_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                creator_fail(sock, errno, "cannot open the state directory: %m");
        listen_fd = shim_launch_bind(dir_fd);
        if (listen_fd < 0)
                creator_fail(sock, -listen_fd, "cannot listen on the shim socket: %s", strerror(-listen_fd));

        /* Writable here even with read_only: the engine creates its mount points first and then makes
         * the root read-only itself (root.readonly). */
        r = active_rootfs_mount(m->snapshots_path, a->id, a->image.chain_hexes, a->image.n_layers,
                                rootfs_path, false, &msg);
        if (r < 0)
                creator_fail(sock, -r, "cannot prepare the root file system: %s", strna(msg));

#define FAIL(error, ...)                                                                                    \
        do {                                                                                                \
                (void) net_detach(runtime_dir, m->containers_path, dir_fd, a->id);                          \
                (void) active_rootfs_remove(m->snapshots_path, a->id, rootfs_path);                         \
                (void) unlinkat(dir_fd, SHIM_SOCKET_FILE, 0);                                               \
                creator_fail(sock, error, __VA_ARGS__);                                                     \
        } while (0)

        rootfs_fd = open(rootfs_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rootfs_fd < 0)
                FAIL(errno, "cannot open the root file system: %m");
        r = user_resolve(rootfs_fd, a->request->user ?: a->image.config->user, &user, &msg);
        if (r < 0)
                FAIL(-r, "%s", strna(msg));
        close(rootfs_fd);
        if (scoped) {
                char path[PATH_MAX];
                if (container_scope_finish(&scope, path, sizeof(path), &err) < 0)
                        FAIL(err.error, "%s", err.message);
                cgroup_path = g_strdup(path);
        } else
                cgroup_path = cgroup_path_for(a->id);

        if (a->request->network) {
                NetAttachArgs na = {
                        .runtime_dir = runtime_dir,
                        .containers_path = m->containers_path,
                        .state_dir_fd = dir_fd,
                        .id = a->id,
                        .hostname = hostname,
                        .request = a->request,
                };
                r = net_attach(&na, &netns_path, &msg);
                if (r < 0)
                        FAIL(-r, "%s", strna(msg));
        }

        SpecInput in = {
                .id = a->id,
                .rootfs_path = rootfs_path,
                .cgroup_path = cgroup_path,
                .request = a->request,
                .image = a->image.config,
                .user = &user,
                .mount_fds = a->mount_fds,
                .netns_path = netns_path,
                .etc_dir = netns_path ? state_path : NULL,
        };
        r = spec_build(&in, &spec, &msg);
        if (r < 0)
                FAIL(-r, "%s", strna(msg));
        {
                g_autoptr(JsonGenerator) gen = json_generator_new();
                g_autofree char *text = NULL;
                gsize len;

                json_generator_set_pretty(gen, true);
                json_generator_set_root(gen, spec);
                text = json_generator_to_data(gen, &len);
                /* Under /run: worthless after a crash of the machine, so atomic but not flushed. */
                r = write_file_atomic_nosync_at(dir_fd, "config.json", text, len, 0600);
                if (r < 0)
                        FAIL(-r, "cannot write config.json: %s", strerror(-r));
        }

        for (int i = 0; i < 3; i++)
                io.stdio[i] = a->stdio[i];
        if (a->request->detach)
                io.stdio[0] = -1;
        /* The shim owns every container's output, a foreground one's too: pipes (or the pty) into its
         * log, copied on to the caller's stdout and stderr (or its session stream with a pty) by the
         * shim's relay (shim-relay.h). A foreground caller's stdin still goes to the container itself. */
        for (int i = 0; i < 2 && !a->request->tty; i++) {
                if (pipe2(log_pipes[i], O_CLOEXEC) < 0)
                        FAIL(errno, "cannot create the log pipe: %m");
                io.stdio[i + 1] = log_pipes[i][1];
        }
        if (foreground && a->request->tty && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, session) < 0)
                FAIL(errno, "cannot create the terminal session stream: %m");

        /* Sync point 0 → engine: init is cloned and waits on start_fd. */
        r = engine_create(dir_fd, spec, &io, &ec, &err);
        if (r < 0)
                FAIL(err.error ?: -r, "%s", err.message[0] ? err.message : strerror(-r));
        for (int i = 0; i < 2; i++)
                log_pipes[i][1] = safe_close(log_pipes[i][1]);

        /* Sync point 6: tell the supervisor; a foreground pty's session stream goes with it (the shim keeps
         * the master, logs what the container writes and copies it to the stream). */
        {
                CreateRecord rec = { .error = 0, .init_pid = ec.init_pid };
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int))];
                } control = {};
                struct iovec iov = { .iov_base = &rec, .iov_len = sizeof(rec) };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                bool pass_pty = session[1] >= 0 && ec.pty_master >= 0;

                if (pass_pty) {
                        mh.msg_control = control.buf;
                        mh.msg_controllen = sizeof(control.buf);
                        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                        cm->cmsg_level = SOL_SOCKET;
                        cm->cmsg_type = SCM_RIGHTS;
                        cm->cmsg_len = CMSG_LEN(sizeof(int));
                        memcpy(CMSG_DATA(cm), &session[1], sizeof(int));
                }
                if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0) {
                        (void) kill(ec.init_pid, SIGKILL);
                        FAIL(errno, "cannot report to the supervisor: %m");
                }
                session[1] = safe_close(session[1]);
        }

        /* Step 7: become the shim. Only the fds named on its command line survive (it closes the rest). */
        int out_fd = a->request->tty ? ec.pty_master : log_pipes[0][0];
        int err_fd = a->request->tty ? -1 : log_pipes[1][0];
        ShimLaunch launch = {
                .id = a->id,
                .init_pid = ec.init_pid,
                .dir_fd = dir_fd,
                .listen_fd = listen_fd,
                .start_fd = ec.start_fd,
                .exec_err_fd = ec.exec_err_fd,
                .ready_fd = sock,
                .log_out_fd = out_fd,
                .log_err_fd = err_fd,
                .relay_out_fd = foreground && !a->request->tty ? a->stdio[1] : -1,
                .relay_err_fd = foreground && !a->request->tty ? a->stdio[2] : -1,
                .session_fd = session[0],
                .created_at = created_at,
                .log_max = a->request->log_max_size,
        };
        r = -shim_launch_exec(m, &launch);
        (void) kill(ec.init_pid, SIGKILL);
        FAIL(r, "cannot execute %s: %s", m->shim_path, strerror(r));
#undef FAIL
}

/* ---- the supervisor's side ---------------------------------------------------------------------- */

static int create_error_reply(sd_bus_message *msg, int error, const char *message) {
        const char *name;

        switch (error) {
        case EINVAL:
        case ESRCH:
        case ERANGE:
        case E2BIG:
        case ENOTDIR:
                name = BERTH_ERROR_INVALID_ARGS;
                break;
        case ENOENT:
                name = BERTH_ERROR_NOT_FOUND;
                break;
        case EMEDIUMTYPE:
                name = BERTH_ERROR_IMAGE_NOT_RUNNABLE;
                break;
        case EBADMSG:
                name = BERTH_ERROR_BAD_CONTENT;
                break;
        case EADDRINUSE:
        case EEXIST:
                name = BERTH_ERROR_EXISTS;
                break;
        default:
                name = BERTH_ERROR_IO;
        }
        return sd_bus_reply_method_errorf(msg, name, "Cannot create container: %s", message);
}

static void creation_failed(Container *c, int error, const char *message) {
        Manager *m = c->manager;
        g_autofree char *id = g_strdup(c->id);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = TAKE_PTR(c->create_msg);
        int r;

        log_info("Creating container %s failed: %s", id, message);
        if (c->creator_pid > 0) {
                (void) kill(c->creator_pid, SIGKILL);
                (void) waitpid(c->creator_pid, NULL, 0);
                c->creator_pid = 0;
        }
        /* A shim that already runs it (exec happened, readiness lost) must not keep it alive. */
        r = container_cleanup(m, id);
        if (r < 0)
                log_warning_errno(r, "Failed to clean up container %s: %m", id);
        g_hash_table_remove(m->containers, id);
        if (msg)
                (void) create_error_reply(msg, error, message);
}

static void creation_done(Container *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = TAKE_PTR(c->create_msg);
        int r;

        c->creator_source = sd_event_source_disable_unref(c->creator_source);
        c->creator_fd = safe_close(c->creator_fd);
        /* P is the shim now; it is our child until we restart, reaped by the SIGCHLD handler. */
        c->status = CONTAINER_CREATED;
        r = container_write_state(c, true);
        if (r >= 0)
                r = container_watch_shim(c);
        if (r >= 0)
                r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "h");
        if (r >= 0 && c->pty_fd >= 0)
                r = sd_bus_message_append(reply, "h", c->pty_fd);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0) {
                c->create_msg = TAKE_PTR(msg);
                c->status = CONTAINER_CREATING;
                creation_failed(c, -r, strerror(-r));
                return;
        }
        c->pty_fd = safe_close(c->pty_fd);
        log_info("Created container %s (%s), init pid %" PRIu32 ".", c->id, c->name, c->pid);
        (void) sd_bus_send(NULL, reply, NULL);
        (void) container_emit_changed(c);
}

static int on_creator(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Container *c = userdata;
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        CreateRecord rec = {};
        struct iovec iov = { .iov_base = &rec, .iov_len = sizeof(rec) };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        int got;
                        memcpy(&got, CMSG_DATA(cm), sizeof(int));
                        if (c->pty_fd >= 0 || c->creator_reported)
                                safe_close(got);
                        else
                                c->pty_fd = got;
                }
        if (n <= 0) {
                creation_failed(c, EIO, "the creating process died");
                return 0;
        }
        if (!c->creator_reported) {
                if (n != (ssize_t) sizeof(rec)) {
                        creation_failed(c, EPROTO, "bad report from the creating process");
                        return 0;
                }
                rec.message[sizeof(rec.message) - 1] = 0;
                if (rec.error != 0) {
                        creation_failed(c, rec.error, rec.message);
                        return 0;
                }
                c->creator_reported = true;
                c->pid = rec.init_pid > 0 ? (uint32_t) rec.init_pid : 0;
                return 0;
        }
        /* After the report, one byte 'R' from the shim (it listens), or a late failure record. */
        if (n == 1 && ((char *) &rec)[0] == 'R') {
                creation_done(c);
                return 0;
        }
        if (n == (ssize_t) sizeof(rec) && rec.error != 0) {
                rec.message[sizeof(rec.message) - 1] = 0;
                creation_failed(c, rec.error, rec.message);
                return 0;
        }
        creation_failed(c, EPROTO, "bad message from the shim");
        return 0;
}

static int parse_fds(sd_bus_message *msg, const ContainerRequest *req, CreateArgs *a, sd_bus_error *error) {
        size_t n_mounts = 0;
        int r;

        for (int i = 0; i < 3; i++)
                a->stdio[i] = -1;
        for (size_t i = 0; i < REQUEST_MOUNTS_MAX; i++)
                a->mount_fds[i] = -1;
        r = sd_bus_message_enter_container(msg, 'a', "{sh}");
        if (r < 0)
                return r;
        for (;;) {
                const char *key;
                int fd;

                r = sd_bus_message_read(msg, "{sh}", &key, &fd);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (streq(key, "stdin"))
                        a->stdio[0] = fd;
                else if (streq(key, "stdout"))
                        a->stdio[1] = fd;
                else if (streq(key, "stderr"))
                        a->stdio[2] = fd;
                else if (g_str_has_prefix(key, "mount")) {
                        uint32_t idx;
                        struct stat st;
                        if (parse_id(key + 5, &idx) < 0 || idx >= req->n_mounts || a->mount_fds[idx] >= 0)
                                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                                         "Unexpected fd '%.16s'.", key);
                        /* The caller opened it (as the caller): it must be a directory or a file. */
                        if (fstat(fd, &st) < 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
                                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                                         "Mount source %u is not a directory or a file.",
                                                         idx);
                        a->mount_fds[idx] = fd;
                        n_mounts++;
                } else
                        return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Unknown fd name '%.16s'.",
                                                 key);
        }
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        if (n_mounts != req->n_mounts)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                         "Every mount needs its source fd (mount0..mount%zu).",
                                         req->n_mounts - 1);
        if (req->detach && (a->stdio[0] >= 0 || a->stdio[1] >= 0 || a->stdio[2] >= 0))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                         "A detached container takes no stdio fds.");
        if (req->tty && (a->stdio[0] >= 0 || a->stdio[1] >= 0 || a->stdio[2] >= 0))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                         "A terminal replaces the stdio fds.");
        return 0;
}

/* Continuation after the privileged-options check (or at once). Arguments are read again: the message is
 * the same, its fds still owned by it. */
static int create_authorized(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(container_request_freep) ContainerRequest *req = NULL;
        _cleanup_free_ char *msgtext = NULL;
        CreateArgs a = {};
        const char *id, *request, *caller;
        uint64_t flags;
        Container *c;
        int r, sp[2];
        pid_t pid;

        r = sd_bus_message_rewind(msg, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "ss", &id, &request);
        if (r < 0)
                return r;
        r = container_request_parse(request, strlen(request), &req, &msgtext);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid request: %s",
                                         strna(msgtext));
        r = parse_fds(msg, req, &a, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "st", &caller, &flags);
        if (r < 0)
                return r;
        /* Checked again: a polkit round trip gave others time to take the id or the name. */
        if (g_hash_table_contains(m->containers, id) || manager_name_in_use(m, req->name))
                return sd_bus_error_setf(error, BERTH_ERROR_EXISTS,
                                         "A container with this id or name exists.");
        if (g_hash_table_size(m->containers) >= CONTAINERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many containers.");
        if (m->snapshots_fd < 0)
                m->snapshots_fd = open(m->snapshots_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (m->content_fd < 0) {
                g_autofree char *p = g_strdup_printf("%s/content", m->state_path);
                m->content_fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (m->snapshots_fd < 0 || m->content_fd < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No image store yet.");

        r = image_info_load(m->content_fd, m->snapshots_fd, req->image_config, &a.image, &msgtext);
        if (r < 0) {
                image_info_done(&a.image);
                return create_error_reply(msg, -r, strna(msgtext));
        }

        /* The state directory and our record, before anything else exists: from here on a restart
         * finds and cleans whatever a crash leaves. */
        if (mkdirat(m->containers_fd, id, 0700) < 0) {
                r = -errno;
                image_info_done(&a.image);
                return r == -EEXIST
                               ? sd_bus_error_setf(error, BERTH_ERROR_EXISTS, "Container %s exists.", id)
                               : r;
        }
        c = container_new(m, id);
        c->status = CONTAINER_CREATING;
        c->name = g_strdup(req->name);
        c->owner = (uint32_t) req->owner;
        c->image_config = g_strdup(req->image_config);
        c->detach = req->detach;
        c->tty = req->tty;
        c->created_at = (uint64_t) g_get_real_time();
        g_hash_table_replace(m->containers, c->id, c);
        c->state_dir_fd = openat(m->containers_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = c->state_dir_fd < 0 ? -errno : mkdirat(c->state_dir_fd, "rootfs", 0755) < 0 ? -errno : 0;
        if (r >= 0)
                r = container_write_state(c, false);
        if (r >= 0) /* the request's health check over the image's (health-config.h) */
                r = health_config_save(c->state_dir_fd, req->health, a.image.config);
        if (r >= 0)
                r = restart_state_create(c, req);
        if (r >= 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                r = -errno;
        if (r < 0) {
                image_info_done(&a.image);
                (void) container_cleanup(m, id);
                g_hash_table_remove(m->containers, id);
                return r;
        }

        a.id = c->id;
        a.request = req;
        pid = fork();
        if (pid == 0) {
                safe_close(sp[0]);
                creator_main(m, &a, sp[1], c->created_at);
        }
        safe_close(sp[1]);
        image_info_done(&a.image);
        if (pid < 0) {
                r = -errno;
                safe_close(sp[0]);
                (void) container_cleanup(m, id);
                g_hash_table_remove(m->containers, id);
                return r;
        }
        c->creator_pid = pid;
        c->creator_fd = sp[0];
        c->create_msg = sd_bus_message_ref(msg);
        r = sd_event_add_io(m->event, &c->creator_source, sp[0], EPOLLIN, on_creator, c);
        if (r < 0) {
                creation_failed(c, -r, "cannot watch the creating process");
                return 1;
        }
        return 1;
}

int container_create_begin(Manager *m, sd_bus_message *msg, sd_bus_error *error) {
        _cleanup_(container_request_freep) ContainerRequest *req = NULL;
        _cleanup_free_ char *text = NULL, *what = NULL;
        const char *id, *request, *caller;
        CreateArgs a = {};
        uint64_t flags;
        int r;

        /* Step 2–5 of STYLE 7: read, validate each argument, limits and duplicates. */
        r = sd_bus_message_read(msg, "ss", &id, &request);
        if (r < 0)
                return r;
        if (!container_id_is_valid(id))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid container id.");
        r = container_request_parse(request, strlen(request), &req, &text);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid request: %s",
                                         strna(text));
        r = parse_fds(msg, req, &a, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "st", &caller, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (!bus_unique_name_is_valid(caller))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid caller bus name.");
        if (g_hash_table_contains(m->containers, id))
                return sd_bus_error_setf(error, BERTH_ERROR_EXISTS, "Container %s exists.", id);
        if (manager_name_in_use(m, req->name))
                return sd_bus_error_setf(error, BERTH_ERROR_EXISTS, "A container named '%s' exists.",
                                         req->name);

        /* SECURITY: the broker authorised running a container; options that weaken the confinement are
         * the caller's to justify, checked here with the caller's own bus name (the broker forwards it;
         * polkit asks the bus who it is), whatever the broker decided. */
        if (container_request_is_privileged(req, &what)) {
                g_autofree char *owner = g_strdup_printf("%" PRIu64, req->owner);
                const char *details[] = { "container", req->name, "options", what, "owner", owner, NULL };
                return bus_polkit_check_subject_async(msg, caller, BERTH_ACTION_CONTAINER_PRIVILEGED,
                                                      details, create_authorized, m, error);
        }
        return create_authorized(msg, m, error);
}
