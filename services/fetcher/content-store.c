/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), renameat2(), reallocarray() */
#endif
#include <dirent.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "berth-limits.h"
#include "content-store.h"
#include "fs-at.h"
#include "fs-util.h"
#include "log.h"

struct ContentStore {
        int root_fd;
        int blobs_fd[_DIGEST_ALGORITHM_MAX]; /* blobs/sha256, blobs/sha512 */
        int ingest_fd;
        /* Keys of the named ingests open now: one writer per ingest (issue 12 finding 2). */
        GHashTable *writers;
        /* "dev:ino:size:mtime" of blobs re-hashed by content_store_open_blob_verified() */
        GHashTable *verified;
};

struct Ingest {
        ContentStore *store;
        char digest[DIGEST_STRING_MAX];
        DigestAlgorithm algorithm;
        char key[DIGEST_STRING_MAX]; /* "<alg>-<hex>" */
        int dir_fd;
        int data_fd;
        uint64_t total;
        Hasher *hasher;
        bool anonymous;  /* ingest_open_anonymous(): private key; digest "" = learn it from the bytes */
        bool registered; /* its key is in store->writers */
};

static const char *const algorithm_dir[_DIGEST_ALGORITHM_MAX] = {
        [DIGEST_SHA256] = "sha256",
        [DIGEST_SHA512] = "sha512",
};

static int mkdirat_open(int dir_fd, const char *name, int *ret) {
        int fd;

        if (mkdirat(dir_fd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

static int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

ContentStore *content_store_free(ContentStore *s) {
        if (!s)
                return NULL;
        safe_close(s->root_fd);
        for (size_t i = 0; i < _DIGEST_ALGORITHM_MAX; i++)
                safe_close(s->blobs_fd[i]);
        safe_close(s->ingest_fd);
        if (s->writers)
                g_hash_table_destroy(s->writers);
        if (s->verified)
                g_hash_table_destroy(s->verified);
        return mfree(s);
}

int content_store_open(const char *path, ContentStore **ret) {
        _cleanup_(content_store_freep) ContentStore *s = NULL;
        _cleanup_close_ int blobs = -EBADF;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->root_fd = s->ingest_fd = -EBADF;
        for (size_t i = 0; i < _DIGEST_ALGORITHM_MAX; i++)
                s->blobs_fd[i] = -EBADF;
        s->writers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        s->verified = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

        r = mkdir_parents(path);
        if (r < 0)
                return r;
        s->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0)
                return -errno;
        r = mkdirat_open(s->root_fd, "blobs", &blobs);
        if (r < 0)
                return r;
        for (size_t i = 0; i < _DIGEST_ALGORITHM_MAX; i++) {
                r = mkdirat_open(blobs, algorithm_dir[i], &s->blobs_fd[i]);
                if (r < 0)
                        return r;
        }
        r = mkdirat_open(s->root_fd, "ingest", &s->ingest_fd);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

static int blob_dir(ContentStore *s, const char *digest, DigestAlgorithm *ret_alg) {
        DigestAlgorithm alg;
        int r;

        /* SECURITY: the only gate between a string and a path: strictly "<alg>:<lowercase hex>". */
        r = digest_validate(digest, &alg);
        if (r < 0)
                return r;
        if (ret_alg)
                *ret_alg = alg;
        return s->blobs_fd[alg];
}

int content_store_open_blob(ContentStore *s, const char *digest, int *ret_fd, uint64_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int dfd;

        dfd = blob_dir(s, digest, NULL);
        if (dfd < 0)
                return dfd;
        fd = openat(dfd, digest_hex(digest), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (ret_size)
                *ret_size = (uint64_t) st.st_size;
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return 0;
}

int content_store_has_blob(ContentStore *s, const char *digest) {
        struct stat st;
        int dfd;

        dfd = blob_dir(s, digest, NULL);
        if (dfd < 0)
                return dfd;
        if (fstatat(dfd, digest_hex(digest), &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        return S_ISREG(st.st_mode);
}

static bool is_hex_name(const char *s, size_t len) {
        if (strlen(s) != len)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

int content_store_list(ContentStore *s, BlobInfo **ret, size_t *ret_n) {
        _cleanup_free_ BlobInfo *list = NULL;
        size_t n = 0, allocated = 0;

        for (size_t a = 0; a < _DIGEST_ALGORITHM_MAX; a++) {
                _cleanup_closedir_ DIR *d = NULL;
                struct dirent *de;
                size_t hexlen = a == DIGEST_SHA256 ? 64 : 128;
                int r;

                r = opendir_at(s->blobs_fd[a], ".", &d);
                if (r < 0)
                        return r;
                while ((de = readdir(d))) {
                        struct stat st;

                        if (!is_hex_name(de->d_name, hexlen))
                                continue;
                        if (fstatat(s->blobs_fd[a], de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISREG(st.st_mode))
                                continue;
                        if (n >= allocated) {
                                BlobInfo *nl;

                                allocated = allocated ? allocated * 2 : 64;
                                nl = reallocarray(list, allocated, sizeof(BlobInfo));
                                if (!nl)
                                        return -ENOMEM;
                                list = nl;
                        }
                        snprintf(list[n].digest, sizeof(list[n].digest), "%s:%s", algorithm_dir[a],
                                 de->d_name);
                        list[n].size = (uint64_t) st.st_size;
                        list[n].mtime_usec = (uint64_t) st.st_mtim.tv_sec * 1000000ULL +
                                             (uint64_t) st.st_mtim.tv_nsec / 1000ULL;
                        n++;
                }
        }
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

int content_store_remove_blob(ContentStore *s, const char *digest, uint64_t *freed) {
        struct stat st;
        int dfd;

        dfd = blob_dir(s, digest, NULL);
        if (dfd < 0)
                return dfd;
        if (fstatat(dfd, digest_hex(digest), &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (unlinkat(dfd, digest_hex(digest), 0) < 0)
                return -errno;
        if (freed)
                *freed += (uint64_t) st.st_size;
        return 0;
}

static int remove_ingest_dir(int ingest_fd, const char *key, uint64_t *freed) {
        static const char *const files[] = { "data", "ref", "total" };
        _cleanup_close_ int dfd = -EBADF;

        dfd = openat(ingest_fd, key, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return errno == ENOENT ? 0 : -errno;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                struct stat st;

                if (freed && fstatat(dfd, files[i], &st, AT_SYMLINK_NOFOLLOW) >= 0)
                        *freed += (uint64_t) st.st_size;
                if (unlinkat(dfd, files[i], 0) < 0 && errno != ENOENT)
                        return -errno;
        }
        if (unlinkat(ingest_fd, key, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static bool ingest_key_to_digest(const char *key, char ret[static DIGEST_STRING_MAX]) {
        const char *dash = strchr(key, '-');
        size_t l;

        if (!dash || (size_t) (dash - key) > 6 || strlen(key) >= DIGEST_STRING_MAX)
                return false;
        l = (size_t) (dash - key);
        memcpy(ret, key, l);
        ret[l] = ':';
        strcpy(ret + l + 1, dash + 1);
        return digest_is_valid(ret);
}

int content_store_clean_ingests(ContentStore *s, uint64_t min_age_usec,
                                bool (*in_use)(const char *digest, void *ud), void *userdata,
                                uint64_t *ret_freed) {
        _cleanup_close_ int fd = -EBADF;
        struct timespec now;
        uint64_t now_usec, freed = 0;
        struct dirent *de;
        _cleanup_closedir_ DIR *d = NULL;
        int r = 0;

        clock_gettime(CLOCK_REALTIME, &now);
        now_usec = (uint64_t) now.tv_sec * 1000000ULL + (uint64_t) now.tv_nsec / 1000ULL;

        fd = openat(s->ingest_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        while ((de = readdir(d))) {
                char digest[DIGEST_STRING_MAX];
                struct stat st;
                uint64_t mtime, newest;
                _cleanup_close_ int dfd = -EBADF;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(s->ingest_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                newest = (uint64_t) st.st_mtim.tv_sec * 1000000ULL + (uint64_t) st.st_mtim.tv_nsec / 1000ULL;
                dfd = openat(s->ingest_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (dfd >= 0 && fstatat(dfd, "data", &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                        mtime = (uint64_t) st.st_mtim.tv_sec * 1000000ULL +
                                (uint64_t) st.st_mtim.tv_nsec / 1000ULL;
                        if (mtime > newest)
                                newest = mtime;
                }
                /* SECURITY: min_age_usec comes off the bus; "newest + min_age" could wrap around and
                 * make a huge age mean "remove everything". Compare the age instead. */
                if (newest > now_usec || now_usec - newest < min_age_usec)
                        continue;
                if (ingest_key_to_digest(de->d_name, digest) && in_use && in_use(digest, userdata))
                        continue;
                /* Archive imports' private ingests: the caller says whether any import is running. */
                if (strncmp(de->d_name, INGEST_ANONYMOUS_PREFIX, strlen(INGEST_ANONYMOUS_PREFIX)) == 0 &&
                    in_use && in_use(de->d_name, userdata))
                        continue;
                r = remove_ingest_dir(s->ingest_fd, de->d_name, &freed);
                if (r < 0)
                        break;
        }
        if (ret_freed)
                *ret_freed = freed;
        return r;
}

static int write_small_file(int dir_fd, const char *name, const char *contents) {
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        return loop_write(fd, contents, strlen(contents));
}

static int read_small_file(int dir_fd, const char *name, char *buf, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        ssize_t k;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        k = read(fd, buf, size - 1);
        if (k < 0)
                return -errno;
        buf[k] = '\0';
        return 0;
}

Ingest *ingest_free(Ingest *i) {
        if (!i)
                return NULL;
        if (i->registered)
                g_hash_table_remove(i->store->writers, i->key);
        safe_close(i->dir_fd);
        safe_close(i->data_fd);
        hasher_free(i->hasher);
        return mfree(i);
}

uint64_t ingest_offset(const Ingest *i) {
        return hasher_bytes(i->hasher);
}

uint64_t ingest_total(const Ingest *i) {
        return i->total;
}

/* The "ref" and "total" files that let a later ingest_open() decide whether data can be resumed. */
static int ingest_write_meta(Ingest *i) {
        char total[32];
        int r;

        r = write_small_file(i->dir_fd, "ref", i->digest);
        if (r < 0)
                return r;
        snprintf(total, sizeof(total), "%" PRIu64, i->total);
        return write_small_file(i->dir_fd, "total", total);
}

static int ingest_create(Ingest *i) {
        int r;

        r = remove_ingest_dir(i->store->ingest_fd, i->key, NULL);
        if (r < 0)
                return r;
        i->dir_fd = safe_close(i->dir_fd);
        i->data_fd = safe_close(i->data_fd);
        r = mkdirat_open(i->store->ingest_fd, i->key, &i->dir_fd);
        if (r < 0)
                return r;
        r = ingest_write_meta(i);
        if (r < 0)
                return r;
        i->data_fd = openat(i->dir_fd, "data", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (i->data_fd < 0)
                return -errno;
        i->hasher = hasher_free(i->hasher);
        return hasher_new(i->algorithm, &i->hasher);
}

/* Re-hash an existing partial download; returns 1 if it can be resumed, 0 if it must be recreated. */
static int ingest_try_resume(Ingest *i) {
        char ref[INGEST_META_MAX], total[32], *end;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        uint64_t t;
        int r;

        i->dir_fd = openat(i->store->ingest_fd, i->key, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (i->dir_fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (read_small_file(i->dir_fd, "ref", ref, sizeof(ref)) < 0 || !streq(ref, i->digest))
                return 0;
        if (read_small_file(i->dir_fd, "total", total, sizeof(total)) < 0)
                return 0;
        errno = 0;
        t = strtoull(total, &end, 10);
        if (errno != 0 || *end || end == total || t != i->total)
                return 0;
        i->data_fd = openat(i->dir_fd, "data", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (i->data_fd < 0)
                return 0;
        if (fstat(i->data_fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size > i->total)
                return 0;

        r = hasher_new(i->algorithm, &i->hasher);
        if (r < 0)
                return r;
        buf = malloc(128 * 1024);
        if (!buf)
                return -ENOMEM;
        /* Like containerd: there is no saved hash state we could trust, so the bytes are hashed again. */
        for (uint64_t left = (uint64_t) st.st_size; left > 0;) {
                ssize_t k = read(i->data_fd, buf, left < 128 * 1024 ? (size_t) left : 128 * 1024);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return 0;
                r = hasher_update(i->hasher, buf, (size_t) k);
                if (r < 0)
                        return r;
                left -= (uint64_t) k;
        }
        if (lseek(i->data_fd, 0, SEEK_END) < 0)
                return -errno;
        return 1;
}

int ingest_open(ContentStore *s, const char *digest, uint64_t total, Ingest **ret) {
        _cleanup_(ingest_freep) Ingest *i = NULL;
        int r;

        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->store = s;
        i->dir_fd = i->data_fd = -EBADF;
        i->total = total;
        r = digest_validate(digest, &i->algorithm);
        if (r < 0)
                return r;
        strcpy(i->digest, digest);
        snprintf(i->key, sizeof(i->key), "%s-%s", algorithm_dir[i->algorithm], digest_hex(digest));

        /* SECURITY: one writer per ingest. A second writer of the same partial file would truncate it
         * under the first, and whoever commits renames a file the other still writes through its fd:
         * bytes landing in a committed blob after its verification (issue 12 finding 2). Only this
         * process writes named ingests (the archive child and content_store_write_buffer() use private
         * ones), so an in-process registry is the whole rule. */
        if (g_hash_table_contains(s->writers, i->key))
                return -EBUSY;
        g_hash_table_add(s->writers, g_strdup(i->key));
        i->registered = true;

        r = ingest_try_resume(i);
        if (r < 0)
                return r;
        if (r == 0) {
                i->hasher = hasher_free(i->hasher);
                r = ingest_create(i);
                if (r < 0)
                        return r;
        } else
                log_debug("Resuming ingest of %s at offset %" PRIu64 "/%" PRIu64, digest, ingest_offset(i),
                          total);

        *ret = TAKE_PTR(i);
        return 0;
}

int ingest_write(Ingest *i, const void *data, size_t size) {
        int r;

        /* SECURITY: stop as soon as the peer sends more than the descriptor promised. */
        if (size > i->total - ingest_offset(i))
                return -EFBIG;
        r = loop_write(i->data_fd, data, size);
        if (r < 0)
                return r;
        return hasher_update(i->hasher, data, size);
}

int ingest_reset(Ingest *i) {
        if (ftruncate(i->data_fd, 0) < 0)
                return -errno;
        if (lseek(i->data_fd, 0, SEEK_SET) < 0)
                return -errno;
        i->hasher = hasher_free(i->hasher);
        return hasher_new(i->algorithm, &i->hasher);
}

int ingest_abort(Ingest *i) {
        i->data_fd = safe_close(i->data_fd);
        i->dir_fd = safe_close(i->dir_fd);
        return remove_ingest_dir(i->store->ingest_fd, i->key, NULL);
}

int ingest_commit(Ingest *i, int *ret_fd, char *ret_actual) {
        char actual[DIGEST_STRING_MAX];
        uint64_t size = ingest_offset(i);
        int bfd = i->store->blobs_fd[i->algorithm];
        int r;

        r = hasher_finish(i->hasher, actual);
        if (r < 0)
                return r;
        if (ret_actual)
                strcpy(ret_actual, actual);
        if (i->anonymous && isempty(i->digest))
                strcpy(i->digest, actual); /* named by what the bytes hash to */
        if (size != i->total || !digest_equal(actual, i->digest)) {
                (void) ingest_abort(i);
                return size != i->total ? -EPIPE : -EBADMSG;
        }

        if (fsync(i->data_fd) < 0)
                return -errno;
        if (fchmod(i->data_fd, 0444) < 0)
                return -errno;
        /* RENAME_NOREPLACE: a blob already committed under this digest has the same bytes; keep it. */
        if (renameat2(i->dir_fd, "data", bfd, digest_hex(i->digest), RENAME_NOREPLACE) < 0 &&
            errno != EEXIST)
                return -errno;
        (void) fsync(bfd);
        (void) ingest_abort(i);

        if (ret_fd) {
                int fd = openat(bfd, digest_hex(i->digest), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
                if (fd < 0)
                        return -errno;
                *ret_fd = fd;
        }
        return 0;
}

int content_store_write_buffer(ContentStore *s, const char *digest, const void *data, size_t size,
                               int *ret_fd) {
        _cleanup_(ingest_freep) Ingest *i = NULL;
        int r;

        r = content_store_has_blob(s, digest);
        if (r < 0)
                return r;
        if (r > 0) {
                if (!ret_fd)
                        return 0;
                return content_store_open_blob(s, digest, ret_fd, NULL);
        }
        /* SECURITY: a private ingest, never the named one a FetchBlob of the same digest may be writing
         * (issue 12 finding 2: truncating and committing that one left the download's fd writing into
         * the committed blob). The commit renames with RENAME_NOREPLACE, so if the download commits first
         * its blob (same bytes) stays. */
        r = ingest_open_anonymous(s, digest, size, &i);
        if (r < 0)
                return r;
        r = ingest_write(i, data, size);
        if (r >= 0)
                r = ingest_commit(i, ret_fd, NULL);
        if (r < 0)
                (void) ingest_abort(i);
        return r;
}

int content_store_blob_hashes_to(int fd, const char *digest, const bool *cancel) {
        DigestAlgorithm alg;
        _cleanup_(hasher_freep) Hasher *h = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        char actual[DIGEST_STRING_MAX];
        uint64_t off = 0;
        int r;

        r = digest_validate(digest, &alg);
        if (r < 0)
                return r;
        r = hasher_new(alg, &h);
        if (r < 0)
                return r;
        buf = malloc(128 * 1024);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;

                if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED))
                        return -ECANCELED;
                k = pread_full(fd, buf, 128 * 1024, (off_t) off);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        break;
                r = hasher_update(h, buf, (size_t) k);
                if (r < 0)
                        return r;
                off += (uint64_t) k;
        }
        r = hasher_finish(h, actual);
        if (r < 0)
                return r;
        return digest_equal(actual, digest);
}

static char *blob_key(const struct stat *st) {
        return g_strdup_printf("%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64 ".%09ld",
                               (uint64_t) st->st_dev, (uint64_t) st->st_ino, (uint64_t) st->st_size,
                               (uint64_t) st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

int content_store_open_blob_to_verify(ContentStore *s, const char *digest, int *ret_fd, uint64_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        g_autofree char *key = NULL;
        struct stat st;
        uint64_t size;
        int r;

        r = content_store_open_blob(s, digest, &fd, &size);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        key = blob_key(&st);
        /* SECURITY: a name another user's pull would take as "present" is re-hashed once per inode and
         * fetcher instance (committed blobs are 0444 and nobody holds a writable fd on them, so once is
         * enough). */
        r = g_hash_table_contains(s->verified, key);
        if (ret_size)
                *ret_size = size;
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return r;
}

int content_store_blob_verdict(ContentStore *s, const char *digest, int fd, int hashes) {
        struct stat st, now;
        DigestAlgorithm alg;
        int dfd;

        if (hashes < 0)
                return hashes;
        dfd = blob_dir(s, digest, &alg);
        if (dfd < 0)
                return dfd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (hashes == 0) {
                /* A blob that no longer hashes to its name is removed (if the name is still that inode),
                 * and the caller downloads it again, instead of serving it to everyone until a prune. */
                log_warning("Blob '%s' in the content store does not hash to its name; removing it.",
                            digest);
                if (fstatat(dfd, digest_hex(digest), &now, AT_SYMLINK_NOFOLLOW) >= 0 &&
                    now.st_dev == st.st_dev && now.st_ino == st.st_ino &&
                    unlinkat(dfd, digest_hex(digest), 0) < 0 && errno != ENOENT)
                        return -errno;
                return -ENOENT;
        }
        if (g_hash_table_size(s->verified) >= 65536)
                g_hash_table_remove_all(s->verified);
        g_hash_table_add(s->verified, blob_key(&st));
        return 0;
}

int content_store_open_blob_verified(ContentStore *s, const char *digest, int *ret_fd, uint64_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t size;
        int r;

        r = content_store_open_blob_to_verify(s, digest, &fd, &size);
        if (r < 0)
                return r;
        if (r == 0) {
                r = content_store_blob_verdict(s, digest, fd,
                                               content_store_blob_hashes_to(fd, digest, NULL));
                if (r < 0)
                        return r;
        }
        if (ret_size)
                *ret_size = size;
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return 0;
}

int ingest_open_anonymous(ContentStore *s, const char *expected, uint64_t total, Ingest **ret) {
        _cleanup_(ingest_freep) Ingest *i = NULL;
        uint8_t rnd[16];
        int r;

        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->store = s;
        i->dir_fd = i->data_fd = -EBADF;
        i->total = total;
        i->anonymous = true;
        i->algorithm = DIGEST_SHA256;
        if (expected) {
                r = digest_validate(expected, &i->algorithm);
                if (r < 0)
                        return r;
                strcpy(i->digest, expected);
        }
        /* A private key: never shared with (or resumed by) a FetchBlob of the same digest. */
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
                return -EIO;
        r = snprintf(i->key, sizeof(i->key), "%s", INGEST_ANONYMOUS_PREFIX);
        for (size_t k = 0; k < sizeof(rnd); k++)
                r += snprintf(i->key + r, sizeof(i->key) - (size_t) r, "%02x", rnd[k]);

        r = mkdirat_open(s->ingest_fd, i->key, &i->dir_fd);
        if (r < 0)
                return r;
        r = ingest_write_meta(i);
        if (r >= 0) {
                i->data_fd =
                        openat(i->dir_fd, "data", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (i->data_fd < 0)
                        r = -errno;
        }
        if (r >= 0)
                r = hasher_new(i->algorithm, &i->hasher);
        if (r < 0) {
                (void) ingest_abort(i);
                return r;
        }
        *ret = TAKE_PTR(i);
        return 0;
}

size_t content_store_fds(ContentStore *s, int *fds, size_t n) {
        size_t k = 0;

        if (k < n && s->root_fd >= 0)
                fds[k++] = s->root_fd;
        for (size_t i = 0; i < ELEMENTSOF(s->blobs_fd); i++)
                if (k < n && s->blobs_fd[i] >= 0)
                        fds[k++] = s->blobs_fd[i];
        if (k < n && s->ingest_fd >= 0)
                fds[k++] = s->ingest_fd;
        return k;
}
