/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "berth-limits.h"
#include "digest.h"
#include "fs-util.h"
#include "host-mntns.h"
#include "image-mount.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"

#define SNAPSHOT_RECORD_MAX (64U * 1024U)

static int set_error(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
static int set_error(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                free(*ret_error);
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -abs(r);
}

/* Reads snapshots/<hex>/snapshot.json and returns its "parent" chain id ("" for a base layer).
 * The record is written by the unpacker (root) but still parsed with limits: it is a file on disk. */
static int snapshot_parent(int snapshots_fd, const char *hex, char **ret_parent, char **ret_error) {
        _cleanup_close_ int dir_fd = -EBADF, fd = -EBADF;
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *buf = NULL, *msg = NULL;
        size_t n;
        int r;

        dir_fd = openat(snapshots_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return set_error(ret_error, errno, "snapshot sha256:%s is not committed", hex);
        fd = openat(dir_fd, "snapshot.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return set_error(ret_error, errno, "snapshot sha256:%s has no record", hex);
        r = read_regular_file_fd(fd, SNAPSHOT_RECORD_MAX, &buf, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || n == 0)
                return set_error(ret_error, EBADMSG, "snapshot sha256:%s has a bad record", hex);

        r = json_parse_bounded(buf, n, SNAPSHOT_RECORD_MAX, &root, &msg);
        if (r < 0 || !JSON_NODE_HOLDS_OBJECT(root))
                return set_error(ret_error, EBADMSG, "snapshot sha256:%s: bad record: %s", hex, strna(msg));

        JsonObject *o = json_node_get_object(root);
        JsonNode *p = json_object_get_member(o, "parent");
        const char *parent = p && JSON_NODE_HOLDS_VALUE(p) && json_node_get_value_type(p) == G_TYPE_STRING
                                     ? json_node_get_string(p)
                                     : NULL;
        if (!p || JSON_NODE_HOLDS_NULL(p))
                parent = "";
        if (!parent)
                return set_error(ret_error, EBADMSG, "snapshot sha256:%s: bad parent in record", hex);
        if (!isempty(parent) && !digest_is_valid(parent))
                return set_error(ret_error, EBADMSG, "snapshot sha256:%s: bad parent '%s'", hex, parent);

        *ret_parent = strdup(parent);
        return *ret_parent ? 0 : -ENOMEM;
}

/* Top to bottom: [top, parent, grandparent, …]. Detects loops and over-deep chains. */
static int snapshot_chain(int snapshots_fd, const char *chain_id, GPtrArray *ret_hexes, char **ret_error) {
        _cleanup_free_ char *current = strdup(chain_id);
        int r;

        if (!current)
                return -ENOMEM;
        while (!isempty(current)) {
                _cleanup_free_ char *parent = NULL;
                const char *hex;

                if (digest_validate(current, NULL) < 0 || strncmp(current, "sha256:", 7) != 0)
                        return set_error(ret_error, EINVAL, "invalid chain id '%s'", current);
                if (ret_hexes->len >= IMAGE_MOUNT_LAYERS_MAX)
                        return set_error(ret_error, E2BIG, "snapshot chain is longer than %u layers",
                                         IMAGE_MOUNT_LAYERS_MAX);
                hex = digest_hex(current);
                for (unsigned i = 0; i < ret_hexes->len; i++)
                        if (streq(ret_hexes->pdata[i], hex))
                                return set_error(ret_error, ELOOP, "snapshot chain loops at %s", current);

                r = snapshot_parent(snapshots_fd, hex, &parent, ret_error);
                if (r < 0)
                        return r;
                g_ptr_array_add(ret_hexes, g_strdup(hex));
                free(current);
                current = TAKE_PTR(parent);
        }
        return 0;
}

static int fd_mount_id(int fd, uint64_t *ret) {
        struct statx sx = {};

        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &sx) < 0)
                return -errno;
        if (!(sx.stx_mask & STATX_MNT_ID))
                return -EOPNOTSUPP;
        *ret = sx.stx_mnt_id;
        return 0;
}

static int check_target(int target_fd, char **ret_error) {
        struct stat st;

        /* SECURITY: the fd comes from the user (through the broker): it proves the user could open
         * the directory. It must be a directory; it is mounted over through the fd itself, so no
         * path is ever resolved on the user's behalf. */
        if (fstat(target_fd, &st) < 0)
                return set_error(ret_error, errno, "cannot inspect the target directory");
        if (!S_ISDIR(st.st_mode))
                return set_error(ret_error, ENOTDIR, "the mount target is not a directory");
        return 0;
}

int image_mount(int snapshots_fd, const char *snapshots_path, const char *chain_id, int target_fd,
                uint64_t *ret_mount_id, char **ret_error) {
        g_autoptr(GPtrArray) hexes = g_ptr_array_new_with_free_func(g_free);
        _cleanup_close_ int fs_fd = -EBADF, mnt_fd = -EBADF, check_fd = -EBADF;
        int r;

        r = check_target(target_fd, ret_error);
        if (r < 0)
                return r;
        r = snapshot_chain(snapshots_fd, chain_id, hexes, ret_error);
        if (r < 0)
                return r;

        if (hexes->len == 1) {
                /* overlayfs needs two lower layers without an upper one: one layer is a bind mount. */
                _cleanup_free_ char *rel = g_strdup_printf("%s/fs", (char *) hexes->pdata[0]);
                mnt_fd = open_tree(snapshots_fd, rel,
                                   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
                if (mnt_fd < 0)
                        return set_error(ret_error, errno, "cannot clone snapshot sha256:%s: %m",
                                         (char *) hexes->pdata[0]);
                struct mount_attr attr = {
                        .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                };
                if (mount_setattr(mnt_fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                        return set_error(ret_error, errno, "cannot make the view read-only: %m");
        } else {
                fs_fd = fsopen("overlay", FSOPEN_CLOEXEC);
                if (fs_fd < 0)
                        return set_error(ret_error, errno, "overlayfs is not available: %m");

                /* "lowerdir+" (Linux 6.8) adds one layer per call, so deep images are not limited by
                 * the one page of mount options that a lowerdir=a:b:c string must fit in. */
                bool append_ok = true;
                for (unsigned i = 0; i < hexes->len && append_ok; i++) {
                        _cleanup_free_ char *path =
                                g_strdup_printf("%s/%s/fs", snapshots_path, (char *) hexes->pdata[i]);
                        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "lowerdir+", path, 0) < 0) {
                                if (errno != EINVAL || i > 0)
                                        return set_error(ret_error, errno, "cannot add layer %s: %m", path);
                                append_ok = false;
                        }
                }
                if (!append_ok) {
                        /* Older kernels: one string. Build it and let the kernel refuse it if too long. */
                        g_autoptr(GString) lower = g_string_new(NULL);
                        for (unsigned i = 0; i < hexes->len; i++)
                                g_string_append_printf(lower, "%s%s/%s/fs", i ? ":" : "", snapshots_path,
                                                       (char *) hexes->pdata[i]);
                        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "lowerdir", lower->str, 0) < 0)
                                return set_error(ret_error, errno, "cannot configure the overlay: %m");
                }
                if (fsconfig(fs_fd, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
                    fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                        return set_error(ret_error, errno, "cannot create the overlay: %m");
                mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC,
                                 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
                if (mnt_fd < 0)
                        return set_error(ret_error, errno, "cannot create the overlay mount: %m");
        }

        if (move_mount(mnt_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return set_error(ret_error, errno, "cannot attach the view to the target directory: %m");

        if (ret_mount_id) {
                /* The fd on the target still names the covered directory; the mount sits on top. */
                check_fd = openat(target_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (check_fd >= 0)
                        (void) fd_mount_id(check_fd, ret_mount_id);
        }
        return 0;
}

/* Finds the mountinfo line of mount `id`: fills root and super options. */
static int mountinfo_lookup(uint64_t id, char **ret_root, char **ret_fstype, char **ret_source,
                            char **ret_opts) {
        _cleanup_free_ char *line = NULL;
        size_t len = 0;
        FILE *f = fopen("/proc/self/mountinfo", "re");

        if (!f)
                return -errno;
        while (getline(&line, &len, f) > 0) {
                char **fields = g_strsplit(g_strchomp(line), " ", -1);
                guint n = g_strv_length(fields), sep = 0;

                for (guint i = 6; i < n; i++)
                        if (streq(fields[i], "-")) {
                                sep = i;
                                break;
                        }
                if (n > 5 && sep > 0 && sep + 2 < n && strtoull(fields[0], NULL, 10) == id) {
                        *ret_root = g_strdup(fields[3]);
                        *ret_fstype = g_strdup(fields[sep + 1]);
                        *ret_source = g_strdup(fields[sep + 2]);
                        *ret_opts = g_strdup(sep + 3 < n ? fields[sep + 3] : "");
                        g_strfreev(fields);
                        fclose(f);
                        return 0;
                }
                g_strfreev(fields);
        }
        fclose(f);
        return -ENOENT;
}

/* Does `s` end in "/<64 hex>/fs"? Then *ret_hex points at the hex. */
static bool ends_in_snapshot_fs(const char *s, const char **ret_hex) {
        size_t len = strlen(s);
        const char *p;

        if (len < 68)
                return false;
        p = s + len - 68;
        if (p[0] != '/' || strspn(p + 1, "0123456789abcdef") != 64 || !streq(p + 65, "/fs"))
                return false;
        *ret_hex = p + 1;
        return true;
}

/* s after prefix, or NULL when s does not start with it. */
static const char *after_prefix(const char *s, const char *prefix) {
        size_t n = strlen(prefix);

        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* Is `dir` exactly "<snapshots_path>/<64 hex>/fs"? */
static bool is_store_layer(const char *snapshots_path, const char *dir) {
        const char *rest = after_prefix(dir, snapshots_path), *hex;

        return rest && rest[0] == '/' && ends_in_snapshot_fs(rest, &hex) && hex == rest + 1;
}

/* SECURITY: an overlay is one of our views only when every layer it has is a snapshot of this store, as
 * image_mount() makes them: lowerdir= (a ':' list) or lowerdir+= entries, each exactly
 * "<store>/<hex>/fs", and nothing else that names a directory (upperdir, workdir, datadir+). Accepting
 * any overlay that merely mentions the store (lowerdir=<store>/<hex>/fs:/etc) would let UnmountImage
 * uncover somebody else's mount. mountinfo escapes ' ', '\t', '\n', '\\' and ',' in option values as
 * octal, so a path holding them never matches, which only refuses. */
bool image_view_options_are_ours(const char *snapshots_path, const char *opts) {
        g_auto(GStrv) options = g_strsplit(opts, ",", -1);
        unsigned layers = 0;

        for (char **o = options; *o; o++) {
                const char *v;

                if ((v = after_prefix(*o, "lowerdir="))) {
                        g_auto(GStrv) dirs = g_strsplit(v, ":", -1);
                        for (char **d = dirs; *d; d++) {
                                if (!is_store_layer(snapshots_path, *d))
                                        return false;
                                layers++;
                        }
                } else if ((v = after_prefix(*o, "lowerdir+="))) {
                        if (!is_store_layer(snapshots_path, v))
                                return false;
                        layers++;
                } else if (after_prefix(*o, "upperdir=") || after_prefix(*o, "workdir=") ||
                           after_prefix(*o, "datadir"))
                        return false;
        }
        return layers > 0;
}

static bool view_is_ours(const char *snapshots_path, const char *root, const char *fstype, const char *opts,
                         int target_fd) {
        _cleanup_close_ int store_fd = -EBADF;
        char rel[64 + 4];
        const char *hex;
        struct stat a, b;

        if (streq(fstype, "overlay"))
                return image_view_options_are_ours(snapshots_path, opts);
        /* A one-layer view is a bind mount of <store>/<hex>/fs. mountinfo's root is that directory's path
         * inside its filesystem, which is the store's path only when that filesystem is mounted at "/"
         * (not with a separate /var, nor a bind-mounted state dir): match the "<hex>/fs" suffix, then
         * require the very same inode as the store's snapshot. */
        if (!ends_in_snapshot_fs(root, &hex))
                return false;
        snprintf(rel, sizeof(rel), "%.64s/fs", hex);
        store_fd = open(snapshots_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return store_fd >= 0 && fstatat(store_fd, rel, &a, AT_SYMLINK_NOFOLLOW) >= 0 &&
               fstat(target_fd, &b) >= 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int image_unmount(const char *snapshots_path, int target_fd, char **ret_error) {
        g_autofree char *root = NULL, *fstype = NULL, *source = NULL, *opts = NULL, *path = NULL;
        uint64_t id;
        int r;

        r = fd_mount_id(target_fd, &id);
        if (r < 0)
                return set_error(ret_error, r, "cannot identify the mount of the target: %m");
        r = mountinfo_lookup(id, &root, &fstype, &source, &opts);
        if (r < 0)
                return set_error(ret_error, r, "the target is not a mount point");
        /* SECURITY: unmount only what we mounted, so this cannot be used to uncover other mounts. */
        if (!view_is_ours(snapshots_path, root, fstype, opts, target_fd))
                return set_error(ret_error, EPERM, "the target is not an image view mounted by berth");

        /* The fd must be the root of that mount, not a directory somewhere inside it. */
        _cleanup_close_ int parent_fd = openat(target_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        uint64_t parent_id = 0;
        if (parent_fd < 0 || fd_mount_id(parent_fd, &parent_id) < 0)
                return set_error(ret_error, EIO, "cannot inspect the target");
        if (parent_id == id)
                return set_error(ret_error, EINVAL,
                                 "the target is inside an image view, not its mount point");

        /* Through the fd's magic link, so no path is resolved on the caller's behalf. Lazy: the caller's
         * fd and ours pin the mount until they are closed, which is right after this. */
        path = g_strdup_printf("/proc/self/fd/%d", target_fd);
        if (umount2(path, MNT_DETACH) < 0)
                return set_error(ret_error, errno, "cannot unmount: %m");
        return 0;
}

int image_mounts_in_use(const char *snapshots_path, char ***ret_chain_ids) {
        g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
        _cleanup_free_ char *line = NULL;
        size_t len = 0;
        /* Views live in the host's namespace (image_mount_host()); under systemd ours is private. */
        int ours = host_mntns_is_ours();
        FILE *f;

        if (ours < 0)
                return ours;
        f = fopen(ours ? "/proc/self/mountinfo" : "/proc/1/mountinfo", "re");

        if (!f)
                return -errno;
        /* Any mention of <store>/<hex>/fs in a mount's root or options marks <hex> as used. A bind view's
         * root is the path inside its filesystem, which need not start with the store's path (a separate
         * /var, a bind-mounted state dir): any "/<hex>/fs" counts. A false match only keeps a snapshot. */
        while (getline(&line, &len, f) > 0) {
                for (const char *p = strchr(line, '/'); p; p = strchr(p + 1, '/')) {
                        const char *hex = p + 1;
                        size_t k = strspn(hex, "0123456789abcdef");
                        if (k == 64 && strncmp(hex + 64, "/fs", 3) == 0) {
                                g_autofree char *id = g_strdup_printf("sha256:%.64s", hex);
                                bool seen = false;
                                for (unsigned i = 0; i < ids->len && !seen; i++)
                                        seen = streq(ids->pdata[i], id);
                                if (!seen)
                                        g_ptr_array_add(ids, g_steal_pointer(&id));
                        }
                }
        }
        fclose(f);
        g_ptr_array_add(ids, NULL);
        *ret_chain_ids = (char **) g_ptr_array_free(g_steal_pointer(&ids), false);
        return 0;
}

/* ---- the same, done where callers see it ----------------------------------------------------------- */

/* What the child reports back: one record, written once, read once. */
typedef struct ViewRecord {
        int32_t error; /* positive errno, 0 on success */
        uint32_t padding;
        uint64_t mount_id;
        char message[512];
} ViewRecord;

#define VIEW_CHILD_TIMEOUT_MSEC (60 * 1000)

_noreturn_ static void view_child(int report_fd, const char *snapshots_path, const char *chain_id,
                                  int target_fd) {
        _cleanup_free_ char *msg = NULL;
        _cleanup_close_ int snapshots_fd = -EBADF;
        ViewRecord rec = {};
        int r;

        /* Never outlive the supervisor that waits for the answer. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                _exit(EXIT_FAILURE);
        if (getppid() == 1)
                _exit(EXIT_FAILURE); /* the supervisor is already gone: nobody to answer */
        r = host_mntns_join();
        if (r < 0) {
                errno = -r;
                (void) snprintf(rec.message, sizeof(rec.message),
                                "cannot join the host's mount namespace: %m");
                goto report;
        }
        /* open_tree() and the overlay's lower dirs must be mounts of this namespace: re-open the store
         * here rather than use the supervisor's fd, which belongs to its private namespace. */
        snapshots_fd = open(snapshots_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (snapshots_fd < 0) {
                r = -errno;
                (void) snprintf(rec.message, sizeof(rec.message), "no snapshot store at '%s': %m",
                                snapshots_path);
                goto report;
        }
        if (chain_id)
                r = image_mount(snapshots_fd, snapshots_path, chain_id, target_fd, &rec.mount_id, &msg);
        else
                r = image_unmount(snapshots_path, target_fd, &msg);

report:
        rec.error = r < 0 ? -r : 0;
        if (msg)
                (void) snprintf(rec.message, sizeof(rec.message), "%s", msg);
        _exit(loop_write(report_fd, &rec, sizeof(rec)) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

static int view_in_host(const char *snapshots_path, const char *chain_id, int target_fd,
                        uint64_t *ret_mount_id, char **ret_error) {
        _cleanup_close_ int rfd = -EBADF, wfd = -EBADF;
        ViewRecord rec = {};
        struct pollfd p;
        int pipefd[2], status, r;
        ssize_t n;
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return set_error(ret_error, errno, "cannot create a pipe: %m");
        rfd = pipefd[0];
        wfd = pipefd[1];

        /* SECURITY: the child widens its view to the host's file system, which is what the mount is for;
         * it runs only image_mount()/image_unmount() on arguments the supervisor already validated. */
        pid = fork();
        if (pid < 0)
                return set_error(ret_error, errno, "cannot fork: %m");
        if (pid == 0) {
                rfd = safe_close(rfd);
                view_child(wfd, snapshots_path, chain_id, target_fd);
        }
        wfd = safe_close(wfd);

        /* A mount takes milliseconds; a child stuck in the kernel (a hung NFS /var) must not hang the
         * supervisor for good. */
        p = (struct pollfd){ .fd = rfd, .events = POLLIN };
        do
                r = poll(&p, 1, VIEW_CHILD_TIMEOUT_MSEC);
        while (r < 0 && errno == EINTR);
        if (r <= 0) {
                int e = r < 0 ? errno : ETIMEDOUT;
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return set_error(ret_error, e, "the mount helper did not answer: %s", strerror(e));
        }
        n = read(rfd, &rec, sizeof(rec));
        r = n < 0 ? -errno : 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return set_error(ret_error, r, "cannot read the mount helper's answer: %s", strerror(-r));
        if (n != (ssize_t) sizeof(rec))
                return set_error(ret_error, EPROTO, "the mount helper exited without an answer");

        rec.message[sizeof(rec.message) - 1] = '\0';
        if (rec.error != 0)
                return set_error(ret_error, rec.error, "%s",
                                 rec.message[0] ? rec.message : strerror(rec.error));
        if (ret_mount_id)
                *ret_mount_id = rec.mount_id;
        return 0;
}

int image_mount_host(const char *snapshots_path, const char *chain_id, int target_fd, uint64_t *ret_mount_id,
                     char **ret_error) {
        assert(chain_id);
        return view_in_host(snapshots_path, chain_id, target_fd, ret_mount_id, ret_error);
}

int image_unmount_host(const char *snapshots_path, int target_fd, char **ret_error) {
        return view_in_host(snapshots_path, NULL, target_fd, NULL, ret_error);
}
