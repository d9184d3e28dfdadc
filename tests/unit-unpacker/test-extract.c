/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "digest.h"
#include "macro.h"
#include "extract.h"
#include "implied-dirs.h"
#include "sandbox.h"

/* ---- building layers ---------------------------------------------------------------------------- */

typedef struct Tar {
        struct archive *a;
        GByteArray *bytes;
} Tar;

static la_ssize_t tar_write_cb(struct archive *a, void *userdata, const void *buf, size_t n) {
        g_byte_array_append(userdata, buf, (guint) n);
        return (la_ssize_t) n;
}

static Tar *tar_new(void) {
        Tar *t = g_new0(Tar, 1);
        t->bytes = g_byte_array_new();
        t->a = archive_write_new();
        g_assert_cmpint(archive_write_set_format_pax(t->a), ==, ARCHIVE_OK);
        g_assert_cmpint(archive_write_set_bytes_in_last_block(t->a, 1), ==, ARCHIVE_OK);
        g_assert_cmpint(archive_write_open(t->a, t->bytes, NULL, tar_write_cb, NULL), ==, ARCHIVE_OK);
        return t;
}

static struct archive_entry *entry(const char *name, mode_t type, mode_t perm) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_copy_pathname(e, name);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, perm);
        archive_entry_set_mtime(e, 1000000000, 0);
        return e;
}

static void put(Tar *t, struct archive_entry *e, const void *data, size_t size) {
        archive_entry_set_size(e, (la_int64_t) size);
        g_assert_cmpint(archive_write_header(t->a, e), ==, ARCHIVE_OK);
        if (size > 0)
                g_assert_cmpint(archive_write_data(t->a, data, size), ==, (la_ssize_t) size);
        archive_entry_free(e);
}

static void add_dir(Tar *t, const char *name, mode_t perm) {
        put(t, entry(name, AE_IFDIR, perm), NULL, 0);
}
static void add_file(Tar *t, const char *name, const char *content) {
        put(t, entry(name, AE_IFREG, 0644), content, strlen(content));
}
static void add_symlink(Tar *t, const char *name, const char *target) {
        struct archive_entry *e = entry(name, AE_IFLNK, 0777);
        archive_entry_copy_symlink(e, target);
        put(t, e, NULL, 0);
}
static void add_hardlink(Tar *t, const char *name, const char *target) {
        struct archive_entry *e = entry(name, AE_IFREG, 0644);
        archive_entry_copy_hardlink(e, target);
        put(t, e, NULL, 0);
}

static GByteArray *tar_finish(Tar *t) {
        GByteArray *b = t->bytes;
        g_assert_cmpint(archive_write_close(t->a), ==, ARCHIVE_OK);
        archive_write_free(t->a);
        g_free(t);
        return b;
}

static GByteArray *compress(GByteArray *in, LayerCompression c) {
        GByteArray *out = g_byte_array_new();
        struct archive *a;
        struct archive_entry *e;

        if (c == LAYER_COMPRESSION_NONE) {
                g_byte_array_append(out, in->data, in->len);
                return out;
        }
        a = archive_write_new();
        g_assert_cmpint(archive_write_set_format_raw(a), ==, ARCHIVE_OK);
        g_assert_cmpint(c == LAYER_COMPRESSION_GZIP ? archive_write_add_filter_gzip(a)
                                                    : archive_write_add_filter_zstd(a),
                        ==, ARCHIVE_OK);
        g_assert_cmpint(archive_write_set_bytes_in_last_block(a, 1), ==, ARCHIVE_OK);
        g_assert_cmpint(archive_write_open(a, out, NULL, tar_write_cb, NULL), ==, ARCHIVE_OK);
        e = archive_entry_new();
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, in->len);
        g_assert_cmpint(archive_write_header(a, e), ==, ARCHIVE_OK);
        g_assert_cmpint(archive_write_data(a, in->data, in->len), ==, (la_ssize_t) in->len);
        archive_entry_free(e);
        g_assert_cmpint(archive_write_close(a), ==, ARCHIVE_OK);
        archive_write_free(a);
        return out;
}

/* ---- the oracle: a root dir R and a sentinel dir H next to it ---------------------------------------- */

typedef struct Fixture {
        char *base, *root, *sentinel, *sentinel_file;
        int root_fd;
        struct stat root_st, sentinel_st, sentinel_file_st;
} Fixture;

static Fixture *fixture_new(void) {
        Fixture *f = g_new0(Fixture, 1);
        f->base = g_strdup("/tmp/unpacker-test-XXXXXX");
        g_assert_nonnull(mkdtemp(f->base));
        f->root = g_build_filename(f->base, "root", NULL);
        f->sentinel = g_build_filename(f->base, "sentinel", NULL);
        f->sentinel_file = g_build_filename(f->sentinel, "file", NULL);
        g_assert_cmpint(mkdir(f->root, 0755), ==, 0);
        g_assert_cmpint(mkdir(f->sentinel, 0755), ==, 0);
        g_assert_true(g_file_set_contents(f->sentinel_file, "safe", -1, NULL));
        g_assert_cmpint(chmod(f->sentinel_file, 0644), ==, 0);
        f->root_fd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(f->root_fd, >=, 0);
        g_assert_cmpint(fstat(f->root_fd, &f->root_st), ==, 0);
        g_assert_cmpint(stat(f->sentinel, &f->sentinel_st), ==, 0);
        g_assert_cmpint(stat(f->sentinel_file, &f->sentinel_file_st), ==, 0);
        return f;
}

/* H unchanged: same single file, same content, mode, owner, times; R still the same directory. */
static void assert_sentinel(Fixture *f) {
        g_autoptr(GDir) d = g_dir_open(f->sentinel, 0, NULL);
        g_autofree char *content = NULL;
        struct stat st;
        const char *n;
        int count = 0;

        while ((n = g_dir_read_name(d))) {
                g_assert_cmpstr(n, ==, "file");
                count++;
        }
        g_assert_cmpint(count, ==, 1);
        g_assert_true(g_file_get_contents(f->sentinel_file, &content, NULL, NULL));
        g_assert_cmpstr(content, ==, "safe");
        g_assert_cmpint(lstat(f->sentinel_file, &st), ==, 0);
        g_assert_true(S_ISREG(st.st_mode));
        g_assert_cmpint(st.st_mode, ==, f->sentinel_file_st.st_mode);
        g_assert_cmpint(st.st_uid, ==, 0);
        g_assert_cmpint(st.st_nlink, ==, 1);
        g_assert_cmpint(st.st_mtim.tv_sec, ==, f->sentinel_file_st.st_mtim.tv_sec);
        g_assert_cmpint(lstat(f->sentinel, &st), ==, 0);
        g_assert_cmpint(st.st_mode, ==, f->sentinel_st.st_mode);
        g_assert_cmpint(st.st_mtim.tv_sec, ==, f->sentinel_st.st_mtim.tv_sec);
        g_assert_cmpint(st.st_mtim.tv_nsec, ==, f->sentinel_st.st_mtim.tv_nsec);
        g_assert_cmpint(lstat(f->root, &st), ==, 0);
        g_assert_true(S_ISDIR(st.st_mode));
        g_assert_cmpint(st.st_ino, ==, f->root_st.st_ino);
}

static void fixture_free(Fixture *f) {
        g_autofree char *cmd = g_strdup_printf("rm -rf --one-file-system '%s'", f->base);
        assert_sentinel(f);
        close(f->root_fd);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->base);
        g_free(f->root);
        g_free(f->sentinel);
        g_free(f->sentinel_file);
        g_free(f);
}

static char *rpath(Fixture *f, const char *p) {
        return g_build_filename(f->root, p, NULL);
}

static UnpackLimits default_limits = { 1ULL << 30, 100000 };

/* Extract with explicit digests (NULL: the right ones). */
static int extract_full(Fixture *f, GByteArray *tar, LayerCompression c, const UnpackLimits *limits,
                        const char *layer_digest, const char *diff_id, ExtractResult *res) {
        g_autoptr(GByteArray) blob = compress(tar, c);
        char dg[DIGEST_STRING_MAX], di[DIGEST_STRING_MAX];
        ExtractRequest req;
        int fd, r;

        g_assert_cmpint(digest_buffer(DIGEST_SHA256, blob->data, blob->len, dg), ==, 0);
        g_assert_cmpint(digest_buffer(DIGEST_SHA256, tar->data, tar->len, di), ==, 0);
        fd = memfd_create("layer", MFD_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, blob->data, blob->len), ==, (ssize_t) blob->len);
        req = (ExtractRequest){
                .layer_digest = layer_digest ?: dg,
                .diff_id = diff_id ?: di,
                .compression = c,
                .limits = limits ? *limits : default_limits,
        };
        r = layer_extract(fd, f->root_fd, &req, res);
        if (r < 0 && g_test_verbose())
                g_printerr("# extract: %s: %s\n", unpack_failure_to_string(res->failure), res->message);
        close(fd);
        return r;
}

static int extract(Fixture *f, GByteArray *tar, ExtractResult *res) {
        return extract_full(f, tar, LAYER_COMPRESSION_GZIP, NULL, NULL, NULL, res);
}

static void expect_ok(Fixture *f, GByteArray *tar) {
        ExtractResult res;
        int r = extract(f, tar, &res);
        if (r < 0)
                g_error("unexpected failure: %s", res.message);
}

static void expect_fail(Fixture *f, GByteArray *tar, UnpackFailure failure) {
        ExtractResult res;
        g_assert_cmpint(extract(f, tar, &res), <, 0);
        g_assert_cmpstr(unpack_failure_to_string(res.failure), ==, unpack_failure_to_string(failure));
        g_assert_cmpstr(res.message, !=, "");
}

static void assert_type(Fixture *f, const char *p, mode_t type) {
        g_autofree char *full = rpath(f, p);
        struct stat st;
        if (lstat(full, &st) < 0)
                g_error("%s: %m", p);
        g_assert_cmpint(st.st_mode & S_IFMT, ==, type);
}

static void assert_absent(Fixture *f, const char *p) {
        g_autofree char *full = rpath(f, p);
        struct stat st;
        g_assert_cmpint(lstat(full, &st), <, 0);
}

static void require_root(void) {
        if (geteuid() != 0)
                g_test_skip("needs root");
}
#define ROOT_OR_SKIP()                                                                                      \
        do {                                                                                                \
                require_root();                                                                             \
                if (g_test_failed() || geteuid() != 0)                                                      \
                        return;                                                                             \
        } while (0)

/* ---- correctness ------------------------------------------------------------------------------------ */

static void run_correctness(LayerCompression c) {
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        struct archive_entry *e;
        GByteArray *tar;
        ExtractResult res;
        struct stat st, st2;
        char buf[64];
        ssize_t n;
        static const unsigned char cap[20] = {
                0x00, 0x00, 0x00, 0x02, 0x00, 0x20
        }; /* v2, cap_net_bind_service */

        e = entry("etc", AE_IFDIR, 0750);
        archive_entry_set_uid(e, 12);
        archive_entry_set_gid(e, 34);
        archive_entry_set_mtime(e, 1234567890, 5);
        put(t, e, NULL, 0);
        e = entry("etc/owned", AE_IFREG, 0640);
        archive_entry_set_uid(e, 1000);
        archive_entry_set_gid(e, 1001);
        archive_entry_set_mtime(e, 1500000000, 123456789);
        put(t, e, "hello\n", 6);
        put(t, entry("usr/bin/suid", AE_IFREG, 04755), "x", 1); /* implicit parents */
        put(t, entry("tmp", AE_IFDIR, 01777), NULL, 0);
        e = entry("usr/bin/ping", AE_IFREG, 0755);
        archive_entry_xattr_add_entry(e, "security.capability", cap, sizeof(cap));
        archive_entry_xattr_add_entry(e, "user.note", "v", 1);
        archive_entry_xattr_add_entry(e, "trusted.overlay.opaque", "y", 1);
        archive_entry_xattr_add_entry(e, "user.overlay.redirect", "/x", 2);
        archive_entry_xattr_add_entry(e, "security.selinux", "system_u:object_r:shadow_t:s0", 29);
        put(t, e, "ping", 4);
        e = entry("etc/link", AE_IFLNK, 0777);
        archive_entry_copy_symlink(e, "../usr/bin/suid");
        archive_entry_set_uid(e, 7);
        archive_entry_set_gid(e, 8);
        put(t, e, NULL, 0);
        /* As GNU tar and Go's archive/tar write it: the link's header repeats the target's metadata (a
         * header that differs is applied to the inode, as containerd does: see test_hardlink_meta). */
        e = entry("etc/hard", AE_IFREG, 0640);
        archive_entry_copy_hardlink(e, "etc/owned");
        archive_entry_set_uid(e, 1000);
        archive_entry_set_gid(e, 1001);
        archive_entry_set_mtime(e, 1500000000, 123456789);
        put(t, e, NULL, 0);
        e = entry("dev/null", AE_IFCHR, 0666);
        archive_entry_set_rdevmajor(e, 1);
        archive_entry_set_rdevminor(e, 3);
        put(t, e, NULL, 0);
        e = entry("dev/sda", AE_IFBLK, 0660);
        archive_entry_set_rdevmajor(e, 8);
        archive_entry_set_rdevminor(e, 0);
        put(t, e, NULL, 0);
        put(t, entry("run/fifo", AE_IFIFO, 0600), NULL, 0);
        add_file(t, ".wh.etc/somefile", "not a whiteout");
        tar = tar_finish(t);

        g_assert_cmpint(extract_full(f, tar, c, NULL, NULL, NULL, &res), ==, 0);
        g_assert_cmpint(res.entries, ==, 11);
        g_assert_cmpint(res.uncompressed_size, ==, tar->len);

        g_autofree char *etc = rpath(f, "etc"), *owned = rpath(f, "etc/owned"),
                        *suid = rpath(f, "usr/bin/suid"), *usr = rpath(f, "usr"), *tmp = rpath(f, "tmp"),
                        *ping = rpath(f, "usr/bin/ping"), *link = rpath(f, "etc/link"),
                        *hard = rpath(f, "etc/hard"), *null = rpath(f, "dev/null"),
                        *sda = rpath(f, "dev/sda"), *fifo = rpath(f, "run/fifo");

        g_assert_cmpint(lstat(etc, &st), ==, 0);
        g_assert_cmpint(st.st_mode, ==, S_IFDIR | 0750);
        g_assert_cmpint(st.st_uid, ==, 12);
        g_assert_cmpint(st.st_gid, ==, 34);
        g_assert_cmpint(st.st_mtim.tv_sec, ==, 1234567890); /* set after its children were created */

        g_assert_cmpint(lstat(owned, &st), ==, 0);
        g_assert_cmpint(st.st_mode, ==, S_IFREG | 0640);
        g_assert_cmpint(st.st_uid, ==, 1000);
        g_assert_cmpint(st.st_gid, ==, 1001);
        g_assert_cmpint(st.st_mtim.tv_sec, ==, 1500000000);
        g_assert_cmpint(st.st_mtim.tv_nsec, ==, 123456789);
        g_assert_cmpint(st.st_nlink, ==, 2);
        g_assert_cmpint(lstat(hard, &st2), ==, 0);
        g_assert_cmpint(st2.st_ino, ==, st.st_ino);

        g_assert_cmpint(lstat(suid, &st), ==, 0);
        g_assert_cmpint(st.st_mode, ==, S_IFREG | 04755);
        g_assert_cmpint(lstat(usr, &st), ==, 0);
        g_assert_cmpint(st.st_mode, ==, S_IFDIR | 0755); /* implicit parent */
        g_assert_cmpint(st.st_uid, ==, 0);
        g_assert_cmpint(lstat(tmp, &st), ==, 0);
        g_assert_cmpint(st.st_mode, ==, S_IFDIR | 01777);

        n = getxattr(ping, "security.capability", buf, sizeof(buf));
        g_assert_cmpint(n, ==, sizeof(cap));
        g_assert_cmpmem(buf, n, cap, sizeof(cap));
        g_assert_cmpint(getxattr(ping, "user.note", buf, sizeof(buf)), ==, 1);
        g_assert_cmpint(getxattr(ping, "trusted.overlay.opaque", buf, sizeof(buf)), <, 0);
        g_assert_cmpint(getxattr(ping, "user.overlay.redirect", buf, sizeof(buf)), <, 0);
        n = getxattr(ping, "security.selinux", buf, sizeof(buf));
        g_assert_true(n < 0 || memmem(buf, (size_t) n, "shadow_t", 8) == NULL);

        g_assert_cmpint(lstat(link, &st), ==, 0);
        g_assert_true(S_ISLNK(st.st_mode));
        g_assert_cmpint(st.st_uid, ==, 7);
        g_assert_cmpint(st.st_gid, ==, 8);
        n = readlink(link, buf, sizeof(buf));
        g_assert_cmpint(n, ==, 15);
        g_assert_cmpmem(buf, n, "../usr/bin/suid", 15);

        g_assert_cmpint(lstat(null, &st), ==, 0);
        g_assert_true(S_ISCHR(st.st_mode));
        g_assert_cmpint(st.st_rdev, ==, makedev(1, 3));
        g_assert_cmpint(st.st_mode & 07777, ==, 0666);
        g_assert_cmpint(lstat(sda, &st), ==, 0);
        g_assert_true(S_ISBLK(st.st_mode));
        g_assert_cmpint(st.st_rdev, ==, makedev(8, 0));
        g_assert_cmpint(lstat(fifo, &st), ==, 0);
        g_assert_true(S_ISFIFO(st.st_mode));
        g_assert_cmpint(st.st_mode & 07777, ==, 0600);
        assert_type(f, ".wh.etc/somefile", S_IFREG);

        g_byte_array_unref(tar);
        fixture_free(f);
}

static void test_correctness_gzip(void) {
        ROOT_OR_SKIP();
        run_correctness(LAYER_COMPRESSION_GZIP);
}
static void test_correctness_zstd(void) {
        ROOT_OR_SKIP();
        run_correctness(LAYER_COMPRESSION_ZSTD);
}
static void test_correctness_none(void) {
        ROOT_OR_SKIP();
        run_correctness(LAYER_COMPRESSION_NONE);
}

/* ---- whiteouts (§1.5.3) ----------------------------------------------------------------------------- */

static void test_whiteouts(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        struct archive_entry *e;
        GByteArray *tar;
        struct stat st;
        char v[4];

        add_dir(t, "etc", 0755);
        add_file(t, "etc/gone", "replaced by the whiteout");
        e = entry("etc/.wh.gone", AE_IFREG, 0644);
        archive_entry_set_uid(e, 5);
        archive_entry_set_gid(e, 6);
        put(t, e, NULL, 0);
        put(t, entry("etc/.wh.missing", AE_IFREG, 0644), NULL, 0);
        add_dir(t, "opq", 0755);
        put(t, entry("opq/.wh..wh..opq", AE_IFREG, 0644), NULL, 0);
        put(t, entry(".wh..wh.plnk", AE_IFREG, 0644), NULL, 0); /* AUFS metadata: ignored */
        add_symlink(t, "localetc", "/etc");
        put(t, entry("localetc/.wh.file", AE_IFREG, 0644), NULL, 0); /* through a link: in-root */
        put(t, entry(".wh.localetc", AE_IFREG, 0644), NULL, 0);      /* removes the link only */
        tar = tar_finish(t);
        expect_ok(f, tar);

        g_autofree char *gone = rpath(f, "etc/gone"), *opq = rpath(f, "opq"), *le = rpath(f, "localetc");
        g_assert_cmpint(lstat(gone, &st), ==, 0);
        g_assert_true(S_ISCHR(st.st_mode));
        g_assert_cmpint(st.st_rdev, ==, makedev(0, 0));
        g_assert_cmpint(st.st_uid, ==, 5);
        g_assert_cmpint(st.st_gid, ==, 6);
        assert_type(f, "etc/missing", S_IFCHR);
        assert_absent(f, "etc/.wh.gone");
        assert_absent(f, "opq/.wh..wh..opq");
        assert_absent(f, ".wh..wh.plnk");
        g_assert_cmpint(getxattr(opq, "trusted.overlay.opaque", v, sizeof(v)), ==, 1);
        g_assert_cmpint(v[0], ==, 'y');
        g_assert_cmpint(lstat(le, &st), ==, 0);
        g_assert_true(S_ISCHR(st.st_mode));
        /* the whiteout through "localetc" landed inside R, at R/etc/file */
        assert_type(f, "etc/file", S_IFCHR);
        g_byte_array_unref(tar);
        fixture_free(f);

        /* A whiteout through a link to H: H's path does not exist in R → refused, H untouched. */
        f = fixture_new();
        t = tar_new();
        add_symlink(t, "out", f->sentinel);
        put(t, entry("out/.wh.file", AE_IFREG, 0644), NULL, 0);
        tar = tar_finish(t);
        expect_fail(f, tar, UNPACK_FAILURE_BAD_CONTENT);
        g_byte_array_unref(tar);
        fixture_free(f);
}

static void test_whiteouts_malformed(void) {
        ROOT_OR_SKIP();
        static const char *const names[] = {
                ".wh..", ".wh...", "etc/.wh..", "etc/.wh...", ".wh.", "./.wh.."
        };

        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                Fixture *f = fixture_new();
                Tar *t = tar_new();
                add_dir(t, "etc", 0755);
                put(t, entry(names[i], AE_IFREG, 0644), NULL, 0);
                GByteArray *tar = tar_finish(t);
                expect_fail(f, tar, UNPACK_FAILURE_BAD_CONTENT);
                g_byte_array_unref(tar);
                fixture_free(f);
        }
}

/* ---- breakouts (U1–U6, §1.5.1–5) ------------------------------------------------------------------ */

static void test_u1_symlink_dir(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        add_dir(t, "etc", 0755);
        add_symlink(t, "localetc", "/etc");
        add_file(t, "localetc/unbroken", "in R");
        add_symlink(t, "upetc", "../../../../../../etc");
        add_file(t, "upetc/unbroken2", "in R");
        GByteArray *tar = tar_finish(t);
        expect_ok(f, tar);
        assert_type(f, "etc/unbroken", S_IFREG);
        assert_type(f, "etc/unbroken2", S_IFREG);
        g_assert_cmpint(access("/etc/unbroken", F_OK), <, 0);
        g_byte_array_unref(tar);
        fixture_free(f);

        /* A link to H itself: resolved in R, where H's path does not exist → refused, H untouched. */
        f = fixture_new();
        t = tar_new();
        add_symlink(t, "out", f->sentinel);
        add_file(t, "out/file", "evil");
        tar = tar_finish(t);
        expect_fail(f, tar, UNPACK_FAILURE_BAD_CONTENT);
        g_byte_array_unref(tar);
        fixture_free(f);
}

static void test_u2_names(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        g_autofree char *abs = g_build_filename(f->sentinel, "file", NULL);
        Tar *t = tar_new();
        add_file(t, abs, "root-relative"); /* absolute name: lands under R */
        add_dir(t, "b", 0755);
        add_symlink(t, "a", "/b");
        add_symlink(t, "c", "/a");
        add_file(t, "c/x", "chain");
        GByteArray *tar = tar_finish(t);
        expect_ok(f, tar);
        g_autofree char *inner = g_build_filename(f->root, abs, NULL);
        struct stat st;
        g_assert_cmpint(lstat(inner, &st), ==, 0);
        assert_type(f, "b/x", S_IFREG);
        g_byte_array_unref(tar);
        fixture_free(f);

        static const char *const bad[] = { "../sentinel/file", "./../sentinel/file", "a/../../sentinel/file",
                                           "../../../../../../../../etc/passwd" };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                f = fixture_new();
                t = tar_new();
                add_file(t, bad[i], "evil");
                tar = tar_finish(t);
                expect_fail(f, tar, UNPACK_FAILURE_BAD_CONTENT);
                g_byte_array_unref(tar);
                fixture_free(f);
        }
}

static void test_u3_symlink_override(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        g_autofree char *evil = g_strdup_printf("foo%s/evil", f->sentinel);
        Tar *t = tar_new();
        add_dir(t, "foo", 0755);
        add_symlink(t, "foo", "/");
        add_file(t, evil, "evil");
        add_dir(t, "foo", 0755);
        add_file(t, "foo/after", "x");
        GByteArray *tar = tar_finish(t);
        expect_ok(f, tar);
        assert_type(f, "foo", S_IFDIR);
        assert_type(f, "foo/after", S_IFREG);
        g_autofree char *landed = g_build_filename(f->root, f->sentinel, "evil", NULL);
        g_assert_cmpint(access(landed, F_OK), ==, 0); /* in-root */
        g_byte_array_unref(tar);
        fixture_free(f);
}

static void test_u4_chmod_through_symlink(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        add_symlink(t, "x", f->sentinel_file);
        add_hardlink(t, "y", "x"); /* a hardlink to the symlink itself */
        put(t, entry("x", AE_IFREG, 0777), "replaced", 8);
        add_symlink(t, "d", f->sentinel);
        put(t, entry("d", AE_IFDIR, 0777), NULL, 0);
        GByteArray *tar = tar_finish(t);
        expect_ok(f, tar);
        assert_type(f, "x", S_IFREG);
        assert_type(f, "y", S_IFLNK);
        assert_type(f, "d", S_IFDIR);
        g_byte_array_unref(tar);
        fixture_free(f); /* H's modes checked here */
}

static void test_u5_root_names(void) {
        ROOT_OR_SKIP();
        static const char *const names[] = { ".", "./", "/", "//", ".//." };
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
                for (int kind = 0; kind < 3; kind++) {
                        Fixture *f = fixture_new();
                        Tar *t = tar_new();
                        add_file(t, "target", "x");
                        if (kind == 0)
                                add_symlink(t, names[i], f->sentinel);
                        else if (kind == 1)
                                add_file(t, names[i], "x");
                        else
                                add_hardlink(t, names[i], "target");
                        GByteArray *tar = tar_finish(t);
                        /* libarchive's writer may normalise some of these names away; what reaches us must
                         * be refused or be harmless, and R must stay R. */
                        ExtractResult res;
                        if (extract(f, tar, &res) >= 0)
                                assert_type(f, "target", S_IFREG);
                        g_byte_array_unref(tar);
                        fixture_free(f);
                }

        /* "./" as a directory is what "tar -C rootfs ." writes first: accepted, R unchanged. */
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        add_dir(t, "./", 0700);
        add_symlink(t, ".", f->sentinel);
        GByteArray *tar = tar_finish(t);
        expect_fail(f, tar, UNPACK_FAILURE_BAD_CONTENT);
        g_byte_array_unref(tar);
        fixture_free(f);
}

static void test_u6_hardlinks(void) {
        ROOT_OR_SKIP();
        struct {
                const char *target;
                bool symlink_dir;
        } bad[] = {
                { "/etc/shadow", false },            /* absolute: in R there is no etc/shadow */
                { "../../../../etc/shadow", false }, /* ".." refused */
                { "dirlink/file", true },            /* through a symlinked dir to H */
                { "later", false },                  /* created after the link */
                { "adir", false },                   /* a directory */
        };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                Fixture *f = fixture_new();
                Tar *t = tar_new();
                add_dir(t, "adir", 0755);
                if (bad[i].symlink_dir)
                        add_symlink(t, "dirlink", f->sentinel);
                struct archive_entry *e = entry("l", AE_IFREG, 0644);
                archive_entry_copy_hardlink(e, bad[i].target);
                put(t, e, NULL, 0);
                add_file(t, "later", "x");
                GByteArray *tar = tar_finish(t);
                expect_fail(f, tar, UNPACK_FAILURE_BAD_CONTENT);
                g_byte_array_unref(tar);
                fixture_free(f);
        }

        /* Hardlink to a symlink pointing outside: links the symlink; H keeps one link. A hardlink entry
         * with a payload never writes through. */
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        add_symlink(t, "abs", f->sentinel_file);
        add_hardlink(t, "habs", "abs");
        add_file(t, "plain", "original");
        struct archive_entry *e = entry("hplain", AE_IFREG, 0777);
        archive_entry_copy_hardlink(e, "plain");
        archive_entry_set_size(e, 5);
        g_assert_cmpint(archive_write_header(t->a, e), ==, ARCHIVE_OK);
        archive_write_data(t->a, "EVIL!", 5);
        archive_entry_free(e);
        GByteArray *tar = tar_finish(t);
        expect_ok(f, tar);
        assert_type(f, "habs", S_IFLNK);
        g_autofree char *plain = rpath(f, "plain"), *content = NULL;
        g_assert_true(g_file_get_contents(plain, &content, NULL, NULL));
        g_assert_cmpstr(content, ==, "original");
        g_byte_array_unref(tar);
        fixture_free(f);

        /* Deferred directory times must not follow a symlink that replaced the directory (CVE-2021-31566),
         * nor ACL xattrs on a symlink reach its target (CVE-2021-23177). */
        f = fixture_new();
        t = tar_new();
        e = entry("d", AE_IFDIR, 0777);
        archive_entry_set_mtime(e, 1, 0);
        put(t, e, NULL, 0);
        add_symlink(t, "d", f->sentinel);
        e = entry("acl", AE_IFLNK, 0777);
        archive_entry_copy_symlink(e, f->sentinel_file);
        archive_entry_xattr_add_entry(e, "system.posix_acl_access", "\x02\0\0\0", 4);
        put(t, e, NULL, 0);
        tar = tar_finish(t);
        expect_ok(f, tar);
        g_byte_array_unref(tar);
        fixture_free(f);
}

/* containerd applies a hardlink header's owner and mode to the inode (lchown, chmod unless a symlink);
 * data never goes through a link. */
static void test_hardlink_meta(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        struct archive_entry *e;
        struct stat st;

        e = entry("a", AE_IFREG, 0711);
        archive_entry_set_uid(e, 3);
        archive_entry_set_gid(e, 4);
        put(t, e, "data", 4);
        e = entry("b", AE_IFREG, 04750);
        archive_entry_copy_hardlink(e, "a");
        archive_entry_set_uid(e, 5);
        archive_entry_set_gid(e, 6);
        put(t, e, NULL, 0);
        add_symlink(t, "s", "a");
        e = entry("s2", AE_IFLNK, 0600);
        archive_entry_copy_hardlink(e, "s");
        archive_entry_set_uid(e, 9);
        put(t, e, NULL, 0);
        GByteArray *tar = tar_finish(t);
        expect_ok(f, tar);
        g_autofree char *a = rpath(f, "a"), *s2 = rpath(f, "s2"), *s1 = rpath(f, "s");
        g_assert_cmpint(lstat(a, &st), ==, 0);
        g_assert_cmpint(st.st_mode, ==, S_IFREG | 04750);
        g_assert_cmpint(st.st_uid, ==, 5);
        g_assert_cmpint(st.st_gid, ==, 6);
        g_assert_cmpint(st.st_nlink, ==, 2);
        g_assert_cmpint(lstat(s2, &st), ==, 0);
        g_assert_true(S_ISLNK(st.st_mode));
        g_assert_cmpint(st.st_uid, ==, 9);
        g_assert_cmpint(lstat(s1, &st), ==, 0);
        g_assert_cmpint(st.st_uid, ==, 9);
        g_byte_array_unref(tar);
        fixture_free(f);
}

static void mkdir_meta(const char *base, const char *rel, mode_t mode, uid_t uid, gid_t gid) {
        g_autofree char *p = g_build_filename(base, rel, NULL);
        g_assert_cmpint(mkdir(p, mode), ==, 0);
        g_assert_cmpint(chown(p, uid, gid), ==, 0);
        g_assert_cmpint(chmod(p, mode), ==, 0);
}

/* Implied parents: the extractor reports them (not the ones a later entry names), and implied_dirs_apply()
 * gives each the metadata of the first lower layer that has it, resolving that layer's own symlinks
 * inside it, as containerd's mkparent does. */
static void test_implied_dirs(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        g_autofree char *l1 = g_build_filename(f->base, "lower1", NULL),
                        *l2 = g_build_filename(f->base, "lower2", NULL);
        int lowers[2], list;
        Tar *t = tar_new();
        ExtractResult res;
        struct stat st;
        char buf[64];

        /* lower2 (bottom): usr/lib 0705 12:13 with an xattr, lib -> usr/lib, a 0700 1:1, x 0750.
         * lower1 (top): a replaced by a file, x 0711 2:2, abs -> /usr/lib. */
        g_assert_cmpint(mkdir(l1, 0755), ==, 0);
        g_assert_cmpint(mkdir(l2, 0755), ==, 0);
        mkdir_meta(l2, "usr", 0751, 11, 0);
        mkdir_meta(l2, "usr/lib", 0705, 12, 13);
        g_autofree char *ul = g_build_filename(l2, "usr/lib", NULL);
        g_assert_cmpint(setxattr(ul, "user.x", "lib", 3, 0), ==, 0);
        g_autofree char *lib = g_build_filename(l2, "lib", NULL);
        g_assert_cmpint(symlink("usr/lib", lib), ==, 0);
        mkdir_meta(l2, "a", 0700, 1, 1);
        mkdir_meta(l2, "x", 0750, 0, 0);
        mkdir_meta(l1, "x", 0711, 2, 2);
        g_autofree char *afile = g_build_filename(l1, "a", NULL), *abs = g_build_filename(l1, "abs", NULL);
        g_assert_true(g_file_set_contents(afile, "file", -1, NULL));
        g_assert_cmpint(symlink("/usr/lib", abs), ==, 0);

        add_file(t, "lib/f", "1"); /* through lower2's symlink: usr/lib's metadata */
        add_file(t, "abs/f",
                 "2"); /* lower1's absolute symlink resolves in lower1: not there; lower2 neither */
        add_file(t, "a/f", "3"); /* lower1 has a file there: defaults, even though lower2 has a dir */
        add_file(t, "x/f", "4"); /* the top-most lower wins */
        add_file(t, "usr/lib/deep/f", "5");
        add_dir(t, "usr", 0700); /* named by the layer after being implied: its own entry wins */
        GByteArray *tar = tar_finish(t);

        list = memfd_create("implied", MFD_CLOEXEC);
        g_assert_cmpint(list, >, 2);
        g_autoptr(GByteArray) blob = compress(tar, LAYER_COMPRESSION_NONE);
        char dg[DIGEST_STRING_MAX];
        g_assert_cmpint(digest_buffer(DIGEST_SHA256, blob->data, blob->len, dg), ==, 0);
        int fd = memfd_create("layer", MFD_CLOEXEC);
        g_assert_cmpint(write(fd, blob->data, blob->len), ==, (ssize_t) blob->len);
        ExtractRequest req = { .layer_digest = dg,
                               .diff_id = dg,
                               .compression = LAYER_COMPRESSION_NONE,
                               .limits = default_limits,
                               .implied_fd = list };
        g_assert_cmpint(layer_extract(fd, f->root_fd, &req, &res), ==, 0);
        close(fd);

        lowers[0] = open(l1, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        lowers[1] = open(l2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(implied_dirs_apply(list, 1 << 20, f->root_fd, lowers, 2, NULL), ==, 0);

#define CHECK(path, m, u, g)                                                                                \
        do {                                                                                                \
                g_autofree char *_p = rpath(f, path);                                                       \
                g_assert_cmpint(lstat(_p, &st), ==, 0);                                                     \
                g_assert_cmpint(st.st_mode, ==, S_IFDIR | (m));                                             \
                g_assert_cmpint(st.st_uid, ==, (u));                                                        \
                g_assert_cmpint(st.st_gid, ==, (g));                                                        \
        } while (0)
        CHECK("lib", 0705, 12, 13);
        CHECK("abs", 0755, 0, 0);
        CHECK("a", 0755, 0, 0);
        CHECK("x", 0711, 2, 2);
        CHECK("usr", 0700, 0, 0);
        CHECK("usr/lib", 0705, 12, 13);
        CHECK("usr/lib/deep", 0755, 0, 0);
#undef CHECK
        g_autofree char *rl = rpath(f, "lib");
        g_assert_cmpint(getxattr(rl, "user.x", buf, sizeof(buf)), ==, 3);

        close(lowers[0]);
        close(lowers[1]);
        close(list);
        g_byte_array_unref(tar);
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s' '%s'", l1, l2);
        g_assert_cmpint(system(cmd), ==, 0);
        fixture_free(f);
}

static void test_type_changes(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        add_file(t, "p", "file");
        add_dir(t, "p", 0755);
        add_file(t, "p/child", "x");
        add_symlink(t, "p", "/elsewhere");
        add_dir(t, "p", 0700);
        add_file(t, "q", "x");
        add_hardlink(t, "q2", "q");
        add_dir(t, "q", 0755);            /* DirectoryOverrideSymlinkAndHardlink */
        add_symlink(t, "sub/", "target"); /* trailing slash: the link "sub" */
        GByteArray *tar = tar_finish(t);
        expect_ok(f, tar);
        assert_type(f, "p", S_IFDIR);
        assert_absent(f, "p/child");
        assert_type(f, "q", S_IFDIR);
        assert_type(f, "q2", S_IFREG);
        assert_type(f, "sub", S_IFLNK);
        g_byte_array_unref(tar);
        fixture_free(f);

        static const char *const bad[] = { "..", "sub/..", "x/../y" };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                f = fixture_new();
                t = tar_new();
                add_symlink(t, bad[i], f->sentinel);
                tar = tar_finish(t);
                expect_fail(f, tar, UNPACK_FAILURE_BAD_CONTENT);
                g_byte_array_unref(tar);
                fixture_free(f);
        }
}

/* ---- limits (U8, §1.5.8) ---------------------------------------------------------------------------- */

static void test_u8_limits(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        g_autofree char *zeros = g_malloc0(8 << 20);
        for (int i = 0; i < 16; i++) {
                char name[32];
                snprintf(name, sizeof(name), "bomb%d", i);
                put(t, entry(name, AE_IFREG, 0644), zeros, 512 << 10);
        }
        GByteArray *tar = tar_finish(t);
        UnpackLimits small = { 1 << 20, 1000 };
        ExtractResult res;
        g_autoptr(GByteArray) gz = compress(tar, LAYER_COMPRESSION_GZIP);
        g_assert_cmpint(gz->len, <, 64 * 1024); /* a small blob */
        g_assert_cmpint(extract_full(f, tar, LAYER_COMPRESSION_GZIP, &small, NULL, NULL, &res), ==, -EFBIG);
        g_assert_cmpint(res.failure, ==, UNPACK_FAILURE_LIMIT);
        g_assert_nonnull(strstr(res.message, "exceeds the limit of 1048576 uncompressed bytes"));
        g_byte_array_unref(tar);
        fixture_free(f);

        /* One entry declaring more than the limit (also what a sparse 1 TB entry looks like). */
        f = fixture_new();
        t = tar_new();
        put(t, entry("big", AE_IFREG, 0644), zeros, 2 << 20);
        tar = tar_finish(t);
        g_assert_cmpint(extract_full(f, tar, LAYER_COMPRESSION_GZIP, &small, NULL, NULL, &res), ==, -EFBIG);
        g_assert_cmpint(res.failure, ==, UNPACK_FAILURE_LIMIT);
        g_byte_array_unref(tar);
        fixture_free(f);

        f = fixture_new();
        t = tar_new();
        for (int i = 0; i < 50; i++) {
                char name[32];
                snprintf(name, sizeof(name), "f%d", i);
                add_file(t, name, "");
        }
        tar = tar_finish(t);
        UnpackLimits few = { 1 << 30, 10 };
        g_assert_cmpint(extract_full(f, tar, LAYER_COMPRESSION_ZSTD, &few, NULL, NULL, &res), ==, -E2BIG);
        g_assert_cmpint(res.failure, ==, UNPACK_FAILURE_LIMIT);
        g_assert_nonnull(strstr(res.message, "exceeds the limit of 10 entries"));
        g_assert_nonnull(strstr(res.message, "layer 'sha256:") ?: strstr(res.message, "Layer 'sha256:"));
        g_byte_array_unref(tar);
        fixture_free(f);

        /* 64 kB name, depth > 128, uid 2^32-1 */
        GString *longname = g_string_new(NULL), *deep = g_string_new(NULL);
        for (int i = 0; i < 65536 / 8; i++)
                g_string_append(longname, "aaaaaaa/");
        g_string_append(longname, "f");
        for (int i = 0; i < 200; i++)
                g_string_append(deep, "d/");
        g_string_append(deep, "f");
        const char *limit_names[] = { longname->str, deep->str };
        for (size_t i = 0; i < G_N_ELEMENTS(limit_names); i++) {
                f = fixture_new();
                t = tar_new();
                add_file(t, limit_names[i], "x");
                tar = tar_finish(t);
                expect_fail(f, tar, UNPACK_FAILURE_LIMIT);
                g_byte_array_unref(tar);
                fixture_free(f);
        }
        g_string_free(longname, true);
        g_string_free(deep, true);

        f = fixture_new();
        t = tar_new();
        struct archive_entry *e = entry("big-uid", AE_IFREG, 0644);
        archive_entry_set_uid(e, 4294967295LL);
        put(t, e, NULL, 0);
        tar = tar_finish(t);
        expect_fail(f, tar, UNPACK_FAILURE_BAD_CONTENT);
        g_byte_array_unref(tar);
        fixture_free(f);
}

/* ---- integrity (§1.5.9) and formats (U9) --------------------------------------------------------- */

static void test_digests(void) {
        ROOT_OR_SKIP();
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        add_file(t, "a", "content");
        GByteArray *tar = tar_finish(t);
        ExtractResult res;
        const char *wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

        g_assert_cmpint(extract_full(f, tar, LAYER_COMPRESSION_GZIP, NULL, wrong, NULL, &res), ==, -EBADMSG);
        g_assert_cmpint(res.failure, ==, UNPACK_FAILURE_DIGEST);
        g_assert_nonnull(strstr(res.message, "has digest"));
        g_assert_cmpint(extract_full(f, tar, LAYER_COMPRESSION_ZSTD, NULL, NULL, wrong, &res), ==, -EBADMSG);
        g_assert_cmpint(res.failure, ==, UNPACK_FAILURE_DIGEST);
        g_assert_nonnull(strstr(res.message, "expected diff_id"));

        /* Trailing bytes after the end-of-archive blocks count in the diff_id. */
        char good_diff[DIGEST_STRING_MAX];
        g_assert_cmpint(digest_buffer(DIGEST_SHA256, tar->data, tar->len, good_diff), ==, 0);
        static const char junk[2048] = "trailing junk";
        g_byte_array_append(tar, (const guint8 *) junk, sizeof(junk));
        g_assert_cmpint(extract_full(f, tar, LAYER_COMPRESSION_GZIP, NULL, NULL, good_diff, &res), ==,
                        -EBADMSG);
        g_assert_cmpint(res.failure, ==, UNPACK_FAILURE_DIGEST);
        g_assert_cmpint(extract_full(f, tar, LAYER_COMPRESSION_GZIP, NULL, NULL, NULL, &res), ==, 0);
        g_assert_cmpint(res.uncompressed_size, ==, tar->len);
        g_byte_array_unref(tar);
        fixture_free(f);
}

static void test_u9_formats(void) {
        ROOT_OR_SKIP();
        static const char *const formats[] = { "zip", "cpio", "7zip", "iso9660" };
        for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
                Fixture *f = fixture_new();
                GByteArray *bytes = g_byte_array_new();
                struct archive *a = archive_write_new();
                g_assert_cmpint(archive_write_set_format_by_name(a, formats[i]), ==, ARCHIVE_OK);
                g_assert_cmpint(archive_write_open(a, bytes, NULL, tar_write_cb, NULL), ==, ARCHIVE_OK);
                struct archive_entry *e = entry("file", AE_IFREG, 0644);
                archive_entry_set_size(e, 1);
                g_assert_cmpint(archive_write_header(a, e), ==, ARCHIVE_OK);
                archive_write_data(a, "x", 1);
                archive_entry_free(e);
                archive_write_close(a);
                archive_write_free(a);
                for (LayerCompression c = 0; c < _LAYER_COMPRESSION_MAX; c++) {
                        ExtractResult res;
                        int k = extract_full(f, bytes, c, NULL, NULL, NULL, &res);
                        if (k >= 0 && g_test_verbose())
                                g_printerr("# %s accepted: %" G_GUINT64_FORMAT " entries\n", formats[i],
                                           res.entries);
                        /* An ISO image starts with 32 KiB of zeros, which tar reads as its end blocks: an
                         * empty layer, the ISO itself is never parsed (as with GNU tar and containerd). */
                        if (k >= 0 && streq(formats[i], "iso9660")) {
                                g_assert_cmpint(res.entries, ==, 0);
                                continue;
                        }
                        g_assert_cmpint(k, <, 0);
                        g_assert_cmpint(res.failure, ==, UNPACK_FAILURE_BAD_CONTENT);
                }
                assert_absent(f, "file");
                g_byte_array_unref(bytes);
                fixture_free(f);
        }

        /* gzip data declared as zstd, and garbage declared as gzip */
        Fixture *f = fixture_new();
        Tar *t = tar_new();
        add_file(t, "a", "x");
        GByteArray *tar = tar_finish(t);
        g_autoptr(GByteArray) gz = compress(tar, LAYER_COMPRESSION_GZIP);
        ExtractResult res;
        g_assert_cmpint(extract_full(f, gz, LAYER_COMPRESSION_ZSTD, NULL, NULL, NULL, &res), <, 0);
        g_assert_cmpint(res.failure, ==, UNPACK_FAILURE_BAD_CONTENT);
        g_assert_cmpint(extract_full(f, gz, LAYER_COMPRESSION_GZIP, NULL, NULL, NULL, &res), <,
                        0); /* tar.gz.gz */
        g_assert_cmpint(res.failure, ==, UNPACK_FAILURE_BAD_CONTENT);
        g_byte_array_unref(tar);
        fixture_free(f);
}

/* ---- the sandbox (U7) ------------------------------------------------------------------------------- */

typedef enum Attempt {
        ATTEMPT_EXEC,
        ATTEMPT_SOCKET,
        ATTEMPT_PTRACE,
        ATTEMPT_OPEN_HOST,
        ATTEMPT_MOUNT,
        ATTEMPT_F5_FCNTL_SETOWN, /* issue 12 f5: fcntl() is filtered by command */
        ATTEMPT_F5_FCNTL_SETSIG,
        ATTEMPT_NONE
} Attempt;

static void test_u7_sandbox(void) {
        ROOT_OR_SKIP();
        for (Attempt at = 0; at <= ATTEMPT_NONE; at++) {
                Fixture *f = fixture_new();
                int status;
                pid_t pid = fork();
                g_assert_cmpint(pid, >=, 0);
                if (pid == 0) {
                        int root = -1, fd;
                        if (sandbox_enter(f->root, dup(f->root_fd), NULL, 0, &root, NULL, 0) < 0)
                                _exit(90);
                        switch (at) {
                        case ATTEMPT_EXEC:
                                execl("/bin/sh", "sh", "-c", "true", NULL);
                                _exit(91);
                        case ATTEMPT_SOCKET:
                                (void) socket(AF_INET, SOCK_STREAM, 0);
                                _exit(92);
                        case ATTEMPT_PTRACE:
                                (void) syscall(SYS_ptrace, 0, 0, 0, 0);
                                _exit(93);
                        case ATTEMPT_MOUNT:
                                (void) syscall(SYS_umount2, "/", 0);
                                _exit(94);
                        case ATTEMPT_F5_FCNTL_SETOWN:
                                (void) fcntl(root, F_SETOWN, 1);
                                _exit(98);
                        case ATTEMPT_F5_FCNTL_SETSIG:
                                (void) fcntl(root, F_SETSIG, SIGKILL);
                                _exit(98);
                        case ATTEMPT_OPEN_HOST:
                                /* the host's files do not exist in here; H is unreachable even via ".." */
                                fd = open(f->sentinel_file, O_RDONLY);
                                if (fd >= 0)
                                        _exit(95);
                                fd = openat(root, "../../../..", O_RDONLY | O_DIRECTORY);
                                if (fd >= 0) {
                                        struct stat a, b;
                                        if (fstat(fd, &a) < 0 || fstat(root, &b) < 0 || a.st_ino != b.st_ino)
                                                _exit(96);
                                }
                                _exit(0);
                        case ATTEMPT_NONE:
                                /* ordinary extraction work is allowed */
                                fd = openat(root, "ok", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                                if (fd < 0 || write(fd, "x", 1) != 1 || fchown(fd, 1, 1) < 0 ||
                                    fcntl(fd, F_GETFL) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
                                    mknodat(root, "wh", S_IFCHR, 0) < 0 ||
                                    fsetxattr(root, "trusted.overlay.opaque", "y", 1, 0) < 0)
                                        _exit(97);
                                _exit(0);
                        }
                        _exit(99);
                }
                g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
                if (at == ATTEMPT_OPEN_HOST || at == ATTEMPT_NONE) {
                        g_assert_true(WIFEXITED(status));
                        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
                } else {
                        g_assert_true(WIFSIGNALED(status));
                        g_assert_cmpint(WTERMSIG(status), ==, SIGSYS);
                }
                if (at == ATTEMPT_NONE)
                        assert_type(f, "ok", S_IFREG);
                fixture_free(f);
        }
}

/* Under a service manager whose own filter forbids seccomp() (systemd's SystemCallFilter= without it),
 * the sandbox must say so, not report libseccomp's misleading ENOMEM. */
static void test_u7_sandbox_refused_seccomp(void) {
        char msg[512] = "";
        int pipefd[2], status;
        pid_t pid;

        ROOT_OR_SKIP();
        g_assert_cmpint(pipe(pipefd), ==, 0);
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                char err[400] = "";
                scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
                /* What the unit's filter does: seccomp() answered with EPERM from now on. */
                if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(seccomp), 0) < 0 ||
                    seccomp_load(ctx) < 0)
                        _exit(90);
                if (sandbox_restrict(err, sizeof(err)) != -EPERM)
                        _exit(91);
                if (write(pipefd[1], err, strlen(err)) < 0)
                        _exit(92);
                _exit(0);
        }
        close(pipefd[1]);
        g_assert_cmpint(read(pipefd[0], msg, sizeof(msg) - 1), >, 0);
        close(pipefd[0]);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_assert_nonnull(strstr(msg, "seccomp() system call is refused"));
        g_assert_nonnull(strstr(msg, strerror(EPERM)));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/unpacker/correctness/gzip", test_correctness_gzip);
        g_test_add_func("/unpacker/correctness/zstd", test_correctness_zstd);
        g_test_add_func("/unpacker/correctness/none", test_correctness_none);
        g_test_add_func("/unpacker/whiteouts", test_whiteouts);
        g_test_add_func("/unpacker/whiteouts-malformed", test_whiteouts_malformed);
        g_test_add_func("/unpacker/u1-symlink-dir", test_u1_symlink_dir);
        g_test_add_func("/unpacker/u2-names", test_u2_names);
        g_test_add_func("/unpacker/u3-symlink-override", test_u3_symlink_override);
        g_test_add_func("/unpacker/u4-chmod-through-symlink", test_u4_chmod_through_symlink);
        g_test_add_func("/unpacker/u5-root-names", test_u5_root_names);
        g_test_add_func("/unpacker/u6-hardlinks", test_u6_hardlinks);
        g_test_add_func("/unpacker/type-changes", test_type_changes);
        g_test_add_func("/unpacker/hardlink-meta", test_hardlink_meta);
        g_test_add_func("/unpacker/implied-dirs", test_implied_dirs);
        g_test_add_func("/unpacker/u8-limits", test_u8_limits);
        g_test_add_func("/unpacker/digests", test_digests);
        g_test_add_func("/unpacker/u9-formats", test_u9_formats);
        g_test_add_func("/unpacker/u7-sandbox", test_u7_sandbox);
        g_test_add_func("/unpacker/u7-sandbox-refused-seccomp", test_u7_sandbox_refused_seccomp);
        return g_test_run();
}
