/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --privileged's device list (host-devices.c) from a fake /dev: nodes listed with their numbers, symlinks
 * and the container's own directories left out, and no path the spec parser would refuse (spec-devices.c:
 * shorter than 256 bytes), so that one long host name cannot make every privileged container fail. */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "host-devices.h"
#include "macro.h"

static char *node(const char *dir, const char *rel, unsigned maj, unsigned min) {
        char *p = g_build_filename(dir, rel, NULL);
        g_assert_cmpint(mknod(p, S_IFCHR | 0600, makedev(maj, min)), ==, 0);
        return p;
}

static void test_list(void) {
        g_autofree char *dev = g_dir_make_tmp("test-host-devices-XXXXXX", NULL);
        g_autofree char *pts = g_build_filename(dev, "pts", NULL);
        g_autofree char *deep = g_build_filename(dev, "a/b/c", NULL);
        g_autofree char *link = g_build_filename(dev, "stdin", NULL);
        g_autofree char *name250 = g_strnfill(250, 'x');
        g_autofree char *name252 = g_strnfill(252, 'y');
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;
        char *made[6] = {}; /* freed one by one below (g_autofree would free made[0] only) */
        JsonArray *a;
        bool null_seen = false;

        if (geteuid() != 0) {
                g_test_skip("mknod needs root");
                return;
        }
        g_assert_nonnull(dev);
        g_assert_cmpint(g_mkdir_with_parents(pts, 0755), ==, 0);
        g_assert_cmpint(g_mkdir_with_parents(deep, 0755), ==, 0);
        made[0] = node(dev, "null", 1, 3);
        made[1] = node(dev, name250, 1, 5);
        made[2] = node(dev, name252, 1, 7);
        made[3] = node(dev, "pts/0", 136, 0);
        made[4] = node(dev, "a/b/ok", 1, 8);   /* depth 3: listed */
        made[5] = node(dev, "a/b/c/no", 1, 9); /* depth 4: not */
        g_assert_cmpint(symlink("null", link), ==, 0);

        json_builder_begin_object(b);
        host_devices_add_json(b, dev);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        a = json_object_get_array_member(json_node_get_object(root), "devices");
        g_assert_nonnull(a);
        g_assert_cmpuint(json_array_get_length(a), ==, 3); /* null, x…x, a/b/ok */
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonObject *o = json_array_get_object_element(a, i);
                const char *path = json_object_get_string_member(o, "path");
                g_assert_cmpuint(strlen(path), <, 256);
                g_assert_true(g_str_has_prefix(path, "/dev/"));
                g_assert_null(strstr(path, "yyy"));
                g_assert_null(strstr(path, "pts"));
                g_assert_cmpstr(path, !=, "/dev/stdin");
                g_assert_cmpstr(path, !=, "/dev/a/b/c/no");
                g_assert_cmpstr(json_object_get_string_member(o, "type"), ==, "c");
                if (streq(path, "/dev/null")) {
                        null_seen = true;
                        g_assert_cmpint(json_object_get_int_member(o, "major"), ==, 1);
                        g_assert_cmpint(json_object_get_int_member(o, "minor"), ==, 3);
                }
        }
        g_assert_true(null_seen);

        for (size_t i = 0; i < ELEMENTSOF(made); i++) {
                g_assert_cmpint(unlink(made[i]), ==, 0);
                g_free(made[i]);
        }
        g_assert_cmpint(unlink(link), ==, 0);
        g_assert_cmpint(rmdir(deep), ==, 0);
        g_assert_cmpint(rmdir(pts), ==, 0);
        g_autofree char *ab = g_build_filename(dev, "a/b", NULL), *a1 = g_build_filename(dev, "a", NULL);
        g_assert_cmpint(rmdir(ab), ==, 0);
        g_assert_cmpint(rmdir(a1), ==, 0);
        g_assert_cmpint(rmdir(dev), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/host-devices/list", test_list);
        return g_test_run();
}
