/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <glib.h>
#include <stdio.h>
#include <sys/capability.h>

#include "json-util.h"
#include "spec-build.h"

/* podman's default set (containers.conf default_capabilities). */
static const char *const default_caps[] = {
        "CAP_CHOWN",   "CAP_DAC_OVERRIDE",     "CAP_FOWNER",     "CAP_FSETID",
        "CAP_KILL",    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP",    "CAP_SETGID",
        "CAP_SETPCAP", "CAP_SETUID",           "CAP_SYS_CHROOT",
};

/* runc/podman: kernel interfaces that leak host information or let a container touch the host. Masked
 * with /dev/null (files) or an empty read-only tmpfs (directories) by the engine. */
static const char *const masked_paths[] = {
        "/proc/acpi",
        "/proc/asound",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/sys/devices/virtual/powercap",
        "/sys/firmware",
        NULL,
};

static const char *const readonly_paths[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static bool strv_has(char **l, const char *s) {
        STRV_FOREACH(i, l)
        if (streq(*i, s))
                return true;
        return false;
}

int spec_capabilities(const ContainerRequest *req, char ***ret) {
        bool set[64] = {};
        int last = cap_max_bits() - 1;
        GPtrArray *names;

        if (last > 63)
                last = 63;
        if (req->privileged || strv_has(req->cap_add, "ALL")) {
                for (int i = 0; i <= last; i++)
                        set[i] = true;
        } else if (!strv_has(req->cap_drop, "ALL")) {
                for (size_t i = 0; i < ELEMENTSOF(default_caps); i++) {
                        int c = capability_from_name(default_caps[i]);
                        if (c >= 0 && c <= last)
                                set[c] = true;
                }
        }
        /* docker's order: --cap-drop ALL --cap-add X leaves X; --cap-add X --cap-drop X leaves nothing. */
        STRV_FOREACH(a, req->cap_add) {
                int c = streq(*a, "ALL") ? -1 : capability_from_name(*a);
                if (c >= 0 && c <= last)
                        set[c] = true;
        }
        if (!req->privileged)
                STRV_FOREACH(d, req->cap_drop) {
                        int c = streq(*d, "ALL") ? -1 : capability_from_name(*d);
                        if (c >= 0 && c <= last && !strv_has(req->cap_add, *d))
                                set[c] = false;
                }
        names = g_ptr_array_new();
        for (int i = 0; i <= last; i++)
                if (set[i]) {
                        char *n = cap_to_name(i);
                        g_ptr_array_add(names, g_ascii_strup(n, -1));
                        cap_free(n);
                }
        g_ptr_array_add(names, NULL);
        *ret = (char **) g_ptr_array_free(names, false);
        return 0;
}

static void add_strv(JsonBuilder *b, const char *member, char *const *l) {
        json_builder_set_member_name(b, member);
        json_builder_begin_array(b);
        for (char *const *i = l; i && *i; i++)
                json_builder_add_string_value(b, *i);
        json_builder_end_array(b);
}

static void add_mount(JsonBuilder *b, const char *dest, const char *type, const char *source,
                      const char *const *options) {
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "destination");
        json_builder_add_string_value(b, dest);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, type);
        json_builder_set_member_name(b, "source");
        json_builder_add_string_value(b, source);
        add_strv(b, "options", (char *const *) options);
        json_builder_end_object(b);
}

/* Image env, then the request's (same name: the request wins), then defaults for what is missing. */
static int build_env(const SpecInput *in, GPtrArray *env, char **ret_error) {
        char *const *lists[] = { in->image->env, in->request->env };

        for (size_t k = 0; k < ELEMENTSOF(lists); k++)
                for (char *const *e = lists[k]; e && *e; e++) {
                        size_t name_len;
                        if (!env_entry_is_valid(*e))
                                /* Only the image's can fail here: the request's were checked on arrival. */
                                return json_set_error(ret_error, EINVAL,
                                                      "the image config has an invalid environment entry");
                        name_len = strcspn(*e, "=") + 1;
                        for (unsigned i = 0; i < env->len; i++)
                                if (strncmp(env->pdata[i], *e, name_len) == 0) {
                                        g_ptr_array_remove_index(env, i);
                                        break;
                                }
                        g_ptr_array_add(env, g_strdup(*e));
                }

        bool have_path = false, have_home = false, have_term = false, have_hostname = false;
        for (unsigned i = 0; i < env->len; i++) {
                const char *e = env->pdata[i];
                have_path = have_path || g_str_has_prefix(e, "PATH=");
                have_home = have_home || g_str_has_prefix(e, "HOME=");
                have_term = have_term || g_str_has_prefix(e, "TERM=");
                have_hostname = have_hostname || g_str_has_prefix(e, "HOSTNAME=");
        }
        if (!have_path)
                g_ptr_array_insert(env, 0, g_strdup(SPEC_DEFAULT_PATH));
        if (!have_hostname)
                g_ptr_array_add(env, isempty(in->request->hostname)
                                             ? g_strdup_printf("HOSTNAME=%.12s", in->id)
                                             : g_strdup_printf("HOSTNAME=%s", in->request->hostname));
        if (!have_home) {
                g_autofree char *home = g_strdup_printf("HOME=%s", in->user->home);
                /* The home field comes from the image's passwd: keep it only if it is a clean path. */
                g_ptr_array_add(env, env_entry_is_valid(home) && container_path_is_valid(in->user->home)
                                             ? g_steal_pointer(&home)
                                             : g_strdup("HOME=/"));
        }
        if (!have_term && in->request->tty)
                g_ptr_array_add(env, g_strdup("TERM=xterm"));
        g_ptr_array_add(env, NULL);
        return 0;
}

static int build_args(const SpecInput *in, GPtrArray *args, char **ret_error) {
        const ContainerRequest *r = in->request;
        char *const *entrypoint = r->entrypoint ? r->entrypoint : in->image->entrypoint;
        /* As docker does: a new entrypoint drops the image's cmd. */
        char *const *cmd = r->cmd ? r->cmd : r->entrypoint ? NULL : in->image->cmd;

        for (char *const *a = entrypoint; a && *a; a++)
                g_ptr_array_add(args, g_strdup(*a));
        for (char *const *a = cmd; a && *a; a++)
                g_ptr_array_add(args, g_strdup(*a));
        if (args->len == 0)
                return json_set_error(ret_error, EINVAL,
                                      "no command: the image has none and none was given");
        if (isempty((const char *) args->pdata[0]))
                return json_set_error(ret_error, EINVAL, "the command is an empty string");
        if (args->len > REQUEST_ARGS_MAX)
                return json_set_error(ret_error, E2BIG, "more than %u arguments", REQUEST_ARGS_MAX);
        g_ptr_array_add(args, NULL);
        return 0;
}

static int pick_cwd(const SpecInput *in, const char **ret, char **ret_error) {
        const char *cwd = !isempty(in->request->workdir)     ? in->request->workdir
                          : !isempty(in->image->working_dir) ? in->image->working_dir
                                                             : "/";

        if (!container_path_is_valid(cwd))
                return json_set_error(ret_error, EINVAL, "invalid working directory '%.128s'", cwd);
        /* SECURITY (S2, CVE-2024-21626): /proc/self/fd/N as cwd reached the runtime's leaked fds. The
         * engine closes them anyway; a cwd in /proc is never a real working directory. */
        if (streq(cwd, "/proc") || g_str_has_prefix(cwd, "/proc/"))
                return json_set_error(ret_error, EINVAL, "the working directory may not be under /proc");
        *ret = cwd;
        return 0;
}

/* linux.resources.devices: deny everything but the nodes the engine puts in /dev (null, zero, full,
 * random, urandom, tty, console, ptmx and the pts), and mknod of any node (useless without an allow rule
 * to open it; and the default capability set has no CAP_MKNOD). The v1 devices controller or the v2 eBPF
 * filter (cgroup-devices-bpf.c) enforces it; the last matching rule decides. */
static void add_device_rules(JsonBuilder *b) {
        static const struct {
                const char *type;
                int major, minor; /* -1 = any */
                const char *access;
        } allowed[] = {
                { "c", -1, -1, "m" }, { "b", -1, -1, "m" }, { "c", 1, 3, "rwm" },    { "c", 1, 5, "rwm" },
                { "c", 1, 7, "rwm" }, { "c", 1, 8, "rwm" }, { "c", 1, 9, "rwm" },    { "c", 5, 0, "rwm" },
                { "c", 5, 1, "rwm" }, { "c", 5, 2, "rwm" }, { "c", 136, -1, "rwm" },
        };

        json_builder_set_member_name(b, "devices");
        json_builder_begin_array(b);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "allow");
        json_builder_add_boolean_value(b, false);
        json_builder_set_member_name(b, "access");
        json_builder_add_string_value(b, "rwm");
        json_builder_end_object(b);
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "allow");
                json_builder_add_boolean_value(b, true);
                json_builder_set_member_name(b, "type");
                json_builder_add_string_value(b, allowed[i].type);
                if (allowed[i].major >= 0) {
                        json_builder_set_member_name(b, "major");
                        json_builder_add_int_value(b, allowed[i].major);
                }
                if (allowed[i].minor >= 0) {
                        json_builder_set_member_name(b, "minor");
                        json_builder_add_int_value(b, allowed[i].minor);
                }
                json_builder_set_member_name(b, "access");
                json_builder_add_string_value(b, allowed[i].access);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
}

int spec_build(const SpecInput *in, JsonNode **ret, char **ret_error) {
        g_autoptr(GPtrArray) env = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_auto(GStrv) caps = NULL;
        const ContainerRequest *r = in->request;
        bool privileged = r->privileged;
        const char *cwd = NULL;
        int k;

        k = build_args(in, args, ret_error);
        if (k >= 0)
                k = build_env(in, env, ret_error);
        if (k >= 0)
                k = pick_cwd(in, &cwd, ret_error);
        if (k >= 0)
                k = spec_capabilities(r, &caps);
        if (k < 0)
                return k;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "ociVersion");
        json_builder_add_string_value(b, "1.0.2");

        /* process */
        json_builder_set_member_name(b, "process");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "terminal");
        json_builder_add_boolean_value(b, r->tty);
        json_builder_set_member_name(b, "user");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "uid");
        json_builder_add_int_value(b, in->user->uid);
        json_builder_set_member_name(b, "gid");
        json_builder_add_int_value(b, in->user->gid);
        json_builder_set_member_name(b, "additionalGids");
        json_builder_begin_array(b);
        for (size_t i = 0; i < in->user->n_groups; i++)
                json_builder_add_int_value(b, in->user->groups[i]);
        json_builder_end_array(b);
        json_builder_end_object(b);
        add_strv(b, "args", (char *const *) args->pdata);
        add_strv(b, "env", (char *const *) env->pdata);
        json_builder_set_member_name(b, "cwd");
        json_builder_add_string_value(b, cwd);
        /* SECURITY (S9): nothing inheritable or ambient, ever; a file capability cannot be regained. */
        json_builder_set_member_name(b, "capabilities");
        json_builder_begin_object(b);
        add_strv(b, "bounding", caps);
        add_strv(b, "effective", caps);
        add_strv(b, "permitted", caps);
        json_builder_end_object(b);
        json_builder_set_member_name(b, "rlimits");
        json_builder_begin_array(b);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, "RLIMIT_NOFILE");
        json_builder_set_member_name(b, "hard");
        json_builder_add_int_value(b, SPEC_NOFILE_DEFAULT);
        json_builder_set_member_name(b, "soft");
        json_builder_add_int_value(b, SPEC_NOFILE_DEFAULT);
        json_builder_end_object(b);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "noNewPrivileges");
        json_builder_add_boolean_value(b, !privileged);
        json_builder_end_object(b);

        json_builder_set_member_name(b, "root");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "path");
        json_builder_add_string_value(b, in->rootfs_path);
        json_builder_set_member_name(b, "readonly");
        json_builder_add_boolean_value(b, r->read_only);
        json_builder_end_object(b);

        json_builder_set_member_name(b, "hostname");
        if (isempty(r->hostname)) {
                g_autofree char *h = g_strndup(in->id, 12);
                json_builder_add_string_value(b, h);
        } else
                json_builder_add_string_value(b, r->hostname);

        /* mounts: runc's and podman's defaults */
        json_builder_set_member_name(b, "mounts");
        json_builder_begin_array(b);
        add_mount(b, "/proc", "proc", "proc", (const char *const[]){ "nosuid", "noexec", "nodev", NULL });
        add_mount(b, "/dev", "tmpfs", "tmpfs",
                  (const char *const[]){ "nosuid", "strictatime", "mode=755", "size=65536k", NULL });
        add_mount(b, "/dev/pts", "devpts", "devpts",
                  (const char *const[]){ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                                         NULL });
        add_mount(b, "/dev/shm", "tmpfs", "shm",
                  (const char *const[]){ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL });
        add_mount(b, "/dev/mqueue", "mqueue", "mqueue",
                  (const char *const[]){ "nosuid", "noexec", "nodev", NULL });
        add_mount(b, "/sys", "sysfs", "sysfs",
                  privileged ? (const char *const[]){ "nosuid", "noexec", "nodev", NULL }
                             : (const char *const[]){ "nosuid", "noexec", "nodev", "ro", NULL });
        add_mount(b, "/run", "tmpfs", "tmpfs",
                  (const char *const[]){ "nosuid", "nodev", "mode=755", "size=65536k", NULL });
        for (size_t i = 0; i < r->n_mounts; i++) {
                /* The source is the caller's own fd (opened by the CLI as the caller), kept open at this
                 * number in the creating process: no path is resolved on anyone's behalf. */
                g_autofree char *src = g_strdup_printf("/proc/self/fd/%d", in->mount_fds[i]);
                add_mount(b, r->mounts[i].destination, "bind", src,
                          r->mounts[i].readonly
                                  ? (const char *const[]){ "rbind", "ro", "nosuid", "nodev", NULL }
                                  : (const char *const[]){ "rbind", "nosuid", "nodev", NULL });
        }
        json_builder_end_array(b);

        json_builder_set_member_name(b, "annotations");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "org.berth.id");
        json_builder_add_string_value(b, in->id);
        json_builder_set_member_name(b, "org.berth.name");
        json_builder_add_string_value(b, r->name);
        json_builder_set_member_name(b, "org.berth.image-config");
        json_builder_add_string_value(b, r->image_config);
        json_builder_set_member_name(b, "org.berth.seccomp");
        json_builder_add_string_value(b, privileged || r->seccomp_unconfined ? "unconfined" : "default");
        json_builder_end_object(b);

        /* linux */
        json_builder_set_member_name(b, "linux");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "namespaces");
        json_builder_begin_array(b);
        const char *ns[] = { "mount", "pid", "uts", "ipc", "network", "cgroup" };
        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                if (streq(ns[i], "network") && r->net_host)
                        continue;
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "type");
                json_builder_add_string_value(b, ns[i]);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "cgroupsPath");
        json_builder_add_string_value(b, in->cgroup_path);
        json_builder_set_member_name(b, "resources");
        json_builder_begin_object(b);
        add_device_rules(b);
        if (r->memory > 0) {
                json_builder_set_member_name(b, "memory");
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "limit");
                json_builder_add_int_value(b, (gint64) r->memory);
                /* No swap beyond the limit: an OOM is an OOM, not a slow container. */
                json_builder_set_member_name(b, "swap");
                json_builder_add_int_value(b, (gint64) r->memory);
                json_builder_end_object(b);
        }
        if (r->cpu_quota_milli > 0) {
                json_builder_set_member_name(b, "cpu");
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "quota");
                json_builder_add_int_value(b, (gint64) (r->cpu_quota_milli * SPEC_CPU_PERIOD_USEC / 1000U));
                json_builder_set_member_name(b, "period");
                json_builder_add_int_value(b, SPEC_CPU_PERIOD_USEC);
                json_builder_end_object(b);
        }
        if (r->pids_limit > 0) {
                json_builder_set_member_name(b, "pids");
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "limit");
                json_builder_add_int_value(b, (gint64) r->pids_limit);
                json_builder_end_object(b);
        }
        json_builder_end_object(b);
        add_strv(b, "maskedPaths", privileged ? NULL : (char *const *) masked_paths);
        add_strv(b, "readonlyPaths", privileged ? NULL : (char *const *) readonly_paths);
        json_builder_end_object(b);

        json_builder_end_object(b);
        *ret = json_builder_get_root(b);
        return *ret ? 0 : -ENOMEM;
}
