/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <archive.h>
#include <glib.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "berth-limits.h"
#include "extract.h"
#include "fs-at.h"
#include "fs-util.h"
#include "layer-stream.h"
#include "log.h"
#include "whiteout.h"

/* Modelled on systemd's src/shared/tar-util.c tar_x(): libarchive only reads; we write, fd-relative. */

typedef struct DirTimes {
        char *path; /* normalised, in-root */
        dev_t dev;
        ino_t ino;
        struct timespec ts[2];
        unsigned depth;
        size_t seq;
} DirTimes;

typedef struct Extractor {
        int root_fd;
        const ExtractRequest *req;
        ExtractResult *result;
        LayerStream stream;
        DirTimes *dirs;
        size_t n_dirs, n_dirs_allocated;
        GPtrArray *implied;   /* char*: directories created only as parents, in creation order */
        GHashTable *explicit; /* char* → NULL: directories the layer has entries for */
} Extractor;

typedef struct EntryPath {
        char *path;       /* "a/b/c" without ".", "" components; "" for the root */
        char *parent;     /* "a/b"; "" when the parent is the root */
        const char *name; /* last component, points into path */
        unsigned depth;
} EntryPath;

static void entry_path_done(EntryPath *p) {
        free(p->path);
        free(p->parent);
        *p = (EntryPath){};
}

const char *unpack_failure_to_string(UnpackFailure f) {
        static const char *const table[_UNPACK_FAILURE_MAX] = {
                [UNPACK_OK] = "ok",
                [UNPACK_FAILURE_IO] = "io",
                [UNPACK_FAILURE_BAD_CONTENT] = "bad-content",
                [UNPACK_FAILURE_LIMIT] = "limit",
                [UNPACK_FAILURE_DIGEST] = "digest",
        };
        return (unsigned) f < _UNPACK_FAILURE_MAX ? table[f] : "unknown";
}

/* Records the first failure (later ones are consequences) and returns r. */
_printf_(4, 5) static int fail(Extractor *x, UnpackFailure f, int r, const char *format, ...) {
        va_list ap;

        if (x->result->failure != UNPACK_OK)
                return r;
        x->result->failure = f;
        va_start(ap, format);
        (void) vsnprintf(x->result->message, sizeof(x->result->message), format, ap);
        va_end(ap);
        return r;
}

/* The stream remembers why a read failed; turn that into the right failure class. */
static int fail_stream(Extractor *x, struct archive *a, const char *what) {
        LayerStream *s = &x->stream;

        if (s->limit_hit)
                return fail(x, UNPACK_FAILURE_LIMIT, -EFBIG,
                            "Layer '%s' exceeds the limit of %" PRIu64 " uncompressed bytes",
                            x->req->layer_digest, x->req->limits.max_uncompressed_bytes);
        if (s->io_error < 0) {
                errno = -s->io_error;
                return fail(x, UNPACK_FAILURE_IO, s->io_error, "Failed to read layer '%s': %m",
                            x->req->layer_digest);
        }
        if (s->outer_error)
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG, "Layer '%s' does not decompress: %s",
                            x->req->layer_digest, s->outer_error);
        return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG, "Layer '%s' is not a valid tar stream (%s): %s",
                    x->req->layer_digest, what, (a ? archive_error_string(a) : NULL) ?: "unknown error");
}

/* Normalises an entry name. SECURITY: ".." components are refused (never resolved), as are empty names;
 * leading "/" and "." components are dropped, so absolute names are root-relative (never host paths).
 * Length and depth are bounded before anything is opened. */
static int entry_path_parse(Extractor *x, const char *raw, const char *what, EntryPath *ret) {
        _cleanup_free_ char *out = NULL;
        size_t len, n = 0;
        unsigned depth = 0;
        const char *p;

        if (isempty(raw))
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                            "Layer '%s' has an entry with an empty %s", x->req->layer_digest, what);
        len = strlen(raw);
        if (len > PATH_LENGTH_MAX)
                return fail(x, UNPACK_FAILURE_LIMIT, -ENAMETOOLONG,
                            "Layer '%s' has a %s longer than the limit of %u bytes", x->req->layer_digest,
                            what, PATH_LENGTH_MAX);

        out = malloc(len + 1);
        if (!out)
                return -ENOMEM;

        for (p = raw; *p;) {
                size_t k = strcspn(p, "/");

                if (k == 0 || (k == 1 && p[0] == '.')) {
                        /* "", "." */
                } else if (k == 2 && p[0] == '.' && p[1] == '.') {
                        return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                                    "Layer '%s' has a %s with a '..' component: '%.256s'",
                                    x->req->layer_digest, what, raw);
                } else {
                        if (k > LAYER_NAME_LENGTH_MAX)
                                return fail(x, UNPACK_FAILURE_LIMIT, -ENAMETOOLONG,
                                            "Layer '%s' has a %s component longer than %u bytes",
                                            x->req->layer_digest, what, LAYER_NAME_LENGTH_MAX);
                        if (++depth > LAYER_PATH_DEPTH_MAX)
                                return fail(x, UNPACK_FAILURE_LIMIT, -E2BIG,
                                            "Layer '%s' has a %s deeper than the limit of %u components",
                                            x->req->layer_digest, what, LAYER_PATH_DEPTH_MAX);
                        if (n > 0)
                                out[n++] = '/';
                        memcpy(out + n, p, k);
                        n += k;
                }
                p += k;
                if (*p == '/')
                        p++;
        }
        out[n] = '\0';

        const char *slash = strrchr(out, '/');
        *ret = (EntryPath){
                .parent = slash ? strndup(out, (size_t) (slash - out)) : strdup(""),
                .name = slash ? slash + 1 : out,
                .depth = depth,
        };
        if (!ret->parent)
                return -ENOMEM;
        ret->path = TAKE_PTR(out);
        return 0;
}

static int parent_error(Extractor *x, const EntryPath *p, int r) {
        if (r == -ENOTDIR || r == -ELOOP || r == -ENOENT || r == -EXDEV)
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                            "Layer '%s': the parent of '%.256s' is not a directory", x->req->layer_digest,
                            p->path);
        return fail(x, UNPACK_FAILURE_IO, r, "Failed to open the parent of '%.256s': %s", p->path,
                    strerror(-r));
}

/* Opens the entry's parent directory (O_PATH), in-root, creating missing components 0755 root:root as
 * containerd does for the upper dir. Each component is created relative to the fd of the previous one,
 * which was itself resolved in-root: nothing can be created outside root_fd. */
static int open_parent(Extractor *x, const EntryPath *p) {
        _cleanup_close_ int cur = -EBADF;
        int fd;

        fd = open_in_root(x->root_fd, p->parent, O_PATH | O_DIRECTORY, 0);
        if (fd >= 0)
                return fd;
        if (fd != -ENOENT)
                return parent_error(x, p, fd);

        cur = open_in_root(x->root_fd, "", O_PATH | O_DIRECTORY, 0);
        if (cur < 0)
                return parent_error(x, p, cur);

        for (const char *c = p->parent; *c;) {
                size_t k = strcspn(c, "/");
                _cleanup_free_ char *prefix = strndup(p->parent, (size_t) (c - p->parent) + k);
                _cleanup_free_ char *comp = strndup(c, k);

                if (!prefix || !comp)
                        return -ENOMEM;

                fd = open_in_root(x->root_fd, prefix, O_PATH | O_DIRECTORY, 0);
                if (fd == -ENOENT) {
                        if (mkdirat(cur, comp, 0755) >= 0) {
                                _cleanup_close_ int d = -EBADF;

                                /* Explicit owner and mode: not inherited from a setgid parent or a umask. */
                                d = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                                if (d < 0 || fchown(d, 0, 0) < 0 || fchmod(d, 0755) < 0)
                                        return fail(x, UNPACK_FAILURE_IO, -errno,
                                                    "Failed to create directory '%.256s': %m", prefix);
                                if (x->implied && x->implied->len < x->req->limits.max_entries)
                                        g_ptr_array_add(x->implied, g_strdup(prefix));
                        } else if (errno != EEXIST)
                                return fail(x, UNPACK_FAILURE_IO, -errno,
                                            "Failed to create directory '%.256s': %m", prefix);
                        /* Still missing after EEXIST: a dangling symlink is in the way. */
                        fd = open_in_root(x->root_fd, prefix, O_PATH | O_DIRECTORY, 0);
                }
                if (fd < 0)
                        return parent_error(x, p, fd);
                closep(&cur);
                cur = fd;
                c += k;
                if (*c == '/')
                        c++;
        }
        return TAKE_FD(cur);
}

/* Removes what is at (parent_fd, name) unless it is a directory and a directory is wanted (directory
 * entries merge into an existing directory). Type changes replace, inside the snapshot only. */
static int make_room(Extractor *x, int parent_fd, const char *name, bool want_dir, bool *ret_exists) {
        struct stat st;
        int r;

        *ret_exists = false;
        if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to stat '%s': %m", name);
        }
        if (want_dir && S_ISDIR(st.st_mode)) {
                *ret_exists = true;
                return 0;
        }
        r = rm_rf_at(parent_fd, name, NULL);
        if (r < 0 && r != -ENOENT)
                return fail(x, UNPACK_FAILURE_IO, r, "Failed to replace '%s': %s", name, strerror(-r));
        return 0;
}

static bool xattr_allowed(const char *name) {
        /* SECURITY: an allow-list. Overlay's own xattrs (trusted.overlay.*, user.overlay.*) would let a
         * layer forge whiteouts, redirects or metacopy in the stack; security.selinux would let it pick
         * its own label; other trusted.* and security.* names are not for image authors. */
        if (strncmp(name, "user.", 5) == 0)
                return strncmp(name, "user.overlay.", 13) != 0;
        return streq(name, "security.capability") || streq(name, "system.posix_acl_access") ||
               streq(name, "system.posix_acl_default");
}

static int apply_xattrs(Extractor *x, int fd, struct archive_entry *e, const char *path) {
        const char *name;
        const void *value;
        size_t size;
        int n;

        n = archive_entry_xattr_reset(e);
        if (n > (int) LAYER_XATTRS_PER_ENTRY_MAX)
                return fail(x, UNPACK_FAILURE_LIMIT, -E2BIG, "Layer '%s': '%.256s' has more than %u xattrs",
                            x->req->layer_digest, path, LAYER_XATTRS_PER_ENTRY_MAX);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                if (!name || !xattr_allowed(name)) {
                        log_debug("Dropping xattr '%s' of '%s'.", strna(name), path);
                        continue;
                }
                if (size > XATTR_SIZE_MAX_BERTH)
                        return fail(x, UNPACK_FAILURE_LIMIT, -E2BIG,
                                    "Layer '%s': xattr '%s' of '%.256s' is larger than %u bytes",
                                    x->req->layer_digest, name, path, XATTR_SIZE_MAX_BERTH);
                if (fsetxattr(fd, name, value, size, 0) < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to set xattr '%s' on '%.256s': %m",
                                    name, path);
        }
        return 0;
}

typedef struct EntryMeta {
        uid_t uid;
        gid_t gid;
        mode_t mode; /* permission bits incl. setuid/setgid/sticky */
        struct timespec ts[2];
} EntryMeta;

static long clamp_nsec(long nsec) {
        return nsec < 0 || nsec > 999999999L ? 0 : nsec;
}

static int entry_meta(Extractor *x, struct archive_entry *e, const char *path, EntryMeta *ret) {
        la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);

        /* SECURITY: ids must fit uid_t, and (uid_t) -1 means "leave unchanged" to chown(): refuse it and
         * everything above rather than silently keep root as the owner. */
        if (uid < 0 || gid < 0 || uid >= (la_int64_t) UINT32_MAX || gid >= (la_int64_t) UINT32_MAX)
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                            "Layer '%s': '%.256s' has an invalid owner %lld:%lld", x->req->layer_digest,
                            path, (long long) uid, (long long) gid);

        *ret = (EntryMeta){
                .uid = (uid_t) uid,
                .gid = (gid_t) gid,
                .mode = archive_entry_perm(e) & 07777,
        };
        ret->ts[1] = archive_entry_mtime_is_set(e)
                             ? (struct timespec){ archive_entry_mtime(e),
                                                  clamp_nsec(archive_entry_mtime_nsec(e)) }
                             : (struct timespec){ 0, 0 };
        ret->ts[0] = archive_entry_atime_is_set(e)
                             ? (struct timespec){ archive_entry_atime(e),
                                                  clamp_nsec(archive_entry_atime_nsec(e)) }
                             : ret->ts[1];
        return 0;
}

/* Metadata on an fd we opened ourselves, in the order that keeps each step: chown first (it clears
 * setuid/setgid and security.capability), then the mode, then xattrs, then times. */
static int apply_meta_fd(Extractor *x, int fd, struct archive_entry *e, const EntryMeta *m, const char *path,
                         bool times) {
        int r;

        if (fchown(fd, m->uid, m->gid) < 0)
                return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to chown '%.256s': %m", path);
        if (fchmod(fd, m->mode) < 0)
                return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to chmod '%.256s': %m", path);
        r = apply_xattrs(x, fd, e, path);
        if (r < 0)
                return r;
        if (times && futimens(fd, m->ts) < 0)
                return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to set times of '%.256s': %m", path);
        return 0;
}

static int write_data(Extractor *x, struct archive *a, int fd, const char *path, la_int64_t declared) {
        la_int64_t end = 0;

        for (;;) {
                const void *buf;
                size_t size;
                la_int64_t offset;
                int k;

                k = archive_read_data_block(a, &buf, &size, &offset);
                if (k == ARCHIVE_EOF)
                        break;
                if (k < ARCHIVE_WARN)
                        return fail_stream(x, a, "file data");
                if (offset < 0 || (uint64_t) offset > x->req->limits.max_uncompressed_bytes)
                        return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                                    "Layer '%s': bad data offset in '%.256s'", x->req->layer_digest, path);

                for (const char *p = buf; size > 0;) {
                        ssize_t n = pwrite(fd, p, size, (off_t) offset);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to write '%.256s': %m",
                                            path);
                        }
                        p += n;
                        size -= (size_t) n;
                        offset += n;
                }
                if (offset > end)
                        end = offset;
        }

        /* Sparse files end in a hole: give the file its declared size. */
        if (declared > end && ftruncate(fd, (off_t) declared) < 0)
                return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to size '%.256s': %m", path);
        return 0;
}

static int remember_dir(Extractor *x, const EntryPath *p, int fd, const EntryMeta *m) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (x->n_dirs == x->n_dirs_allocated) {
                size_t n = x->n_dirs_allocated ? x->n_dirs_allocated * 2 : 64;
                DirTimes *d = reallocarray(x->dirs, n, sizeof(DirTimes));
                if (!d)
                        return -ENOMEM;
                x->dirs = d;
                x->n_dirs_allocated = n;
        }
        x->dirs[x->n_dirs] = (DirTimes){
                .path = strdup(p->path),
                .dev = st.st_dev,
                .ino = st.st_ino,
                .ts = { m->ts[0], m->ts[1] },
                .depth = p->depth,
                .seq = x->n_dirs,
        };
        if (!x->dirs[x->n_dirs].path)
                return -ENOMEM;
        x->n_dirs++;
        return 0;
}

static int dir_times_cmp(const void *a, const void *b) {
        const DirTimes *x = a, *y = b;

        if (x->depth != y->depth)
                return x->depth > y->depth ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

/* Directory times last, deepest first, since creating entries inside a directory changes its mtime. */
static int apply_dir_times(Extractor *x) {
        if (x->n_dirs > 0)
                qsort(x->dirs, x->n_dirs, sizeof(DirTimes), dir_times_cmp);

        for (size_t i = 0; i < x->n_dirs; i++) {
                _cleanup_close_ int fd = -EBADF;
                struct stat st;

                /* SECURITY: re-opened without following any symlink, and only if it is still the very
                 * directory we created (device and inode), so a later entry that replaced it by a symlink
                 * cannot redirect the update (libarchive CVE-2021-31566 "fixup follows symlink"). */
                fd = open_in_root(x->root_fd, x->dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                                  RESOLVE_NO_SYMLINKS);
                if (fd < 0)
                        continue; /* replaced by a later entry or whited out: not ours to touch */
                if (fstat(fd, &st) < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to stat '%.256s': %m",
                                    x->dirs[i].path);
                if (st.st_dev != x->dirs[i].dev || st.st_ino != x->dirs[i].ino)
                        continue;
                if (futimens(fd, x->dirs[i].ts) < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to set times of '%.256s': %m",
                                    x->dirs[i].path);
        }
        return 0;
}

static int extract_hardlink(Extractor *x, int parent_fd, const EntryPath *p, const char *link,
                            const EntryMeta *m) {
        _cleanup_(entry_path_done) EntryPath t = {};
        _cleanup_close_ int tparent = -EBADF;
        struct stat st, cur;
        bool exists;
        int r;

        r = entry_path_parse(x, link, "hardlink target", &t);
        if (r < 0)
                return r;
        if (isempty(t.path))
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                            "Layer '%s': hardlink '%.256s' names the root", x->req->layer_digest, p->path);

        /* SECURITY: the target is looked up in-root like any path (an absolute or "../" target cannot
         * leave the snapshot), and it must already exist in this layer's tree. The final component is
         * never followed: linkat() without AT_SYMLINK_FOLLOW links a symlink itself, not its target. */
        tparent = open_in_root(x->root_fd, t.parent, O_PATH | O_DIRECTORY, 0);
        if (tparent < 0 || fstatat(tparent, t.name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                            "Layer '%s': hardlink '%.256s' points to '%.256s', which is not in the layer",
                            x->req->layer_digest, p->path, t.path);
        if (S_ISDIR(st.st_mode))
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                            "Layer '%s': hardlink '%.256s' points to a directory", x->req->layer_digest,
                            p->path);

        if (fstatat(parent_fd, p->name, &cur, AT_SYMLINK_NOFOLLOW) < 0 || cur.st_dev != st.st_dev ||
            cur.st_ino != st.st_ino) {
                r = make_room(x, parent_fd, p->name, false, &exists);
                if (r < 0)
                        return r;
                if (linkat(tparent, t.name, parent_fd, p->name, 0) < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to link '%.256s' to '%.256s': %m",
                                    p->path, t.path);
        }
        /* SECURITY: never data through a hardlink entry (libarchive CVE-2016-5418: hardlink entries with a
         * payload). Owner and mode, though, are applied to the inode as containerd's applier does (lchown,
         * then chmod unless it is a symlink): the inode is one this layer created in this tree, so this
         * grants nothing the layer could not state on the file's own entry. */
        if (fchownat(parent_fd, p->name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
                return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to chown '%.256s': %m", p->path);
        if (!S_ISLNK(st.st_mode) && fchmodat(parent_fd, p->name, m->mode, 0) < 0)
                return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to chmod '%.256s': %m", p->path);
        return 0;
}

static int extract_entry(Extractor *x, struct archive *a, struct archive_entry *e) {
        _cleanup_(entry_path_done) EntryPath p = {};
        _cleanup_close_ int parent_fd = -EBADF;
        const char *hardlink = archive_entry_hardlink(e), *target = NULL;
        mode_t type = archive_entry_filetype(e);
        WhiteoutKind wk;
        EntryMeta m;
        bool exists;
        int r;

        r = entry_path_parse(x, archive_entry_pathname(e), "name", &p);
        if (r < 0)
                return r;

        if (isempty(p.path)) {
                /* Real layers made with "tar -C rootfs ." start with a "./" directory entry: skipped, as
                 * containerd skips entries resolving to the root. SECURITY: any other type named ".", "/"
                 * would replace the root itself (umoci CVE-2021-29136): the layer is refused. */
                if (!hardlink && type == AE_IFDIR)
                        return 0;
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                            "Layer '%s' has a non-directory entry naming the root: '%.256s'",
                            x->req->layer_digest, archive_entry_pathname(e));
        }

        r = whiteout_classify(p.name, &wk, &target);
        if (r < 0)
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, r, "Layer '%s' has a malformed whiteout '%.256s'",
                            x->req->layer_digest, p.path);
        if (wk == WHITEOUT_IGNORE)
                return 0;

        r = entry_meta(x, e, p.path, &m);
        if (r < 0)
                return r;

        parent_fd = open_parent(x, &p);
        if (parent_fd < 0)
                return parent_fd;

        if (wk == WHITEOUT_DIR_OPAQUE) {
                _cleanup_close_ int dir_fd = -EBADF;

                /* The parent we just resolved in-root, reopened for fsetxattr() (O_PATH fds cannot). */
                dir_fd = openat(parent_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dir_fd < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to open '%.256s': %m", p.parent);
                r = whiteout_make_opaque(dir_fd);
                if (r < 0)
                        return fail(x, UNPACK_FAILURE_IO, r, "Failed to mark '%.256s' opaque: %s", p.parent,
                                    strerror(-r));
                return 0;
        }
        if (wk == WHITEOUT_FILE) {
                r = whiteout_create(parent_fd, target, m.uid, m.gid);
                if (r < 0)
                        return fail(x, UNPACK_FAILURE_IO, r, "Failed to create whiteout for '%.256s': %s",
                                    p.path, strerror(-r));
                return 0;
        }

        if (hardlink)
                return extract_hardlink(x, parent_fd, &p, hardlink, &m);

        switch (type) {
        case AE_IFREG: {
                _cleanup_close_ int fd = -EBADF;
                la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;

                /* Also bounds the apparent size of sparse files (a 1 TB hole costs nothing to declare). */
                if (size < 0 || (uint64_t) size > x->req->limits.max_uncompressed_bytes)
                        return fail(x, UNPACK_FAILURE_LIMIT, -EFBIG,
                                    "Layer '%s': '%.256s' is larger than the limit of %" PRIu64 " bytes",
                                    x->req->layer_digest, p.path, x->req->limits.max_uncompressed_bytes);

                r = make_room(x, parent_fd, p.name, false, &exists);
                if (r < 0)
                        return r;
                /* SECURITY: O_CREAT|O_EXCL|O_NOFOLLOW never opens an existing file or follows a link put
                 * there: the data can only go into the inode we just created. */
                fd = openat(parent_fd, p.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to create '%.256s': %m", p.path);
                r = write_data(x, a, fd, p.path, size);
                if (r < 0)
                        return r;
                return apply_meta_fd(x, fd, e, &m, p.path, true);
        }

        case AE_IFDIR: {
                _cleanup_close_ int fd = -EBADF;

                r = make_room(x, parent_fd, p.name, true, &exists);
                if (r < 0)
                        return r;
                if (!exists && mkdirat(parent_fd, p.name, 0700) < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to create directory '%.256s': %m",
                                    p.path);
                fd = openat(parent_fd, p.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to open directory '%.256s': %m",
                                    p.path);
                r = apply_meta_fd(x, fd, e, &m, p.path, false);
                if (r < 0)
                        return r;
                if (x->explicit)
                        (void) g_hash_table_add(x->explicit, g_strdup(p.path));
                r = remember_dir(x, &p, fd, &m);
                if (r < 0)
                        return fail(x, UNPACK_FAILURE_IO, r, "Failed to remember directory '%.256s'",
                                    p.path);
                return 0;
        }

        case AE_IFLNK: {
                const char *link = archive_entry_symlink(e);

                if (isempty(link) || strlen(link) > LAYER_SYMLINK_TARGET_MAX)
                        return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                                    "Layer '%s': symlink '%.256s' has an empty or overlong target",
                                    x->req->layer_digest, p.path);
                r = make_room(x, parent_fd, p.name, false, &exists);
                if (r < 0)
                        return r;
                /* The target is stored verbatim: it is only ever resolved in-root, here and in the
                 * container. */
                if (symlinkat(link, parent_fd, p.name) < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to create symlink '%.256s': %m",
                                    p.path);
                /* SECURITY: AT_SYMLINK_NOFOLLOW on a name relative to the parent fd: the link, never its
                 * target (CVE-2021-32760). xattrs on symlinks are dropped (ACL xattrs on a link were
                 * applied to its target in libarchive CVE-2021-23177). */
                if (fchownat(parent_fd, p.name, m.uid, m.gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    utimensat(parent_fd, p.name, m.ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to set metadata of '%.256s': %m",
                                    p.path);
                return 0;
        }

        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO: {
                dev_t dev = type == AE_IFIFO
                                    ? 0
                                    : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));

                r = make_room(x, parent_fd, p.name, false, &exists);
                if (r < 0)
                        return r;
                /* Device nodes are created as the image says (the snapshot is mounted nodev outside
                 * containers, and containers' device access is governed by their device cgroup); the
                 * mode is given whole to mknodat() (umask is 0 here), since a device cannot be opened to
                 * fchmod() it without talking to its driver. */
                if (mknodat(parent_fd, p.name, type | (m.mode & 0777), dev) < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to create node '%.256s': %m",
                                    p.path);
                if (fchownat(parent_fd, p.name, m.uid, m.gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    utimensat(parent_fd, p.name, m.ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return fail(x, UNPACK_FAILURE_IO, -errno, "Failed to set metadata of '%.256s': %m",
                                    p.path);
                return 0;
        }

        case AE_IFSOCK:
                /* Sockets in a layer are meaningless; containerd ignores them too. */
                return 0;

        default:
                return fail(x, UNPACK_FAILURE_BAD_CONTENT, -EBADMSG,
                            "Layer '%s': '%.256s' has an unknown type 0%o", x->req->layer_digest, p.path,
                            (unsigned) type);
        }
}

static int extract_all(Extractor *x) {
        struct archive *a = x->stream.tar;
        char digest[DIGEST_STRING_MAX], diff_id[DIGEST_STRING_MAX];
        int r;

        for (;;) {
                struct archive_entry *e;
                int k;

                k = archive_read_next_header(a, &e);
                if (k == ARCHIVE_EOF)
                        break;
                if (k < ARCHIVE_WARN)
                        return fail_stream(x, a, "header");

                if (++x->result->entries > x->req->limits.max_entries)
                        return fail(x, UNPACK_FAILURE_LIMIT, -E2BIG,
                                    "Layer '%s' exceeds the limit of %" PRIu64 " entries",
                                    x->req->layer_digest, x->req->limits.max_entries);

                r = extract_entry(x, a, e);
                if (r < 0)
                        return r;
        }

        r = apply_dir_times(x);
        if (r < 0)
                return r;

        r = layer_stream_finish(&x->stream, digest, diff_id);
        x->result->uncompressed_size = x->stream.uncompressed_bytes;
        x->result->compressed_size = x->stream.blob_offset;
        if (r < 0)
                return fail_stream(x, NULL, "trailing data");

        /* SECURITY: the layer becomes visible only under digests we computed ourselves over every byte
         * (STYLE 13): the fetcher and the broker are not trusted for either. */
        if (!digest_equal(digest, x->req->layer_digest))
                return fail(x, UNPACK_FAILURE_DIGEST, -EBADMSG, "Layer blob '%s' has digest %s",
                            x->req->layer_digest, digest);
        if (!digest_equal(diff_id, x->req->diff_id))
                return fail(x, UNPACK_FAILURE_DIGEST, -EBADMSG,
                            "Uncompressed stream of layer '%s' has digest %s, expected diff_id %s",
                            x->req->layer_digest, diff_id, x->req->diff_id);
        return 0;
}

/* The implied directories no entry named later, NUL-terminated, to the caller's fd. */
static int write_implied(Extractor *x) {
        g_autoptr(GString) out = g_string_new(NULL);
        int r;

        for (guint i = 0; i < x->implied->len; i++) {
                const char *path = x->implied->pdata[i];

                if (g_hash_table_contains(x->explicit, path))
                        continue;
                g_string_append_len(out, path, (gssize) strlen(path) + 1);
        }
        r = loop_write(x->req->implied_fd, out->str, out->len);
        if (r < 0) {
                errno = -r;
                return fail(x, UNPACK_FAILURE_IO, r, "Failed to report implied directories: %m");
        }
        return 0;
}

int layer_extract(int blob_fd, int root_fd, const ExtractRequest *req, ExtractResult *ret) {
        g_autoptr(GPtrArray) implied =
                req->implied_fd > STDERR_FILENO ? g_ptr_array_new_with_free_func(g_free) : NULL;
        g_autoptr(GHashTable) explicit =
                implied ? g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL) : NULL;
        Extractor x = {
                .root_fd = root_fd,
                .req = req,
                .result = ret,
                .implied = implied,
                .explicit = explicit,
        };
        DigestAlgorithm da, ua;
        mode_t saved_umask;
        int r;

        *ret = (ExtractResult){};
        if (digest_validate(req->layer_digest, &da) < 0 || digest_validate(req->diff_id, &ua) < 0)
                return fail(&x, UNPACK_FAILURE_BAD_CONTENT, -EINVAL, "Invalid expected digest");

        saved_umask = umask(0);
        r = layer_stream_open(&x.stream, blob_fd, req->compression, req->limits.max_uncompressed_bytes, da,
                              ua);
        if (r == -ENOMEM)
                r = fail(&x, UNPACK_FAILURE_IO, r, "Out of memory");
        else if (r < 0)
                r = fail_stream(&x, x.stream.tar ? x.stream.tar : x.stream.outer, "start");
        else
                r = extract_all(&x);
        if (r >= 0 && x.implied)
                r = write_implied(&x);
        umask(saved_umask);

        if (r < 0 && ret->failure == UNPACK_OK)
                r = fail(&x, UNPACK_FAILURE_IO, r, "Failed to unpack layer '%s': %s", req->layer_digest,
                         strerror(-r));

        layer_stream_done(&x.stream);
        for (size_t i = 0; i < x.n_dirs; i++)
                free(x.dirs[i].path);
        free(x.dirs);
        return r;
}
