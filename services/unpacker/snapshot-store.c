/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "berth-limits.h"
#include "digest.h"
#include "fs-at.h"
#include "fs-util.h"
#include "log.h"
#include "snapshot-store.h"

#define SNAPSHOT_JSON "snapshot.json"
#define SNAPSHOT_JSON_MAX (64U * 1024U)

void snapshot_info_done(SnapshotInfo *i) {
        free(i->chain_id);
        free(i->parent);
        free(i->diff_id);
        free(i->layer_digest);
        *i = (SnapshotInfo){};
}

SnapshotStore *snapshot_store_free(SnapshotStore *s) {
        if (!s)
                return NULL;
        safe_close(s->dir_fd);
        safe_close(s->tmp_fd);
        free(s->path);
        return mfree(s);
}

static int mkdir_p_0700(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *c = p + 1; *c; c++)
                if (*c == '/') {
                        *c = '\0';
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *c = '/';
                }
        /* SECURITY: the store itself is 0700 root: setuid binaries and world-writable dirs inside
         * snapshots are unreachable for other host users (CVE-2021-41091). */
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int snapshot_store_open(const char *path, SnapshotStore **ret) {
        _cleanup_(snapshot_store_freep) SnapshotStore *s = NULL;
        struct stat st;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dir_fd = s->tmp_fd = -EBADF;
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;

        r = mkdir_p_0700(path);
        if (r < 0)
                return r;
        s->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir_fd < 0)
                return -errno;
        if (fstat(s->dir_fd, &st) < 0)
                return -errno;
        if ((st.st_mode & 0077) != 0 && fchmod(s->dir_fd, 0700) < 0)
                return -errno;
        if (mkdirat(s->dir_fd, "tmp", 0700) < 0 && errno != EEXIST)
                return -errno;
        s->tmp_fd = openat(s->dir_fd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s->tmp_fd < 0)
                return -errno;

        /* Interrupted jobs left only work dirs behind; no job runs yet, so all of them go. */
        r = rm_rf_children(s->tmp_fd, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to remove leftovers in '%s/tmp': %m", path);

        *ret = TAKE_PTR(s);
        return 0;
}

int snapshot_store_new_work(SnapshotStore *s, char **ret_name, int *ret_fs_fd, char **ret_fs_path) {
        _cleanup_free_ char *name = NULL, *fs_path = NULL;
        _cleanup_close_ int dfd = -EBADF, fs_fd = -EBADF;
        uint64_t rnd;
        int r;

        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                return -EIO;
        if (asprintf_safe(&name, "%016" PRIx64, rnd) < 0)
                return -ENOMEM;
        if (mkdirat(s->tmp_fd, name, 0700) < 0)
                return -errno;
        dfd = openat(s->tmp_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || mkdirat(dfd, "fs", 0755) < 0)
                goto fail_errno;
        fs_fd = openat(dfd, "fs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fs_fd < 0 || fchmod(fs_fd, 0755) < 0)
                goto fail_errno;
        if (asprintf_safe(&fs_path, "%s/tmp/%s/fs", s->path, name) < 0) {
                r = -ENOMEM;
                goto fail;
        }

        *ret_name = TAKE_PTR(name);
        *ret_fs_fd = TAKE_FD(fs_fd);
        *ret_fs_path = TAKE_PTR(fs_path);
        return 0;

fail_errno:
        r = -errno;
fail:
        /* Undo: the caller never learns the name, so nothing else would remove the half-made dir. */
        (void) rm_rf_at(s->tmp_fd, name, NULL);
        return r;
}

int snapshot_store_discard_work(SnapshotStore *s, const char *name) {
        int r = rm_rf_at(s->tmp_fd, name, NULL);
        return r == -ENOENT ? 0 : r;
}

int snapshot_store_clean_work(SnapshotStore *s, char *const *in_use, uint64_t *ret_freed) {
        uint64_t freed = 0;
        struct dirent *de;
        DIR *d;
        int r;

        r = opendir_at(s->tmp_fd, ".", &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                bool busy = false;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                for (char *const *i = in_use; i && *i; i++)
                        if (streq(*i, de->d_name))
                                busy = true;
                if (busy)
                        continue;
                int k = rm_rf_at(dirfd(d), de->d_name, &freed);
                if (k < 0 && k != -ENOENT && r >= 0)
                        r = k;
        }
        closedir(d);
        if (ret_freed)
                *ret_freed = freed;
        return r;
}

static int write_info(int dir_fd, const SnapshotInfo *info) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonGenerator) g = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *text = NULL;
        size_t len;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "chain_id");
        json_builder_add_string_value(b, info->chain_id);
        json_builder_set_member_name(b, "parent");
        json_builder_add_string_value(b, info->parent ?: "");
        json_builder_set_member_name(b, "diff_id");
        json_builder_add_string_value(b, info->diff_id);
        json_builder_set_member_name(b, "layer_digest");
        json_builder_add_string_value(b, info->layer_digest);
        json_builder_set_member_name(b, "size");
        json_builder_add_int_value(b, (gint64) info->size);
        json_builder_set_member_name(b, "entries");
        json_builder_add_int_value(b, info->entries);
        json_builder_set_member_name(b, "created");
        json_builder_add_int_value(b, (gint64) info->created);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        json_generator_set_root(g, root);
        text = json_generator_to_data(g, &len);

        /* Also fsyncs dir_fd: the record's and the child's (already synced) tree's entries are durable
         * before the commit's rename makes the snapshot visible. */
        return write_file_atomic_at(dir_fd, SNAPSHOT_JSON, text, len, 0600);
}

int snapshot_store_commit(SnapshotStore *s, const char *name, const SnapshotInfo *info) {
        _cleanup_close_ int dfd = -EBADF;
        const char *hex = digest_hex(info->chain_id);

        dfd = openat(s->tmp_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        int r = write_info(dfd, info);
        if (r < 0)
                return r;
        /* The rename makes the snapshot visible; make it durable too. */
        if (renameat(s->tmp_fd, name, s->dir_fd, hex) < 0)
                return -errno;
        if (fsync(s->tmp_fd) < 0 || fsync(s->dir_fd) < 0)
                return -errno;
        return 0;
}

static int read_info(int dir_fd, const char *hex, SnapshotInfo *ret) {
        g_autoptr(JsonParser) parser = json_parser_new();
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        JsonObject *o;
        JsonNode *root;
        size_t n;
        int r;

        fd = openat(dir_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                int j = openat(fd, SNAPSHOT_JSON, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                safe_close(fd);
                fd = j;
        }
        if (fd < 0)
                return -errno;
        r = read_regular_file_fd(fd, SNAPSHOT_JSON_MAX, &buf, &n);
        if (r < 0)
                return r;
        if (!json_parser_load_from_data(parser, buf, (gssize) n, NULL))
                return -EBADMSG;
        root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                return -EBADMSG;
        o = json_node_get_object(root);

        const char *chain = json_object_get_string_member_with_default(o, "chain_id", NULL);
        const char *parent = json_object_get_string_member_with_default(o, "parent", "");
        const char *diff = json_object_get_string_member_with_default(o, "diff_id", NULL);
        const char *layer = json_object_get_string_member_with_default(o, "layer_digest", NULL);
        if (!digest_is_valid(chain) || !digest_is_valid(diff) || !digest_is_valid(layer) ||
            !streq(digest_hex(chain), hex))
                return -EBADMSG;
        *ret = (SnapshotInfo){
                .chain_id = strdup(chain),
                .parent = strdup(parent),
                .diff_id = strdup(diff),
                .layer_digest = strdup(layer),
                .size = (uint64_t) json_object_get_int_member_with_default(o, "size", 0),
                .entries = (uint32_t) json_object_get_int_member_with_default(o, "entries", 0),
                .created = (uint64_t) json_object_get_int_member_with_default(o, "created", 0),
        };
        if (!ret->chain_id || !ret->parent || !ret->diff_id || !ret->layer_digest) {
                snapshot_info_done(ret);
                return -ENOMEM;
        }
        return 0;
}

int snapshot_store_get(SnapshotStore *s, const char *chain_id, SnapshotInfo *ret) {
        SnapshotInfo tmp = {};
        int r;

        if (!digest_is_valid(chain_id))
                return -EINVAL;
        r = read_info(s->dir_fd, digest_hex(chain_id), &tmp);
        if (r < 0)
                return r;
        if (ret)
                *ret = tmp;
        else
                snapshot_info_done(&tmp);
        return 0;
}

static void info_array_free(SnapshotInfo *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                snapshot_info_done(&a[i]);
        free(a);
}

int snapshot_store_list(SnapshotStore *s, SnapshotInfo **ret, size_t *ret_n) {
        SnapshotInfo *a = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *d;
        int r;

        r = opendir_at(s->dir_fd, ".", &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                SnapshotInfo info;

                if (strlen(de->d_name) != 64 || read_info(dirfd(d), de->d_name, &info) < 0)
                        continue;
                SnapshotInfo *b = reallocarray(a, n + 1, sizeof(SnapshotInfo));
                if (!b) {
                        snapshot_info_done(&info);
                        info_array_free(a, n);
                        closedir(d);
                        return -ENOMEM;
                }
                a = b;
                a[n++] = info;
        }
        closedir(d);
        *ret = a;
        *ret_n = n;
        return 0;
}

/* 1 if mounted, 0 if not, -errno if that cannot be told. */
static int snapshot_mounted(SnapshotStore *s, const char *hex) {
        _cleanup_free_ char *needle = NULL, *line = NULL;
        size_t sz = 0;
        bool found = false;
        FILE *f;

        /* Overlay mounts list their lowerdirs in the mount options; any mention of this snapshot's fs
         * dir means it is in use. A one-layer view is a bind mount whose mountinfo root is the path inside
         * its filesystem (not the store's path with a separate /var or a bind-mounted state dir): match
         * "/<hex>/fs" alone; a false match only keeps a snapshot. */
        needle = g_strdup_printf("/%s/fs", hex);
        /* SECURITY: fails closed. Not knowing the mounts must never let a snapshot under a view (or a
         * container's rootfs) be removed. */
        f = fopen(s->mountinfo_path ?: "/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        errno = 0;
        while (!found && getline(&line, &sz, f) > 0)
                found = strstr(line, needle) != NULL;
        if (!found && ferror(f)) {
                int r = errno > 0 ? -errno : -EIO;
                fclose(f);
                return r;
        }
        fclose(f);
        return found;
}

int snapshot_store_remove(SnapshotStore *s, char *const *chain_ids, uint64_t *ret_freed, char **ret_error) {
        SnapshotInfo *all = NULL;
        size_t n_all = 0;
        uint64_t freed = 0;
        int r;

        for (char *const *c = chain_ids; c && *c; c++) {
                r = snapshot_store_get(s, *c, NULL);
                if (r < 0) {
                        *ret_error = g_strdup_printf("Snapshot '%s' does not exist", *c);
                        return -ENOENT;
                }
                r = snapshot_mounted(s, digest_hex(*c));
                if (r < 0) {
                        *ret_error = g_strdup_printf("Cannot tell whether snapshot '%s' is mounted: %s", *c,
                                                     strerror(-r));
                        return -EBUSY;
                }
                if (r > 0) {
                        *ret_error = g_strdup_printf("Snapshot '%s' is mounted", *c);
                        return -EBUSY;
                }
        }

        r = snapshot_store_list(s, &all, &n_all);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_all && r >= 0; i++) {
                bool removed = false, parent_removed = false;

                for (char *const *c = chain_ids; c && *c; c++) {
                        removed = removed || streq(*c, all[i].chain_id);
                        parent_removed = parent_removed || streq(*c, all[i].parent);
                }
                if (parent_removed && !removed) {
                        *ret_error = g_strdup_printf("Snapshot '%s' is the parent of '%s'", all[i].parent,
                                                     all[i].chain_id);
                        r = -EBUSY;
                }
        }
        info_array_free(all, n_all);
        if (r < 0)
                return r;

        for (char *const *c = chain_ids; c && *c; c++) {
                _cleanup_free_ char *name = NULL;
                uint64_t rnd = 0;

                /* Rename into tmp/ first: the snapshot disappears atomically; a crash during the slow
                 * removal leaves a tmp/ leftover that the next start removes, never half a snapshot. */
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        rnd = (uint64_t) (c - chain_ids);
                if (asprintf_safe(&name, "rm-%016" PRIx64, rnd) < 0)
                        return -ENOMEM;
                if (renameat(s->dir_fd, digest_hex(*c), s->tmp_fd, name) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                r = rm_rf_at(s->tmp_fd, name, &freed);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove '%s' fully, left in tmp/: %m", *c);
        }
        (void) fsync(s->dir_fd);
        *ret_freed = freed;
        return 0;
}
