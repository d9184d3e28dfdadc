/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The container's own part of an exec plan, parsed and compiled once per container (exec-base.h).
 *
 * SECURITY: config.json is ours (the supervisor wrote it into the container's state directory, which only
 * root can write); the cache holds what reading it gave, and is used only while a fresh stat of that
 * file (not following a symlink, in the state directory) matches the fd it was read through, and the
 * container's init is the one it was read for. Anything else is read (O_NOFOLLOW) and compiled again. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec-base.h"
#include "fs-util.h"
#include "json-util.h"

typedef struct ExecBase {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime, ctime;
        uint32_t pid;
        Spec spec;
        SeccompPrograms programs;
} ExecBase;

static GHashTable *cache; /* container id → ExecBase* */

static void exec_base_free(void *p) {
        ExecBase *b = p;

        seccomp_programs_done(&b->programs);
        spec_done(&b->spec);
        free(b);
}

static bool same_time(const struct timespec *a, const struct timespec *b) {
        return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool exec_base_matches(const ExecBase *b, const struct stat *st, uint32_t pid) {
        return b->dev == st->st_dev && b->ino == st->st_ino && b->size == st->st_size &&
               same_time(&b->mtime, &st->st_mtim) && same_time(&b->ctime, &st->st_ctim) && b->pid == pid;
}

static int exec_base_load(int fd, ExecBase *b, char **ret_error) {
        _cleanup_free_ char *data = NULL;
        g_autoptr(JsonNode) root = NULL;
        BerthError err = {};
        size_t size;
        int r;

        r = read_regular_file_fd(fd, CONTAINER_SPEC_MAX, &data, &size);
        if (r < 0)
                return json_set_error(ret_error, -r, "cannot read the container's config.json: %s",
                                      strerror(-r));
        r = json_parse_bounded(data, size, CONTAINER_SPEC_MAX, &root, ret_error);
        if (r < 0)
                return r;
        r = spec_parse(root, &b->spec, &err);
        if (r < 0)
                return json_set_error(ret_error, -r, "%s", err.message);
        r = seccomp_build(&b->spec, &b->programs, &err);
        if (r < 0)
                return json_set_error(ret_error, -r, "%s", err.message);
        return 0;
}

int exec_base_get(Container *c, const Spec **ret_spec, const SeccompPrograms **ret_programs,
                  char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        ExecBase *b;
        struct stat st;
        int r;

        if (!cache)
                cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, exec_base_free);
        b = g_hash_table_lookup(cache, c->id);
        /* A hit needs only the file's identity (a symlink put there would not match: not followed); a
         * miss reads it through an fd, and the cache keeps that fd's fstat(), not the path's. */
        if (b && fstatat(c->state_dir_fd, "config.json", &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
            exec_base_matches(b, &st, c->pid)) {
                *ret_spec = &b->spec;
                *ret_programs = &b->programs;
                return 0;
        }
        g_hash_table_remove(cache, c->id);
        fd = openat(c->state_dir_fd, "config.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return json_set_error(ret_error, errno, "cannot open the container's config.json: %m");
        b = calloc(1, sizeof(*b));
        if (!b)
                return json_set_error(ret_error, ENOMEM, "out of memory");
        *b = (ExecBase){ .dev = st.st_dev,
                         .ino = st.st_ino,
                         .size = st.st_size,
                         .mtime = st.st_mtim,
                         .ctime = st.st_ctim,
                         .pid = c->pid };
        r = exec_base_load(fd, b, ret_error);
        if (r < 0) {
                exec_base_free(b);
                return r;
        }
        if (g_hash_table_size(cache) >= EXEC_BASE_CACHE_MAX)
                g_hash_table_remove_all(cache);
        g_hash_table_insert(cache, g_strdup(c->id), b);
        *ret_spec = &b->spec;
        *ret_programs = &b->programs;
        return 0;
}
