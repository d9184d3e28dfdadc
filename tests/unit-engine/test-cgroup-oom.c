/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <unistd.h>

#include "cgroup-oom.h"
#include "macro.h"

static char *write_tmp(const char *dir, const char *name, const char *content) {
        char *p = g_build_filename(dir, name, NULL);
        g_assert_true(g_file_set_contents(p, content, -1, NULL));
        return p;
}

static void test_parse(void) {
        g_autofree char *dir = g_dir_make_tmp("berth-oom-XXXXXX", NULL);
        uint64_t n = 99;

        g_autofree char *v2 = write_tmp(dir, "memory.events",
                                        "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n");
        g_assert_cmpint(cgroup_oom_kill_count(v2, &n), ==, 0);
        g_assert_cmpuint(n, ==, 2);

        g_autofree char *v1 =
                write_tmp(dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
        g_assert_cmpint(cgroup_oom_kill_count(v1, &n), ==, 0);
        g_assert_cmpuint(n, ==, 0);

        g_autofree char *none = write_tmp(dir, "none", "oom 3\n");
        g_assert_cmpint(cgroup_oom_kill_count(none, &n), ==, -ENODATA);
        g_autofree char *bad = write_tmp(dir, "bad", "oom_kill x\n");
        g_assert_cmpint(cgroup_oom_kill_count(bad, &n), ==, -EBADMSG);

        /* through the state directory's oom-file */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(dfd, >=, 0);
        g_assert_cmpint(cgroup_oom_kill_count_at(dfd, &n), ==, -ENOENT);
        g_autofree char *rec = g_strdup_printf("%s\n", v2);
        g_autofree char *f = write_tmp(dir, CGROUP_OOM_FILE_NAME, rec);
        g_assert_cmpint(cgroup_oom_kill_count_at(dfd, &n), ==, 0);
        g_assert_cmpuint(n, ==, 2);
        g_autofree char *f2 = write_tmp(dir, CGROUP_OOM_FILE_NAME, "relative/path\n");
        g_assert_cmpint(cgroup_oom_kill_count_at(dfd, &n), ==, -EBADMSG);
        close(dfd);

        const char *names[] = { "memory.events", "memory.oom_control", "none", "bad", CGROUP_OOM_FILE_NAME };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                g_autofree char *p = g_build_filename(dir, names[i], NULL);
                g_unlink(p);
        }
        g_rmdir(dir);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cgroup-oom/parse", test_parse);
        return g_test_run();
}
