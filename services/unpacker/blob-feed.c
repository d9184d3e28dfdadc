/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "blob-feed.h"
#include "log.h"

#define BLOB_FEED_BUFFER_SIZE (256U * 1024U)

struct BlobFeed {
        int blob_fd;
        int pipe_fd; /* write end, non-blocking; closed at the end of the blob */
        sd_event_source *io;
        Hasher *hasher;
        uint8_t *buf;
        size_t buf_len, buf_off;
        uint64_t offset;
        bool done;
        int error;
        char digest[DIGEST_STRING_MAX];
};

BlobFeed *blob_feed_free(BlobFeed *f) {
        if (!f)
                return NULL;
        sd_event_source_disable_unref(f->io);
        safe_close(f->blob_fd);
        safe_close(f->pipe_fd);
        hasher_free(f->hasher);
        free(f->buf);
        return mfree(f);
}

static void blob_feed_stop(BlobFeed *f, int error) {
        f->io = sd_event_source_disable_unref(f->io);
        f->pipe_fd = safe_close(f->pipe_fd); /* the child sees EOF (or we never write again) */
        f->blob_fd = safe_close(f->blob_fd);
        if (error < 0)
                f->error = error;
}

static int blob_feed_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BlobFeed *f = userdata;
        int r;

        for (;;) {
                ssize_t k;

                if (f->buf_off == f->buf_len) {
                        ssize_t n = pread(f->blob_fd, f->buf, BLOB_FEED_BUFFER_SIZE, (off_t) f->offset);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                blob_feed_stop(f, -errno);
                                return 0;
                        }
                        if (n == 0) {
                                r = hasher_finish(f->hasher, f->digest);
                                f->done = r >= 0;
                                blob_feed_stop(f, r);
                                return 0;
                        }
                        r = hasher_update(f->hasher, f->buf, (size_t) n);
                        if (r < 0) {
                                blob_feed_stop(f, r);
                                return 0;
                        }
                        f->offset += (uint64_t) n;
                        f->buf_len = (size_t) n;
                        f->buf_off = 0;
                }
                k = write(f->pipe_fd, f->buf + f->buf_off, f->buf_len - f->buf_off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0; /* the pipe is full: wait for the child */
                        /* EPIPE: the child is gone or closed its end; its report says why. */
                        blob_feed_stop(f, errno == EPIPE ? -EPIPE : -errno);
                        return 0;
                }
                f->buf_off += (size_t) k;
        }
}

int blob_feed_start(sd_event *event, int blob_fd, DigestAlgorithm algorithm, BlobFeed **ret,
                    int *ret_read_end) {
        _cleanup_(blob_feed_freep) BlobFeed *f = NULL;
        int p[2], r;

        f = calloc(1, sizeof(*f));
        if (!f) {
                safe_close(blob_fd);
                return -ENOMEM;
        }
        f->blob_fd = blob_fd;
        f->pipe_fd = -EBADF;
        f->buf = malloc(BLOB_FEED_BUFFER_SIZE);
        if (!f->buf)
                return -ENOMEM;
        r = hasher_new(algorithm, &f->hasher);
        if (r < 0)
                return r;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        f->pipe_fd = p[1];
        if (fcntl(f->pipe_fd, F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                safe_close(p[0]);
                return r;
        }
        r = sd_event_add_io(event, &f->io, f->pipe_fd, EPOLLOUT, blob_feed_on_io, f);
        if (r < 0) {
                safe_close(p[0]);
                return r;
        }
        (void) sd_event_source_set_description(f->io, "unpack-blob-feed");
        *ret_read_end = p[0];
        *ret = TAKE_PTR(f);
        return 0;
}

int blob_feed_verify(BlobFeed *f, const char *expected, char ret_actual[static DIGEST_STRING_MAX]) {
        ret_actual[0] = '\0';
        if (f->error < 0)
                return f->error;
        if (!f->done)
                return -EPIPE; /* the child exited (claiming success or not) before the blob's end */
        (void) snprintf(ret_actual, DIGEST_STRING_MAX, "%s", f->digest);
        return digest_equal(f->digest, expected) ? 0 : -EBADMSG;
}
