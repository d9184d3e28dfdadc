/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ExecContainer: a process in a running container with exactly the container's confinement.
 *
 * We do not fork it: the shim does (services/shim/shim-exec.c), so that it is the process's parent,
 * reaps it and reports its status, as it does for the init; docs/architecture.md says why. Our part is
 * the plan (lib/shim-exec-protocol.h): the container's own config.json parsed by the engine's spec
 * reader, its seccomp programs compiled by the engine's loader, the capability sets, no_new_privs,
 * rlimits, umask and oom_score_adj taken as they are, and only the user (resolved in the container's
 * /etc/passwd and /etc/group), env, cwd and argv from the caller. Nothing in the plan can widen what the
 * container has. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "berth-limits.h"
#include "bus-names.h"
#include "bus-util.h"
#include "cgroup-oom.h"
#include "exec-base.h"
#include "exec.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "request.h"
#include "seccomp.h"
#include "shim-client.h"
#include "shim-exec-protocol.h"
#include "spec.h"
#include "user-resolve.h"

#define EXEC_OPTIONS_MAX (256U * 1024U)
#define EXEC_FLAGS_KNOWN UINT64_C(0)

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

void exec_options_done(ExecOptions *o) {
        g_strfreev(o->args);
        g_strfreev(o->env);
        free(o->user);
        free(o->workdir);
        *o = (ExecOptions){};
}

static bool text_is_clean(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* "tty_size": [rows, columns], each 1..65535: what the client's terminal measures, so that the process
 * sees it from its first instruction (a later change goes through ResizeTerminal or the pty master). */
static int tty_size_parse(JsonObject *obj, ExecOptions *o, char **ret_error) {
        JsonNode *node = json_object_get_member(obj, "tty_size");
        JsonArray *a;
        int64_t v[2];

        if (!node || JSON_NODE_HOLDS_NULL(node))
                return 0;
        a = JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
        if (!a || json_array_get_length(a) != 2)
                return json_set_error(ret_error, EINVAL, "tty_size must be [rows, columns]");
        for (unsigned i = 0; i < 2; i++) {
                JsonNode *e = json_array_get_element(a, i);
                if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_INT64 ||
                    (v[i] = json_node_get_int(e)) < 1 || v[i] > TERMINAL_SIZE_MAX)
                        return json_set_error(ret_error, EINVAL,
                                              "tty_size must be [rows, columns], 1 to 65535");
        }
        o->tty_rows = (uint32_t) v[0];
        o->tty_columns = (uint32_t) v[1];
        return 0;
}

int exec_options_parse(const char *json, ExecOptions *ret, char **ret_error) {
        static const char *const known[] = { "args", "env",    "user",     "workdir",
                                             "tty",  "detach", "tty_size", NULL };
        static const JsonField table[] = {
                { "args", JSON_FIELD_STRV, offsetof(ExecOptions, args), JSON_MANDATORY },
                { "env", JSON_FIELD_STRV, offsetof(ExecOptions, env), 0 },
                { "user", JSON_FIELD_STRING, offsetof(ExecOptions, user), 0 },
                { "workdir", JSON_FIELD_STRING, offsetof(ExecOptions, workdir), 0 },
                { "tty", JSON_FIELD_BOOL, offsetof(ExecOptions, tty), 0 },
                { "detach", JSON_FIELD_BOOL, offsetof(ExecOptions, detach), 0 },
                {},
        };
        g_autoptr(JsonNode) root = NULL;
        ExecOptions o = {};
        size_t bytes = 0;
        JsonObject *obj;
        int r;

        r = json_parse_bounded(json, strlen(json), EXEC_OPTIONS_MAX, &root, ret_error);
        if (r < 0)
                return r;
        if (!JSON_NODE_HOLDS_OBJECT(root))
                return json_set_error(ret_error, EINVAL, "exec options must be a JSON object");
        obj = json_node_get_object(root);
        g_autoptr(GList) members = json_object_get_members(obj);
        for (GList *l = members; l; l = l->next)
                if (!g_strv_contains(known, l->data))
                        return json_set_error(ret_error, EINVAL, "unknown exec option '%s'",
                                              (char *) l->data);
        r = json_dispatch(obj, table, &o, NULL, ret_error);
        if (r < 0) {
                exec_options_done(&o);
                return r;
        }
        r = tty_size_parse(obj, &o, ret_error);
        if (r < 0) {
                exec_options_done(&o);
                return r;
        }
        if (!o.args || !o.args[0] || !o.args[0][0] || g_strv_length(o.args) > REQUEST_ARGS_MAX ||
            (o.env && g_strv_length(o.env) > REQUEST_ENV_MAX))
                r = json_set_error(ret_error, EINVAL,
                                   "exec needs a command (at most %u arguments, %u env entries)",
                                   REQUEST_ARGS_MAX, REQUEST_ENV_MAX);
        for (char **a = o.args; r >= 0 && a && *a; a++)
                bytes += strlen(*a) + 1;
        for (char **e = o.env; r >= 0 && e && *e; e++) {
                bytes += strlen(*e) + 1;
                if (!env_entry_is_valid(*e))
                        r = json_set_error(ret_error, EINVAL, "invalid environment entry");
        }
        if (r >= 0 && bytes > REQUEST_STRINGS_BYTES_MAX)
                r = json_set_error(ret_error, E2BIG, "arguments and environment above %u bytes",
                                   REQUEST_STRINGS_BYTES_MAX);
        if (r >= 0 && o.user && (strlen(o.user) > REQUEST_USER_MAX || !text_is_clean(o.user)))
                r = json_set_error(ret_error, EINVAL, "invalid user");
        if (r >= 0 && !isempty(o.workdir) && !container_path_is_valid(o.workdir))
                r = json_set_error(ret_error, EINVAL, "the working directory must be a clean absolute path");
        if (r >= 0 && o.tty && o.detach)
                r = json_set_error(ret_error, EINVAL, "a detached exec has no terminal");
        if (r < 0) {
                exec_options_done(&o);
                return r;
        }
        *ret = o;
        return 0;
}

/* ---- the plan ------------------------------------------------------------------------------------------
 */

/* The container's root as its init sees it, through a pidfd so that a recycled pid cannot stand in. */
static int open_container_root(uint32_t pid, char **ret_error) {
        _cleanup_close_ int pidfd = -EBADF, root = -EBADF;
        char path[64];

        pidfd = (int) syscall(SYS_pidfd_open, (pid_t) pid, 0);
        if (pidfd < 0)
                return json_set_error(ret_error, errno, "the container's init is gone");
        snprintf(path, sizeof(path), "/proc/%u/root", pid);
        root = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return json_set_error(ret_error, errno, "cannot open the container's root: %m");
        if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
                return json_set_error(ret_error, ESRCH, "the container's init is gone");
        return TAKE_FD(root);
}

static void merge_env(GPtrArray *env, char **base, char **add) {
        STRV_FOREACH(e, base)
        g_ptr_array_add(env, *e);
        STRV_FOREACH(e, add) {
                size_t kl = strcspn(*e, "=");
                bool replaced = false;
                for (guint i = 0; i < env->len; i++) {
                        const char *x = env->pdata[i];
                        if (strncmp(x, *e, kl) == 0 && x[kl] == '=') {
                                env->pdata[i] = *e;
                                replaced = true;
                        }
                }
                if (!replaced)
                        g_ptr_array_add(env, *e);
        }
}

static int plan_build(Container *c, const Spec *spec, const SeccompPrograms *sp, const ExecOptions *o,
                      int *ret_fd, char **ret_error) {
        g_autoptr(GByteArray) b = g_byte_array_new();
        g_autoptr(GPtrArray) env = g_ptr_array_new();
        _cleanup_close_ int fd = -EBADF;
        ShimExecPlan h = {
                .magic = SHIM_EXEC_PLAN_MAGIC,
                .version = SHIM_EXEC_PLAN_VERSION,
                .uid = spec->uid,
                .gid = spec->gid,
                .umask = spec->umask,
                .oom_score_adj = spec->oom_score_adj,
                .cap_bounding = spec->caps.bounding,
                .cap_effective = spec->caps.effective,
                .cap_permitted = spec->caps.permitted,
                .cap_inheritable = spec->caps.inheritable,
                .cap_ambient = spec->caps.ambient,
                .n_rlimits = (uint32_t) spec->n_rlimits,
                .n_filters = (uint32_t) sp->n,
                .n_args = g_strv_length(o->args),
        };
        gid_t groups[SHIM_EXEC_GROUPS_MAX];
        g_autofree char *home = NULL;
        size_t n_groups = 0;
        const char *cwd = !isempty(o->workdir) ? o->workdir : spec->cwd ?: "/";
        int r;

        if (!spec->have_caps)
                h.cap_bounding = h.cap_effective = h.cap_permitted = h.cap_inheritable = h.cap_ambient = 0;
        if (spec->n_rlimits > SHIM_EXEC_RLIMITS_MAX || sp->n > SHIM_EXEC_FILTERS_MAX)
                return json_set_error(ret_error, E2BIG,
                                      "the container's spec has too many rlimits or filters");
        if (o->tty) {
                h.tty_rows = (uint16_t) o->tty_rows;
                h.tty_columns = (uint16_t) o->tty_columns;
        }
        h.flags = (o->tty ? SHIM_EXEC_PLAN_TTY : 0) |
                  (spec->no_new_privileges ? SHIM_EXEC_PLAN_NO_NEW_PRIVS : 0) |
                  (spec->have_oom_score_adj ? SHIM_EXEC_PLAN_OOM_SCORE_ADJ : 0);

        if (!isempty(o->user)) {
                _cleanup_close_ int root = open_container_root(c->pid, ret_error);
                _cleanup_free_ char *msg = NULL;
                UserIds ids;

                if (root < 0)
                        return root;
                r = user_resolve(root, o->user, &ids, &msg);
                if (r < 0)
                        return json_set_error(ret_error, -r, "%s", msg ?: "cannot resolve the user");
                h.uid = ids.uid;
                h.gid = ids.gid;
                home = g_strdup_printf("HOME=%s", ids.home);
                /* The home field comes from the container's passwd: only a clean path. */
                if (!env_entry_is_valid(home) || !container_path_is_valid(ids.home)) {
                        g_free(home);
                        home = g_strdup("HOME=/");
                }
                n_groups = MIN(ids.n_groups, (size_t) SHIM_EXEC_GROUPS_MAX);
                memcpy(groups, ids.groups, n_groups * sizeof(gid_t));
        } else {
                n_groups = MIN(spec->n_additional_gids, (size_t) SHIM_EXEC_GROUPS_MAX);
                memcpy(groups, spec->additional_gids, n_groups * sizeof(gid_t));
        }
        h.n_groups = (uint32_t) n_groups;
        merge_env(env, spec->env, o->env);
        /* Another user's HOME, from the container's passwd, unless the caller set one (as docker exec -u).
         */
        if (home) {
                bool caller_set = false;
                STRV_FOREACH(e, o->env)
                caller_set = caller_set || g_str_has_prefix(*e, "HOME=");
                for (guint i = 0; !caller_set && i < env->len; i++)
                        if (g_str_has_prefix(env->pdata[i], "HOME="))
                                g_ptr_array_remove_index(env, i--);
                if (!caller_set)
                        g_ptr_array_add(env, home);
        }
        h.n_env = env->len;
        if (h.n_env > SHIM_EXEC_ENV_MAX)
                return json_set_error(ret_error, E2BIG, "too many environment entries");
        for (size_t i = 0; i < sp->n; i++)
                h.filter_len[i] = sp->progs[i].len;

        g_byte_array_append(b, (const guint8 *) &h, sizeof(h));
        for (size_t i = 0; i < n_groups; i++) {
                uint32_t g = groups[i];
                g_byte_array_append(b, (const guint8 *) &g, sizeof(g));
        }
        for (size_t i = 0; i < spec->n_rlimits; i++) {
                ShimExecRlimit rl = { .resource = spec->rlimits[i].resource,
                                      .soft = spec->rlimits[i].soft,
                                      .hard = spec->rlimits[i].hard };
                g_byte_array_append(b, (const guint8 *) &rl, sizeof(rl));
        }
        for (size_t i = 0; i < sp->n; i++)
                g_byte_array_append(b, (const guint8 *) sp->progs[i].filter,
                                    sp->progs[i].len * sizeof(struct sock_filter));
        size_t strings_at = b->len;
        g_byte_array_append(b, (const guint8 *) cwd, strlen(cwd) + 1);
        STRV_FOREACH(a, o->args)
        g_byte_array_append(b, (const guint8 *) *a, strlen(*a) + 1);
        for (guint i = 0; i < env->len; i++)
                g_byte_array_append(b, env->pdata[i], strlen(env->pdata[i]) + 1);
        if (b->len > SHIM_EXEC_PLAN_SIZE_MAX)
                return json_set_error(ret_error, E2BIG, "the exec plan is too large");
        ((ShimExecPlan *) b->data)->strings_size = (uint32_t) (b->len - strings_at);
        ((ShimExecPlan *) b->data)->size = b->len;

        /* Sealed: the shim maps what we wrote, and nothing can change it after. */
        fd = memfd_create("berth-exec-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return json_set_error(ret_error, errno, "memfd_create failed: %m");
        r = loop_write(fd, b->data, b->len);
        if (r < 0)
                return json_set_error(ret_error, -r, "cannot write the exec plan");
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
                return json_set_error(ret_error, errno, "cannot seal the exec plan: %m");
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int container_exec(Container *c, const ExecOptions *o, const int stdio[3], int status_fd, uint32_t *ret_pid,
                   int *ret_pty, char **ret_error) {
        _cleanup_close_ int plan_fd = -EBADF, pty = -EBADF;
        const SeccompPrograms *sp;
        const Spec *spec;
        ShimReply reply;
        int fds[5], r;
        size_t n = 0;
        uint32_t flags = 0;

        if (c->status != CONTAINER_RUNNING || c->pid == 0)
                return json_set_error(ret_error, ESRCH, "container %s is not running", c->id);
        /* The container's config.json parsed and its seccomp programs compiled (once per container). */
        r = exec_base_get(c, &spec, &sp, ret_error);
        if (r < 0)
                return r;
        r = plan_build(c, spec, sp, o, &plan_fd, ret_error);
        if (r < 0)
                return r;

        fds[n++] = plan_fd;
        for (int i = 0; i < 3; i++)
                if (stdio[i] >= 0 && !o->tty) {
                        fds[n++] = stdio[i];
                        flags |= SHIM_EXEC_FD_STDIN << i;
                }
        if (status_fd >= 0) {
                fds[n++] = status_fd;
                flags |= SHIM_EXEC_FD_STATUS;
        }
        r = shim_call_fds(c->state_dir_fd, SHIM_OP_EXEC, flags, fds, n, &reply, &pty);
        if (r < 0)
                return json_set_error(ret_error, -r, "cannot reach the shim of %s: %s", c->id, strerror(-r));
        if (reply.error != 0)
                return json_set_error(ret_error,
                                      reply.error == ESRCH || reply.error == EPERM || reply.error == EBUSY
                                              ? reply.error
                                              : ENOEXEC,
                                      "%s", reply.message);
        if (o->tty && pty < 0)
                return json_set_error(ret_error, EIO, "the shim sent no pty");
        *ret_pid = (uint32_t) reply.pid;
        *ret_pty = o->tty ? TAKE_FD(pty) : -EBADF;
        return 0;
}

int shim_exe_seal(const char *path) {
        _cleanup_close_ int src = -EBADF, mfd = -EBADF;
        struct stat st;
        off_t off = 0;

        src = open(path, O_RDONLY | O_CLOEXEC);
        if (src < 0 || fstat(src, &st) < 0)
                return negative_errno();
        mfd = memfd_create("berth-shim", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
                return negative_errno();
        while (off < st.st_size) {
                ssize_t k = sendfile(mfd, src, &off, (size_t) (st.st_size - off));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? negative_errno() : -EIO;
        }
        if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_EXEC) <
                    0 &&
            fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
                return negative_errno();
        return TAKE_FD(mfd);
}

/* ---- methods ------------------------------------------------------------------------------------------ */

int method_exec_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(exec_options_done) ExecOptions o = {};
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int pty = -EBADF;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int stdio[3] = { -EBADF, -EBADF, -EBADF }, status_fd = -EBADF;
        const char *id, *options;
        uint64_t flags;
        uint32_t pid = 0;
        Container *c;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "ss", &id, &options);
        if (r < 0)
                return r;
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
                        stdio[0] = fd;
                else if (streq(key, "stdout"))
                        stdio[1] = fd;
                else if (streq(key, "stderr"))
                        stdio[2] = fd;
                else if (streq(key, "status"))
                        status_fd = fd;
                else
                        return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Unknown fd '%s'.", key);
        }
        r = sd_bus_message_exit_container(msg);
        if (r >= 0)
                r = sd_bus_message_read(msg, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, EXEC_FLAGS_KNOWN, error);
        if (r < 0)
                return r;
        r = container_bus_find(userdata, id, CONTAINER_NEED_RUNNING, &c, error);
        if (r < 0)
                return r;
        r = exec_options_parse(options, &o, &why);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid exec options: %s", why);
        if ((o.tty || o.detach) && (stdio[0] >= 0 || stdio[1] >= 0 || stdio[2] >= 0))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                         "An exec with a terminal or detached takes no stdio fds.");

        r = container_exec(c, &o, stdio, status_fd, &pid, &pty, &why);
        if (r < 0)
                return sd_bus_error_setf(error,
                                         r == -ENOEXEC   ? BERTH_ERROR_EXEC_FAILED
                                         : r == -ESRCH   ? BERTH_ERROR_INVALID_ARGS
                                         : r == -EBUSY   ? BERTH_ERROR_LIMIT
                                         : r == -ENOENT  ? BERTH_ERROR_INVALID_ARGS
                                         : r == -EINVAL  ? BERTH_ERROR_INVALID_ARGS
                                         : r == -ENOTDIR ? BERTH_ERROR_INVALID_ARGS
                                                         : BERTH_ERROR_IO,
                                         "Cannot exec in container %s: %s", c->id, why);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "u", pid);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "h");
        if (r >= 0 && pty >= 0)
                r = sd_bus_message_append(reply, "h", pty);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        r = sd_bus_send(NULL, reply, NULL);
        /* After the reply: the log is not what the caller waits for. */
        log_info("Exec in container %s: pid %u.", c->id, pid);
        return r;
}

int method_attach_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;
        const char *id;
        uint64_t flags;
        ShimReply reply;
        Container *c;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "st", &id, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = container_bus_find(userdata, id, CONTAINER_NEED_RUNNING, &c, error);
        if (r < 0)
                return r;
        r = shim_call_fds(c->state_dir_fd, SHIM_OP_ATTACH, 0, NULL, 0, &reply, &fd);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot reach the shim of %s: %s", id,
                                         strerror(-r));
        if (reply.error != 0 || fd < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                         "Cannot attach to container %s: %s", id, reply.message);
        return sd_bus_reply_method_return(msg, "h", fd);
}

/* ---- top ------------------------------------------------------------------------------------------------
 */

#define TOP_PIDS_MAX 4096U

/* cgroup.procs of the container: next to the memory controller's OOM record the engine wrote (v2: the
 * container's cgroup; v1: its memory hierarchy), the file the shim signals too. */
static int open_cgroup_procs(Container *c) {
        char buf[PATH_MAX + 32];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;
        char *slash;

        fd = openat(c->state_dir_fd, CGROUP_OOM_FILE_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, PATH_MAX);
        if (n <= 0)
                return -EIO;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        slash = strrchr(buf, '/');
        if (!cgroup_oom_path_is_valid(buf) || !slash)
                return -EINVAL;
        strcpy(slash, "/cgroup.procs");
        int procs = open(buf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        return procs < 0 ? negative_errno() : procs;
}

/* cgroupfs files have no size: read to the end, bounded. */
static int read_procs(int fd, char **ret) {
        g_autoptr(GString) s = g_string_new(NULL);
        char buf[4096];
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) > 0) {
                g_string_append_len(s, buf, n);
                if (s->len > 1024 * 1024)
                        return -E2BIG;
        }
        if (n < 0)
                return negative_errno();
        *ret = g_string_free(g_steal_pointer(&s), false);
        return 0;
}

static int read_status_fields(pid_t pid, uint32_t *ret_nspid, uint32_t *ret_uid, unsigned *ret_levels) {
        char path[64], buf[8192];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -EIO;
        buf[n] = 0;
        *ret_nspid = 0;
        *ret_uid = UINT32_MAX;
        *ret_levels = 0;
        for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                if (g_str_has_prefix(l, "NSpid:")) {
                        /* The last field is the pid in the innermost namespace: the container's. */
                        char *last = strrchr(l, '\t') ?: strrchr(l, ' ');
                        if (last)
                                *ret_nspid = (uint32_t) strtoul(last + 1, NULL, 10);
                        /* One pid per pid namespace level the process is in. */
                        for (char *f = l + strlen("NSpid:"); *f;) {
                                f += strspn(f, " \t");
                                if (*f)
                                        (*ret_levels)++;
                                f += strcspn(f, " \t");
                        }
                } else if (g_str_has_prefix(l, "Uid:"))
                        *ret_uid = (uint32_t) strtoul(l + 4, NULL, 10);
        }
        return 0;
}

static char *read_cmdline(pid_t pid) {
        char path[64], buf[4096];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return g_strdup("");
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return g_strdup("");
        buf[n] = 0;
        for (ssize_t i = 0; i < n - 1; i++)
                if (buf[i] == 0)
                        buf[i] = ' ';
        /* The container wrote it: only printable text goes back. */
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] && ((unsigned char) buf[i] < 0x20 || buf[i] == 0x7f))
                        buf[i] = '?';
        return g_utf8_make_valid(buf, -1);
}

int method_top_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *id;
        uint64_t flags;
        size_t count = 0;
        Container *c;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "st", &id, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = container_bus_find(userdata, id, CONTAINER_NEED_RUNNING, &c, error);
        if (r < 0)
                return r;
        fd = open_cgroup_procs(c);
        if (fd < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot find the cgroup of %s: %s", id,
                                         strerror(-fd));
        r = read_procs(fd, &data);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot read the processes of %s: %s", id,
                                         strerror(-r));
        /* The container's processes are those of its pid namespace: the shim's spare joiner waits in the
         * container's cgroup but not in it (services/shim/shim-spare.c). */
        uint32_t init_nspid, init_uid;
        unsigned init_levels = 0;
        if (read_status_fields((pid_t) c->pid, &init_nspid, &init_uid, &init_levels) < 0)
                init_levels = 0;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(uuus)");
        for (char *save = NULL, *l = strtok_r(data, "\n", &save); r >= 0 && l && count < TOP_PIDS_MAX;
             l = strtok_r(NULL, "\n", &save)) {
                uint32_t pid, nspid, uid;
                unsigned levels;
                g_autofree char *cmd = NULL;

                if (parse_id(l, &pid) < 0 || pid == 0 ||
                    read_status_fields((pid_t) pid, &nspid, &uid, &levels) < 0)
                        continue; /* gone meanwhile */
                if (levels < init_levels)
                        continue;
                cmd = read_cmdline((pid_t) pid);
                r = sd_bus_message_append(reply, "(uuus)", pid, nspid, uid, cmd);
                count++;
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
