/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The supervisor's image views (services/supervisor/image-mount.c) with real mounts: a snapshot store
 * laid out as the unpacker writes it (<hex>/fs/ and <hex>/snapshot.json) in a temp dir, views mounted
 * onto directories opened by fd, read through, listed as in use, unmounted; and every refusal of the
 * chain walk and of unmount. Each case runs in a forked child inside a private mount namespace, so no
 * mount outlives it whatever happens. Needs root and overlayfs; skips otherwise. */

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "berth-limits.h"
#include "image-mount.h"
#include "macro.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HEX_X "1111111111111111111111111111111111111111111111111111111111111111"
#define HEX_Y "2222222222222222222222222222222222222222222222222222222222222222"
#define HEX_MISSING "3333333333333333333333333333333333333333333333333333333333333333"
#define HEX_NO_RECORD "4444444444444444444444444444444444444444444444444444444444444444"
#define HEX_BAD_PARENT "5555555555555555555555555555555555555555555555555555555555555555"
#define HEX_BAD_JSON "6666666666666666666666666666666666666666666666666666666666666666"

typedef struct Store {
        char *top;
        char *path; /* top/snapshots */
        int fd;
} Store;

static void write_file(const char *dir, const char *name, const char *content) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        g_autoptr(GError) error = NULL;

        g_file_set_contents(p, content, -1, &error);
        g_assert_no_error(error);
}

/* <hex>/fs with the given files ("name=content", NULL-terminated) and a record naming parent. */
static void add_snapshot(Store *s, const char *hex, const char *parent_json, const char *const *files) {
        g_autofree char *dir = g_build_filename(s->path, hex, NULL), *fs = g_build_filename(dir, "fs", NULL);
        g_autofree char *record = NULL;

        g_assert_cmpint(g_mkdir_with_parents(fs, 0755), ==, 0);
        for (const char *const *f = files; f && *f; f++) {
                g_auto(GStrv) kv = g_strsplit(*f, "=", 2);
                write_file(fs, kv[0], kv[1]);
        }
        if (parent_json) {
                record = g_strdup_printf("{\"chain_id\":\"sha256:%s\",\"parent\":%s}", hex, parent_json);
                write_file(dir, "snapshot.json", record);
        }
}

static void store_setup(Store *s) {
        g_autoptr(GError) error = NULL;

        s->top = g_dir_make_tmp("test-image-mount-XXXXXX", &error);
        g_assert_no_error(error);
        s->path = g_build_filename(s->top, "snapshots", NULL);
        g_assert_cmpint(g_mkdir(s->path, 0700), ==, 0);
        s->fd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(s->fd, >=, 0);

        /* C on B on A: B replaces A's shared file, C adds its own. */
        add_snapshot(s, HEX_A, "\"\"", (const char *const[]){ "shared=from A", "a=A", NULL });
        add_snapshot(s, HEX_B, "\"sha256:" HEX_A "\"",
                     (const char *const[]){ "shared=from B", "b=B", NULL });
        add_snapshot(s, HEX_C, "\"sha256:" HEX_B "\"", (const char *const[]){ "c=C", NULL });
        /* Damaged stores. */
        add_snapshot(s, HEX_X, "\"sha256:" HEX_Y "\"", NULL);
        add_snapshot(s, HEX_Y, "\"sha256:" HEX_X "\"", NULL);
        add_snapshot(s, HEX_NO_RECORD, NULL, NULL);
        add_snapshot(s, HEX_BAD_PARENT, "\"../../etc\"", NULL);
        add_snapshot(s, HEX_BAD_JSON, "[", NULL);
}

static void store_teardown(Store *s) {
        g_autofree char *cmd = g_strdup_printf("rm -rf --one-file-system '%s'", s->top);

        safe_close(s->fd);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(s->path);
        g_free(s->top);
}

static int open_target(Store *s, const char *name) {
        g_autofree char *p = g_build_filename(s->top, name, NULL);
        int fd;

        (void) g_mkdir(p, 0755);
        fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        return fd;
}

static char *read_in(Store *s, const char *target, const char *name) {
        g_autofree char *p = g_build_filename(s->top, target, name, NULL);
        char *content = NULL;

        if (!g_file_get_contents(p, &content, NULL, NULL))
                return NULL;
        return content;
}

static bool in_use(Store *s, const char *hex) {
        g_auto(GStrv) ids = NULL;
        g_autofree char *id = g_strdup_printf("sha256:%s", hex);

        g_assert_cmpint(image_mounts_in_use(s->path, &ids), ==, 0);
        return g_strv_contains((const char *const *) ids, id);
}

/* Runs fn in a child, in a private mount namespace. */
static void in_mount_namespace(void (*fn)(Store *s)) {
        Store s = {};
        int status;
        pid_t pid;

        if (geteuid() != 0) {
                g_test_skip("needs root for mounts");
                return;
        }
        store_setup(&s);
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        _exit(77);
                /* The store's fd must belong to this namespace's mounts: open_tree() clones only those. */
                safe_close(s.fd);
                s.fd = open(s.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (s.fd < 0)
                        _exit(78);
                fn(&s);
                _exit(0);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        store_teardown(&s);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

/* ---- views ------------------------------------------------------------------------------------------ */

static void overlay_view(Store *s) {
        g_autofree char *error = NULL, *shared = NULL, *a = NULL, *b = NULL, *c = NULL;
        g_autofree char *written = g_build_filename(s->top, "view", "new", NULL);
        _cleanup_close_ int target = open_target(s, "view");
        uint64_t id = 0;

        g_assert_cmpint(image_mount(s->fd, s->path, "sha256:" HEX_C, target, &id, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpuint(id, >, 0);

        /* The lowerdirs go top first: B's file hides A's, and every layer shows. */
        shared = read_in(s, "view", "shared");
        a = read_in(s, "view", "a");
        b = read_in(s, "view", "b");
        c = read_in(s, "view", "c");
        g_assert_cmpstr(shared, ==, "from B");
        g_assert_cmpstr(a, ==, "A");
        g_assert_cmpstr(b, ==, "B");
        g_assert_cmpstr(c, ==, "C");
        /* Read-only. */
        g_assert_cmpint(open(written, O_WRONLY | O_CREAT | O_CLOEXEC, 0644), ==, -1);
        g_assert_cmpint(errno, ==, EROFS);

        /* Garbage collection must keep every layer of the view. */
        g_assert_true(in_use(s, HEX_A) && in_use(s, HEX_B) && in_use(s, HEX_C));
        g_assert_false(in_use(s, HEX_X));

        /* Unmount through a fresh fd on the mount point (the old one names the covered directory). */
        {
                _cleanup_close_ int view = open_target(s, "view");

                g_assert_cmpint(image_unmount(s->path, view, &error), ==, 0);
        }
        g_clear_pointer(&c, g_free);
        g_assert_null(c = read_in(s, "view", "c"));
        g_assert_false(in_use(s, HEX_C));
}

static void test_overlay_view(void) {
        in_mount_namespace(overlay_view);
}

static void bind_view(Store *s) {
        g_autofree char *error = NULL, *shared = NULL, *b = NULL;
        _cleanup_close_ int target = open_target(s, "view"), view = -EBADF;

        /* One layer: a read-only bind mount, since overlayfs wants two lower layers. */
        if (image_mount(s->fd, s->path, "sha256:" HEX_A, target, NULL, &error) != 0)
                g_error("mount failed: %s", error);
        shared = read_in(s, "view", "shared");
        g_assert_cmpstr(shared, ==, "from A");
        g_assert_null(b = read_in(s, "view", "b"));
        g_assert_true(in_use(s, HEX_A));
        g_assert_false(in_use(s, HEX_B));
        view = open_target(s, "view");
        g_assert_cmpint(mkdirat(view, "new", 0755), ==, -1);
        g_assert_cmpint(errno, ==, EROFS);
        g_assert_cmpint(image_unmount(s->path, view, &error), ==, 0);
        g_assert_false(in_use(s, HEX_A));
}

static void test_bind_view(void) {
        in_mount_namespace(bind_view);
}

/* ---- refusals ----------------------------------------------------------------------------------------- */

static void expect_refused(Store *s, const char *chain_id, int want_r, const char *want_message) {
        g_autofree char *error = NULL;
        _cleanup_close_ int target = open_target(s, "refused");

        g_assert_cmpint(image_mount(s->fd, s->path, chain_id, target, NULL, &error), ==, want_r);
        g_assert_nonnull(error);
        if (!strstr(error, want_message))
                g_error("'%s' does not say '%s'", error, want_message);
        /* Nothing was mounted. */
        g_assert_false(in_use(s, HEX_A));
}

static void chain_refusals(Store *s) {
        g_autofree char *deep_top = NULL;
        _cleanup_close_ int file_fd = -EBADF;
        g_autofree char *error = NULL, *file = g_build_filename(s->top, "file", NULL);

        expect_refused(s, "sha256:" HEX_X, -ELOOP, "loops");
        expect_refused(s, "sha256:" HEX_MISSING, -ENOENT, "is not committed");
        expect_refused(s, "sha256:" HEX_NO_RECORD, -ENOENT, "has no record");
        expect_refused(s, "sha256:" HEX_BAD_PARENT, -EBADMSG, "bad parent");
        expect_refused(s, "sha256:" HEX_BAD_JSON, -EBADMSG, "bad record");
        /* Only strict sha256 chain ids: the hex names a directory. */
        expect_refused(s, "sha256:../../etc", -EINVAL, "invalid chain id");
        expect_refused(s, "sha512:" HEX_A HEX_A, -EINVAL, "invalid chain id");
        expect_refused(s, "sha256:" HEX_A "/fs", -EINVAL, "invalid chain id");

        /* A chain deeper than the limit is refused before anything is mounted. */
        for (unsigned i = 0; i <= LAYERS_MAX; i++) {
                g_autofree char *hex = g_strdup_printf("%064x", i + 0x100);
                g_autofree char *parent =
                        i == 0 ? g_strdup("\"\"") : g_strdup_printf("\"sha256:%064x\"", i - 1 + 0x100);

                add_snapshot(s, hex, parent, NULL);
                if (i == LAYERS_MAX)
                        deep_top = g_strdup_printf("sha256:%s", hex);
        }
        expect_refused(s, deep_top, -E2BIG, "longer than");

        /* The target must be a directory. */
        write_file(s->top, "file", "x");
        file_fd = open(file, O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(file_fd, >=, 0);
        g_assert_cmpint(image_mount(s->fd, s->path, "sha256:" HEX_C, file_fd, NULL, &error), ==, -ENOTDIR);
}

static void test_chain_refusals(void) {
        in_mount_namespace(chain_refusals);
}

static void unmount_refusals(Store *s) {
        g_autofree char *error = NULL, *foreign = g_build_filename(s->top, "foreign", NULL);
        _cleanup_close_ int plain = open_target(s, "plain"), target = open_target(s, "view");
        _cleanup_close_ int foreign_fd = -EBADF, view = -EBADF, inside = -EBADF;

        /* Not a mount point at all: the mount it lies on (the temp dir's) is not a view. */
        g_assert_cmpint(image_unmount(s->path, plain, &error), ==, -EPERM);
        g_assert_nonnull(strstr(error, "not an image view"));
        g_clear_pointer(&error, g_free);

        /* SECURITY: somebody else's mount is never uncovered. */
        g_assert_cmpint(g_mkdir(foreign, 0755), ==, 0);
        g_assert_cmpint(mount("tmpfs", foreign, "tmpfs", 0, NULL), ==, 0);
        foreign_fd = open(foreign, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(image_unmount(s->path, foreign_fd, &error), ==, -EPERM);
        g_assert_nonnull(strstr(error, "not an image view"));
        g_clear_pointer(&error, g_free);
        /* A view from another store is not ours either. */
        g_assert_cmpint(image_mount(s->fd, s->path, "sha256:" HEX_C, target, NULL, &error), ==, 0);
        view = open_target(s, "view");
        g_assert_cmpint(image_unmount("/var/lib/berth/snapshots", view, &error), ==, -EPERM);
        g_clear_pointer(&error, g_free);

        /* A directory inside a view is not its mount point. */
        {
                g_autofree char *sub = g_build_filename(s->path, HEX_A, "fs", "sub", NULL);
                g_autofree char *in_view = g_build_filename(s->top, "view", "sub", NULL);

                g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
                inside = open(in_view, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                g_assert_cmpint(inside, >=, 0);
                g_assert_cmpint(image_unmount(s->path, inside, &error), ==, -EINVAL);
                g_clear_pointer(&error, g_free);
        }
        g_assert_cmpint(image_unmount(s->path, view, &error), ==, 0);
}

static void test_unmount_refusals(void) {
        in_mount_namespace(unmount_refusals);
}

/* Issue 12 finding 12: an overlay that merely mentions the store is not a view (UnmountImage would
 * uncover it). Both spellings of the lowerdirs, and every directory option, are checked. */
static void hardening_f12_foreign_overlay(Store *s) {
        g_autofree char *error = NULL, *foreign = g_build_filename(s->top, "foreign-overlay", NULL);
        g_autofree char *other = g_build_filename(s->top, "other", NULL);
        g_autofree char *opts = g_strdup_printf("lowerdir=%s/%s/fs:%s", s->path, HEX_A, other);
        _cleanup_close_ int fd = -EBADF;

        g_assert_cmpint(g_mkdir(foreign, 0755), ==, 0);
        g_assert_cmpint(g_mkdir(other, 0755), ==, 0);
        g_assert_cmpint(mount("overlay", foreign, "overlay", MS_RDONLY, opts), ==, 0);
        fd = open(foreign, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(image_unmount(s->path, fd, &error), ==, -EPERM);
        g_assert_nonnull(strstr(error, "not an image view"));
        fd = safe_close(fd);
        g_assert_cmpint(umount(foreign), ==, 0);
}

static void test_hardening_f12_view_is_ours(void) {
        const char *store = "/var/lib/berth/snapshots";
        g_autofree char *a = g_strdup_printf("%s/%s/fs", store, HEX_A);
        g_autofree char *b = g_strdup_printf("%s/%s/fs", store, HEX_B);
        g_autofree char *two = g_strdup_printf("ro,lowerdir=%s:%s,redirect_dir=nofollow", a, b);
        g_autofree char *plus = g_strdup_printf("ro,lowerdir+=%s,lowerdir+=%s", a, b);
        g_autofree char *foreign = g_strdup_printf("ro,lowerdir=%s:/etc", a);
        g_autofree char *foreign_plus = g_strdup_printf("ro,lowerdir+=%s,lowerdir+=/etc", a);
        g_autofree char *upper = g_strdup_printf("rw,lowerdir=%s,upperdir=/tmp/u,workdir=/tmp/w", a);
        g_autofree char *data = g_strdup_printf("ro,lowerdir+=%s,datadir+=/etc", a);
        g_autofree char *dotdot = g_strdup_printf("ro,lowerdir=%s/../%s/fs", store, HEX_A);
        g_autofree char *other_store = g_strdup_printf("ro,lowerdir=%s2/%s/fs", store, HEX_A);

        g_assert_true(image_view_options_are_ours(store, two));
        g_assert_true(image_view_options_are_ours(store, plus));
        g_assert_false(image_view_options_are_ours(store, foreign));
        g_assert_false(image_view_options_are_ours(store, foreign_plus));
        g_assert_false(image_view_options_are_ours(store, upper));
        g_assert_false(image_view_options_are_ours(store, data));
        g_assert_false(image_view_options_are_ours(store, dotdot));
        g_assert_false(image_view_options_are_ours(store, other_store));
        g_assert_false(image_view_options_are_ours(store, "ro"));
        in_mount_namespace(hardening_f12_foreign_overlay);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/image-mount/hardening-f12-view-is-ours", test_hardening_f12_view_is_ours);
        g_test_add_func("/image-mount/overlay-view", test_overlay_view);
        g_test_add_func("/image-mount/bind-view", test_bind_view);
        g_test_add_func("/image-mount/chain-refusals", test_chain_refusals);
        g_test_add_func("/image-mount/unmount-refusals", test_unmount_refusals);
        return g_test_run();
}
