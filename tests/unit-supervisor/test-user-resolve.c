/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* USER resolution in the image: hostile passwd/group lines, overflowing ids (S10), symlinks out of the
 * rootfs, FIFOs and huge files (S14), supplementary groups (S8). */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "user-resolve.h"

static char *tmp;
static int root_fd = -1;

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "mallory:x:99999999999999999999:0::/:/bin/sh\n" /* overflow: skipped */
                             "trudy:x:-5:0::/:/bin/sh\n"                     /* negative: skipped */
                             "short:x:12:12\n"                               /* too few fields */
                             "wrap:x:4294967296:4294967296::/:/bin/sh\n"     /* 2^32: skipped */
                             "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
                             "bob:x:1001:1001::relative:/bin/sh\n"
                             "big:x:2147483648:100::/:/bin/sh\n";
static const char group[] = "root:x:0:\n"
                            "secret:x:50:alice,carol\n"
                            "staff:x:60:bob\n"
                            "users:x:100:alice\n"
                            "bad:x:99999999999999:alice\n";

static void write_file(const char *rel, const char *content) {
        g_autofree char *p = g_build_filename(tmp, "root", rel, NULL);
        g_assert_true(g_file_set_contents(p, content, -1, NULL));
}

static void setup_root(void) {
        g_autofree char *root = g_build_filename(tmp, "root", NULL);
        g_autofree char *etc = g_build_filename(root, "etc", NULL);

        g_assert_cmpint(g_mkdir_with_parents(etc, 0755), ==, 0);
        write_file("etc/passwd", passwd);
        write_file("etc/group", group);
        root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(root_fd, >=, 0);
}

static bool has_group(const UserIds *u, gid_t g) {
        for (size_t i = 0; i < u->n_groups; i++)
                if (u->groups[i] == g)
                        return true;
        return false;
}

static void test_good(void) {
        static const struct {
                const char *spec;
                uid_t uid;
                gid_t gid;
                gid_t also; /* a supplementary group that must be there (0: none checked) */
        } cases[] = {
                { "", 0, 0, 0 },
                { "root", 0, 0, 0 },
                { "alice", 1000, 1000, 50 },
                { "1000", 1000, 1000, 50 },
                { "1000:2000", 1000, 2000, 50 },
                { "alice:staff", 1000, 60, 100 },
                { "4242", 4242, 0, 0 },
                { "2147483648", 2147483648U, 100, 0 },
                { "bob", 1001, 1001, 60 },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                _cleanup_free_ char *err = NULL;
                UserIds u;

                g_test_message("user '%s'", cases[i].spec);
                g_assert_cmpint(user_resolve(root_fd, cases[i].spec, &u, &err), ==, 0);
                g_assert_cmpuint(u.uid, ==, cases[i].uid);
                g_assert_cmpuint(u.gid, ==, cases[i].gid);
                g_assert_true(has_group(&u, cases[i].gid));
                if (cases[i].also)
                        g_assert_true(has_group(&u, cases[i].also));
        }
}

static void test_home(void) {
        _cleanup_free_ char *err = NULL;
        UserIds u;

        g_assert_cmpint(user_resolve(root_fd, "alice", &u, &err), ==, 0);
        g_assert_cmpstr(u.home, ==, "/home/alice");
        g_assert_cmpint(user_resolve(root_fd, "bob", &u, &err), ==, 0);
        g_assert_cmpstr(u.home, ==, "/"); /* a relative home is not used */
}

static void test_bad(void) {
        static const char *const cases[] = {
                "4294967295",
                "4294967296",
                "99999999999999999999",
                "-1",
                "0x10",
                " 0",
                "1:2:3",
                "root\n",
                "mallory",
                "trudy",
                "wrap",
                "short",
                "nobody_here",
                "alice:nogroup",
                "alice:",
                "1000:4294967295",
                "al:ice",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                _cleanup_free_ char *err = NULL;
                UserIds u = { .uid = 12345 };

                g_test_message("bad user '%s'", cases[i]);
                g_assert_cmpint(user_resolve(root_fd, cases[i], &u, &err), <, 0);
                g_assert_nonnull(err);
                g_test_message("  → %s", err);
        }
}

static void test_parse_id(void) {
        uint32_t v;

        g_assert_cmpint(parse_id("0", &v), ==, 0);
        g_assert_cmpuint(v, ==, 0);
        g_assert_cmpint(parse_id("4294967294", &v), ==, 0);
        g_assert_cmpuint(v, ==, 4294967294U);
        g_assert_cmpint(parse_id("4294967295", &v), ==, -ERANGE);
        g_assert_cmpint(parse_id("18446744073709551617", &v), ==, -ERANGE);
        g_assert_cmpint(parse_id("+1", &v), ==, -EINVAL);
        g_assert_cmpint(parse_id("", &v), ==, -EINVAL);
}

/* A second rootfs whose /etc/passwd is hostile as a file. */
static int make_root(const char *name) {
        g_autofree char *root = g_build_filename(tmp, name, NULL);
        g_autofree char *etc = g_build_filename(root, "etc", NULL);
        g_assert_cmpint(g_mkdir_with_parents(etc, 0755), ==, 0);
        int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        return fd;
}

static void test_symlink_out(void) {
        g_autofree char *outside = g_build_filename(tmp, "outside", NULL);
        g_autofree char *outside_passwd = g_build_filename(outside, "passwd", NULL);
        _cleanup_close_ int fd = make_root("root-symlink");
        _cleanup_free_ char *err = NULL;
        UserIds u;

        /* Outside the rootfs, a passwd that would make "alice" root. */
        g_assert_cmpint(g_mkdir_with_parents(outside, 0755), ==, 0);
        g_assert_true(g_file_set_contents(outside_passwd, "alice:x:0:0::/:/bin/sh\n", -1, NULL));
        g_assert_cmpint(symlinkat("../../outside/passwd", fd, "etc/passwd"), ==, 0);
        g_assert_cmpint(user_resolve(fd, "alice", &u, &err), ==, -ESRCH);
        free(err);
        err = NULL;
        /* The absolute form, and /proc magic links, stay inside too. */
        g_assert_cmpint(unlinkat(fd, "etc/passwd", 0), ==, 0);
        g_assert_cmpint(symlinkat(outside_passwd, fd, "etc/passwd"), ==, 0);
        g_assert_cmpint(user_resolve(fd, "alice", &u, &err), ==, -ESRCH);
        free(err);
        err = NULL;
        g_assert_cmpint(unlinkat(fd, "etc/passwd", 0), ==, 0);
        g_assert_cmpint(symlinkat("/proc/self/root/etc/passwd", fd, "etc/passwd"), ==, 0);
        g_assert_cmpint(user_resolve(fd, "root", &u, &err), <, 0);
}

static void test_fifo_and_huge(void) {
        _cleanup_close_ int fd = make_root("root-fifo");
        _cleanup_close_ int fd2 = make_root("root-huge");
        _cleanup_free_ char *err = NULL, *err2 = NULL;
        _cleanup_close_ int big = -1;
        UserIds u;

        /* A FIFO: refused at once, never waited on. */
        g_assert_cmpint(mkfifoat(fd, "etc/passwd", 0644), ==, 0);
        g_assert_cmpint(user_resolve(fd, "root", &u, &err), ==, -EINVAL);
        /* Larger than the cap: refused before it is read. */
        big = openat(fd2, "etc/passwd", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        g_assert_cmpint(big, >=, 0);
        g_assert_cmpint(ftruncate(big, USER_DB_SIZE_MAX + 1), ==, 0);
        g_assert_cmpint(user_resolve(fd2, "root", &u, &err2), ==, -EFBIG);
}

static void test_no_passwd(void) {
        _cleanup_close_ int fd = make_root("root-empty");
        _cleanup_free_ char *err = NULL;
        UserIds u;

        g_assert_cmpint(user_resolve(fd, "123:456", &u, &err), ==, 0);
        g_assert_cmpuint(u.uid, ==, 123);
        g_assert_cmpuint(u.gid, ==, 456);
        g_assert_cmpint(user_resolve(fd, "alice", &u, &err), ==, -ESRCH);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        tmp = g_dir_make_tmp("berth-user-XXXXXX", NULL);
        g_assert_nonnull(tmp);
        setup_root();
        g_test_add_func("/user/good", test_good);
        g_test_add_func("/user/home", test_home);
        g_test_add_func("/user/bad", test_bad);
        g_test_add_func("/user/parse-id", test_parse_id);
        g_test_add_func("/user/symlink-out", test_symlink_out);
        g_test_add_func("/user/fifo-and-huge", test_fifo_and_huge);
        g_test_add_func("/user/no-passwd", test_no_passwd);
        r = g_test_run();
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
        if (system(cmd) != 0)
                g_printerr("could not remove %s\n", tmp);
        return r;
}
