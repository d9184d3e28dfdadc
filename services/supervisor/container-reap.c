/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Processes a container left behind without its shim. A shim killed with SIGKILL does not take the
 * container's init with it (it is reparented, like a containerd shim's); the supervisor then knows the
 * container as stopped, but its processes still hold the cgroup and the rootfs, and removal must end
 * them. They are found where the engine put them: the container's cgroup in every hierarchy. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "container.h"
#include "container-reap.h"
#include "macro.h"

#define REAP_ROUNDS 300 /* × 10 ms: a SIGKILLed process leaves its cgroup within a scheduler tick or so */

/* The container's cgroup directories: /sys/fs/cgroup[/<hierarchy>]/berth/<id> (cgroupfs) and
 * …/berth.slice/berth-<id>.scope (systemd). */
static GPtrArray *cgroup_dirs(const char *id) {
        GPtrArray *l = g_ptr_array_new_with_free_func(g_free);
        _cleanup_closedir_ DIR *d = opendir("/sys/fs/cgroup");
        struct dirent *de;
        g_autofree char *scope = g_strdup_printf("berth-%s.scope", id);
        const char *tails[][2] = { { "berth", id }, { "berth.slice", scope } };

        for (size_t t = 0; t < ELEMENTSOF(tails); t++)
                g_ptr_array_add(l, g_build_filename("/sys/fs/cgroup", tails[t][0], tails[t][1], NULL));
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.' || de->d_type != DT_DIR || g_str_has_prefix(de->d_name, "berth"))
                        continue;
                for (size_t t = 0; t < ELEMENTSOF(tails); t++)
                        g_ptr_array_add(l, g_build_filename("/sys/fs/cgroup", de->d_name, tails[t][0],
                                                            tails[t][1], NULL));
        }
        return l;
}

/* SIGKILL to every process listed in dir's cgroup.procs; the number listed. */
static unsigned kill_procs_of(const char *dir) {
        g_autofree char *path = g_build_filename(dir, "cgroup.procs", NULL);
        g_autofree char *data = NULL;
        g_auto(GStrv) lines = NULL;
        unsigned n = 0;

        if (!g_file_get_contents(path, &data, NULL, NULL))
                return 0;
        lines = g_strsplit(data, "\n", -1);
        for (char **l = lines; *l; l++) {
                char *end;
                long pid = strtol(*l, &end, 10);
                if (**l && !*end && pid > 1) {
                        (void) kill((pid_t) pid, SIGKILL);
                        n++;
                }
        }
        return n;
}

/* The directories and their children: under systemd the processes sit in the scope's leaves
 * (<scope>/container, <scope>/shim), and a v2 scope's own cgroup.procs is empty. */
static unsigned kill_listed(GPtrArray *dirs) {
        unsigned n = 0;

        for (unsigned i = 0; i < dirs->len; i++) {
                _cleanup_closedir_ DIR *d = opendir(dirs->pdata[i]);
                struct dirent *de;

                n += kill_procs_of(dirs->pdata[i]);
                while (d && (de = readdir(d))) {
                        g_autofree char *sub = NULL;

                        if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                                continue;
                        sub = g_build_filename(dirs->pdata[i], de->d_name, NULL);
                        n += kill_procs_of(sub);
                }
        }
        return n;
}

int container_kill_orphans(const char *id) {
        g_autoptr(GPtrArray) dirs = NULL;

        if (!container_id_is_valid(id))
                return -EINVAL;
        dirs = cgroup_dirs(id);
        for (unsigned round = 0; round < REAP_ROUNDS; round++) {
                if (kill_listed(dirs) == 0)
                        return 0;
                (void) usleep(10000);
        }
        return -EBUSY;
}
