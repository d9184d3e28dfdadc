/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The unpacker's snapshot store (services/unpacker/snapshot-store.c) in a temporary directory: work
 * dirs, commit, records read back, listing, the refusals of remove (parent of a survivor, mounted,
 * unknown) and start-up cleaning. The mount refusal needs root (a bind mount in a private mount
 * namespace of a forked child); it skips otherwise. */

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "digest.h"
#include "fs-at.h"
#include "macro.h"
#include "snapshot-store.h"

#define CHAIN_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define CHAIN_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CHAIN_C "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define DIFF "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define LAYER "sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

typedef struct Fixture {
        char *top;  /* the temp dir */
        char *path; /* top/snapshots (not yet there: open creates it) */
        SnapshotStore *store;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        f->top = g_dir_make_tmp("test-snapshot-store-XXXXXX", &error);
        g_assert_no_error(error);
        f->path = g_build_filename(f->top, "state", "snapshots", NULL);
        g_assert_cmpint(snapshot_store_open(f->path, &f->store), ==, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        _cleanup_close_ int fd = open(g_get_tmp_dir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        snapshot_store_free(f->store);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(rm_rf_at(fd, f->top + strlen(g_get_tmp_dir()) + 1, NULL), ==, 0);
        g_free(f->path);
        g_free(f->top);
}

/* A work dir with one file of `size` bytes, committed as chain (parent may be ""). */
static void make_snapshot(Fixture *f, const char *chain, const char *parent, size_t size) {
        _cleanup_free_ char *name = NULL, *fs_path = NULL;
        _cleanup_close_ int fs_fd = -EBADF, fd = -EBADF;
        g_autofree char *data = g_malloc0(size);
        SnapshotInfo info = {
                .chain_id = (char *) chain,
                .parent = (char *) parent,
                .diff_id = (char *) DIFF,
                .layer_digest = (char *) LAYER,
                .size = size,
                .entries = 1,
                .created = 1234567,
        };
        struct stat st;

        g_assert_cmpint(snapshot_store_new_work(f->store, &name, &fs_fd, &fs_path), ==, 0);
        g_assert_cmpint(fstat(fs_fd, &st), ==, 0);
        g_assert_true(S_ISDIR(st.st_mode));
        g_assert_cmpint(st.st_mode & 07777, ==, 0755);
        g_assert_true(g_str_has_prefix(fs_path, f->path));
        g_assert_true(g_str_has_suffix(fs_path, "/fs"));
        fd = openat(fs_fd, "file", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, data, size), ==, (ssize_t) size);
        g_assert_cmpint(snapshot_store_commit(f->store, name, &info), ==, 0);
}

static unsigned count_entries(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        unsigned n = 0;

        g_assert_nonnull(d);
        while (g_dir_read_name(d))
                n++;
        return n;
}

static void test_open(Fixture *f, gconstpointer data) {
        g_autofree char *tmp = g_build_filename(f->path, "tmp", NULL);
        g_autofree char *leftover = g_build_filename(tmp, "0123456789abcdef", "fs", NULL);
        struct stat st;

        /* SECURITY: the store is 0700, also when it was found more open. */
        g_assert_cmpint(stat(f->path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0700);
        g_assert_cmpint(chmod(f->path, 0755), ==, 0);

        /* A crashed job's work dir is gone after the next open. */
        g_assert_cmpint(g_mkdir_with_parents(leftover, 0755), ==, 0);
        f->store = snapshot_store_free(f->store);
        g_assert_cmpint(snapshot_store_open(f->path, &f->store), ==, 0);
        g_assert_cmpint(stat(f->path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0700);
        g_assert_cmpuint(count_entries(tmp), ==, 0);
}

static void test_commit_get_list(Fixture *f, gconstpointer data) {
        g_autofree char *tmp = g_build_filename(f->path, "tmp", NULL);
        g_autofree char *dir = g_build_filename(f->path, CHAIN_A + strlen("sha256:"), "fs", "file", NULL);
        SnapshotInfo info = {}, *all = NULL;
        size_t n = 0;

        make_snapshot(f, CHAIN_A, "", 100);
        make_snapshot(f, CHAIN_B, CHAIN_A, 200);
        /* Committed under the chain id's hex, nothing left in tmp/. */
        g_assert_true(g_file_test(dir, G_FILE_TEST_IS_REGULAR));
        g_assert_cmpuint(count_entries(tmp), ==, 0);

        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_B, &info), ==, 0);
        g_assert_cmpstr(info.chain_id, ==, CHAIN_B);
        g_assert_cmpstr(info.parent, ==, CHAIN_A);
        g_assert_cmpstr(info.diff_id, ==, DIFF);
        g_assert_cmpstr(info.layer_digest, ==, LAYER);
        g_assert_cmpuint(info.size, ==, 200);
        g_assert_cmpuint(info.entries, ==, 1);
        g_assert_cmpuint(info.created, ==, 1234567);
        snapshot_info_done(&info);
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_A, NULL), ==, 0);

        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_C, NULL), ==, -ENOENT);
        g_assert_cmpint(snapshot_store_get(f->store, "sha256:short", NULL), ==, -EINVAL);
        g_assert_cmpint(snapshot_store_get(f->store, "../../etc", NULL), ==, -EINVAL);

        g_assert_cmpint(snapshot_store_list(f->store, &all, &n), ==, 0);
        g_assert_cmpuint(n, ==, 2);
        g_assert_true((streq(all[0].chain_id, CHAIN_A) && streq(all[1].chain_id, CHAIN_B)) ||
                      (streq(all[0].chain_id, CHAIN_B) && streq(all[1].chain_id, CHAIN_A)));
        for (size_t i = 0; i < n; i++)
                snapshot_info_done(&all[i]);
        free(all);
}

static void test_commit_never_replaces(Fixture *f, gconstpointer data) {
        _cleanup_free_ char *name = NULL, *fs_path = NULL;
        _cleanup_close_ int fs_fd = -EBADF;
        SnapshotInfo info = { .chain_id = (char *) CHAIN_A,
                              .parent = (char *) "",
                              .diff_id = (char *) DIFF,
                              .layer_digest = (char *) LAYER,
                              .size = 1 };
        SnapshotInfo got = {};

        make_snapshot(f, CHAIN_A, "", 100);
        /* A second commit of the same chain id fails; the first stays as it was. */
        g_assert_cmpint(snapshot_store_new_work(f->store, &name, &fs_fd, &fs_path), ==, 0);
        g_assert_cmpint(mkdirat(fs_fd, "other", 0755), ==, 0);
        g_assert_cmpint(snapshot_store_commit(f->store, name, &info), <, 0);
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_A, &got), ==, 0);
        g_assert_cmpuint(got.size, ==, 100);
        snapshot_info_done(&got);
        g_assert_cmpint(snapshot_store_discard_work(f->store, name), ==, 0);
        g_assert_cmpint(snapshot_store_discard_work(f->store, name), ==, 0); /* gone already: fine */
}

static void test_bad_records_are_skipped(Fixture *f, gconstpointer data) {
        g_autofree char *json =
                g_build_filename(f->path, CHAIN_A + strlen("sha256:"), "snapshot.json", NULL);
        g_autofree char *stray = g_build_filename(f->path, CHAIN_C + strlen("sha256:"), NULL);
        SnapshotInfo *all = NULL;
        size_t n = 0;

        make_snapshot(f, CHAIN_A, "", 10);
        make_snapshot(f, CHAIN_B, "", 10);
        /* A record that names another chain than its directory, and a directory without a record. */
        g_assert_true(g_file_set_contents(json,
                                          "{\"chain_id\":\"" CHAIN_B "\",\"diff_id\":\"" DIFF
                                          "\",\"layer_digest\":\"" LAYER "\"}",
                                          -1, NULL));
        g_assert_cmpint(g_mkdir(stray, 0700), ==, 0);
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_A, NULL), ==, -EBADMSG);
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_C, NULL), ==, -ENOENT);
        g_assert_true(g_file_set_contents(json, "not json", -1, NULL));
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_A, NULL), ==, -EBADMSG);

        g_assert_cmpint(snapshot_store_list(f->store, &all, &n), ==, 0);
        g_assert_cmpuint(n, ==, 1);
        g_assert_cmpstr(all[0].chain_id, ==, CHAIN_B);
        snapshot_info_done(&all[0]);
        free(all);
}

static void test_remove(Fixture *f, gconstpointer data) {
        g_autofree char *error = NULL;
        char *only_parent[] = { (char *) CHAIN_A, NULL };
        char *both[] = { (char *) CHAIN_B, (char *) CHAIN_A, NULL };
        char *unknown[] = { (char *) CHAIN_B, (char *) CHAIN_C, NULL };
        uint64_t freed = 0;

        make_snapshot(f, CHAIN_A, "", 4096);
        make_snapshot(f, CHAIN_B, CHAIN_A, 8192);

        /* The parent of a snapshot that stays: refused, nothing removed. */
        g_assert_cmpint(snapshot_store_remove(f->store, only_parent, &freed, &error), ==, -EBUSY);
        g_assert_cmpstr(error, ==, "Snapshot '" CHAIN_A "' is the parent of '" CHAIN_B "'");
        g_clear_pointer(&error, g_free);
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_A, NULL), ==, 0);

        /* One unknown id: refused as a whole. */
        g_assert_cmpint(snapshot_store_remove(f->store, unknown, &freed, &error), ==, -ENOENT);
        g_assert_cmpstr(error, ==, "Snapshot '" CHAIN_C "' does not exist");
        g_clear_pointer(&error, g_free);
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_B, NULL), ==, 0);

        /* Parent and child together: both go, and the bytes are counted. */
        g_assert_cmpint(snapshot_store_remove(f->store, both, &freed, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpuint(freed, >=, 4096 + 8192);
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_A, NULL), ==, -ENOENT);
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_B, NULL), ==, -ENOENT);
}

static void test_remove_refuses_mounted(Fixture *f, gconstpointer data) {
        g_autofree char *fs = g_build_filename(f->path, CHAIN_A + strlen("sha256:"), "fs", NULL);
        g_autofree char *view = g_build_filename(f->top, "view", NULL);
        int status;
        pid_t pid;

        if (geteuid() != 0) {
                g_test_skip("needs root for a bind mount");
                return;
        }
        make_snapshot(f, CHAIN_A, "", 10);
        g_assert_cmpint(g_mkdir(view, 0755), ==, 0);

        /* The child's mounts live and die in its own namespace. */
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                g_autofree char *error = NULL;
                char *ids[] = { (char *) CHAIN_A, NULL };
                uint64_t freed = 0;

                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount(fs, view, NULL, MS_BIND, NULL) < 0)
                        _exit(2);
                if (snapshot_store_remove(f->store, ids, &freed, &error) != -EBUSY ||
                    !streq_ptr(error, "Snapshot '" CHAIN_A "' is mounted"))
                        _exit(3);
                if (umount(view) < 0)
                        _exit(4);
                g_clear_pointer(&error, g_free);
                _exit(snapshot_store_remove(f->store, ids, &freed, &error) == 0 ? 0 : 5);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_A, NULL), ==, -ENOENT);
}

/* Issue 12 finding 12: mountinfo that cannot be read means "maybe mounted", never "not mounted". */
static void test_hardening_f12_mountinfo_unreadable(Fixture *f, gconstpointer data) {
        g_autofree char *error = NULL, *missing = g_build_filename(f->top, "no-mountinfo", NULL);
        char *ids[] = { (char *) CHAIN_A, NULL };
        uint64_t freed = 0;

        make_snapshot(f, CHAIN_A, "", 10);
        f->store->mountinfo_path = missing;
        g_assert_cmpint(snapshot_store_remove(f->store, ids, &freed, &error), ==, -EBUSY);
        g_assert_nonnull(strstr(error, "Cannot tell whether snapshot"));
        g_assert_cmpint(snapshot_store_get(f->store, CHAIN_A, NULL), ==, 0);
        f->store->mountinfo_path = NULL;
}

static void test_clean_work(Fixture *f, gconstpointer data) {
        g_autofree char *tmp = g_build_filename(f->path, "tmp", NULL);
        _cleanup_free_ char *busy = NULL, *idle = NULL, *p1 = NULL, *p2 = NULL;
        _cleanup_close_ int fd1 = -EBADF, fd2 = -EBADF;
        uint64_t freed = 0;

        g_assert_cmpint(snapshot_store_new_work(f->store, &busy, &fd1, &p1), ==, 0);
        g_assert_cmpint(snapshot_store_new_work(f->store, &idle, &fd2, &p2), ==, 0);
        g_assert_cmpstr(busy, !=, idle);
        {
                char *in_use[] = { busy, NULL };

                g_assert_cmpint(snapshot_store_clean_work(f->store, in_use, &freed), ==, 0);
        }
        g_assert_true(g_file_test(p1, G_FILE_TEST_IS_DIR));
        g_assert_false(g_file_test(p2, G_FILE_TEST_EXISTS));
        g_assert_cmpint(snapshot_store_clean_work(f->store, NULL, NULL), ==, 0);
        g_assert_cmpuint(count_entries(tmp), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/snapshot-store/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("open", test_open);
        ADD("commit-get-list", test_commit_get_list);
        ADD("commit-never-replaces", test_commit_never_replaces);
        ADD("bad-records-are-skipped", test_bad_records_are_skipped);
        ADD("remove", test_remove);
        ADD("remove-refuses-mounted", test_remove_refuses_mounted);
        ADD("clean-work", test_clean_work);
        ADD("hardening-f12-mountinfo-unreadable", test_hardening_f12_mountinfo_unreadable);
        return g_test_run();
}
