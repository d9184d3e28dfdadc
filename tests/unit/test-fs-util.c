/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-util.h"
#include "macro.h"

static int open_tmp_dir(char **ret_path) {
        char *path = g_dir_make_tmp("berth-fs-util-XXXXXX", NULL);
        int fd;

        g_assert_nonnull(path);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        *ret_path = path;
        return fd;
}

static void rm_rf_dir(int dir_fd, const char *path) {
        DIR *d = fdopendir(openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        struct dirent *de;

        g_assert_nonnull(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        g_assert_cmpint(unlinkat(dir_fd, de->d_name, 0), ==, 0);
        closedir(d);
        g_assert_cmpint(rmdir(path), ==, 0);
}

static unsigned count_entries(int dir_fd) {
        DIR *d = fdopendir(openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        struct dirent *de;
        unsigned n = 0;

        g_assert_nonnull(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_loop_write_pipe(void) {
        /* More than a pipe buffer holds at once is not needed: short writes are the reader's side. */
        char buf[64] = {};
        int p[2];

        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpint(loop_write(p[1], "hello, world", 12), ==, 0);
        g_assert_cmpint(loop_write(p[1], "", 0), ==, 0);
        close(p[1]);
        g_assert_cmpint(read(p[0], buf, sizeof(buf) - 1), ==, 12);
        g_assert_cmpstr(buf, ==, "hello, world");
        close(p[0]);

        g_assert_cmpint(loop_write(-1, "x", 1), ==, -EBADF);
}

static void test_pread_full(void) {
        g_autofree char *path = NULL;
        _cleanup_close_ int dir_fd = open_tmp_dir(&path);
        char buf[16] = {};
        int fd;

        fd = openat(dir_fd, "f", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(loop_write(fd, "0123456789", 10), ==, 0);
        /* Independent of the file offset, which it leaves alone. */
        g_assert_cmpint(pread_full(fd, buf, 4, 3), ==, 4);
        g_assert_cmpstr(buf, ==, "3456");
        g_assert_cmpint(lseek(fd, 0, SEEK_CUR), ==, 10);
        /* Short only at end of file. */
        memset(buf, 0, sizeof(buf));
        g_assert_cmpint(pread_full(fd, buf, sizeof(buf) - 1, 0), ==, 10);
        g_assert_cmpstr(buf, ==, "0123456789");
        g_assert_cmpint(pread_full(fd, buf, 4, 10), ==, 0);
        close(fd);
        g_assert_cmpint(pread_full(dir_fd, buf, 4, 0), ==, -EISDIR);

        rm_rf_dir(dir_fd, path);
}

static void test_read_regular_file_fd(void) {
        g_autofree char *path = NULL;
        _cleanup_close_ int dir_fd = open_tmp_dir(&path);
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        int fd, p[2];

        fd = openat(dir_fd, "f", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(loop_write(fd, "{\"a\": 1}", 8), ==, 0);
        /* The whole file, wherever the offset stands. */
        g_assert_cmpint(read_regular_file_fd(fd, 8, &data, &size), ==, 0);
        g_assert_cmpuint(size, ==, 8);
        g_assert_cmpstr(data, ==, "{\"a\": 1}"); /* NUL-terminated */
        data = mfree(data);

        /* One byte over the cap is refused before anything is read. */
        g_assert_cmpint(read_regular_file_fd(fd, 7, &data, &size), ==, -EFBIG);
        g_assert_null(data);

        /* An empty file reads as an empty string; ret_size is optional. */
        g_assert_cmpint(ftruncate(fd, 0), ==, 0);
        g_assert_cmpint(read_regular_file_fd(fd, 8, &data, NULL), ==, 0);
        g_assert_cmpstr(data, ==, "");
        data = mfree(data);
        close(fd);

        /* Not a regular file: a directory, a pipe. */
        g_assert_cmpint(read_regular_file_fd(dir_fd, 1024, &data, &size), ==, -EBADFD);
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpint(read_regular_file_fd(p[0], 1024, &data, &size), ==, -EBADFD);
        g_assert_null(data);
        close(p[0]);
        close(p[1]);

        rm_rf_dir(dir_fd, path);
}

typedef int (*write_fn)(int dir_fd, const char *name, const void *data, size_t size, mode_t mode);

/* The same contract, durable or not: only the flushes differ. */
static void check_write_file_atomic(write_fn write_file) {
        g_autofree char *path = NULL;
        _cleanup_close_ int dir_fd = open_tmp_dir(&path);
        _cleanup_free_ char *data = NULL;
        struct stat st;
        mode_t old_umask;
        int fd;

        /* The mode is exact, whatever the umask. */
        old_umask = umask(0077);
        g_assert_cmpint(write_file(dir_fd, "doc.json", "one\n", 4, 0640), ==, 0);
        umask(old_umask);
        g_assert_cmpint(fstatat(dir_fd, "doc.json", &st, AT_SYMLINK_NOFOLLOW), ==, 0);
        g_assert_true(S_ISREG(st.st_mode));
        g_assert_cmpint(st.st_mode & 07777, ==, 0640);

        /* Replacing leaves exactly the one file, with the new content. */
        g_assert_cmpint(write_file(dir_fd, "doc.json", "two!\n", 5, 0600), ==, 0);
        g_assert_cmpuint(count_entries(dir_fd), ==, 1);
        fd = openat(dir_fd, "doc.json", O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(read_regular_file_fd(fd, 64, &data, NULL), ==, 0);
        g_assert_cmpstr(data, ==, "two!\n");
        close(fd);

        /* A symlink at the name is replaced, never followed. */
        g_assert_cmpint(symlinkat("/nonexistent/target", dir_fd, "link"), ==, 0);
        g_assert_cmpint(write_file(dir_fd, "link", "x", 1, 0600), ==, 0);
        g_assert_cmpint(fstatat(dir_fd, "link", &st, AT_SYMLINK_NOFOLLOW), ==, 0);
        g_assert_true(S_ISREG(st.st_mode));

        /* A failed rename (the name is a non-empty directory) leaves no temp file behind. */
        g_assert_cmpint(mkdirat(dir_fd, "busy", 0700), ==, 0);
        fd = openat(dir_fd, "busy", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write_file(fd, "inner", "", 0, 0600), ==, 0);
        g_assert_cmpint(write_file(dir_fd, "busy", "x", 1, 0600), <, 0);
        g_assert_cmpuint(count_entries(dir_fd), ==, 3); /* doc.json, link, busy */
        g_assert_cmpint(unlinkat(fd, "inner", 0), ==, 0);
        close(fd);
        g_assert_cmpint(unlinkat(dir_fd, "busy", AT_REMOVEDIR), ==, 0);

        rm_rf_dir(dir_fd, path);
}

static void test_write_file_atomic_at(void) {
        check_write_file_atomic(write_file_atomic_at);
}

static void test_write_file_atomic_nosync_at(void) {
        check_write_file_atomic(write_file_atomic_nosync_at);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/fs-util/loop-write", test_loop_write_pipe);
        g_test_add_func("/fs-util/pread-full", test_pread_full);
        g_test_add_func("/fs-util/read-regular-file-fd", test_read_regular_file_fd);
        g_test_add_func("/fs-util/write-file-atomic-at", test_write_file_atomic_at);
        g_test_add_func("/fs-util/write-file-atomic-nosync-at", test_write_file_atomic_nosync_at);

        return g_test_run();
}
