/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "blob-verify.h"
#include "content-store.h"
#include "digest.h"

struct BlobVerify {
        pthread_t thread;
        bool running; /* the thread was started and not joined yet */
        bool cancel;  /* set (atomically) to stop the thread early */
        int fd;
        int event_fd; /* written once by the thread when result is set */
        int result;
        char digest[DIGEST_STRING_MAX];
        sd_event_source *source;
        blob_verify_done_fn done;
        void *userdata;
};

BlobVerify *blob_verify_free(BlobVerify *v) {
        if (!v)
                return NULL;
        if (v->running) {
                __atomic_store_n(&v->cancel, true, __ATOMIC_RELAXED);
                (void) pthread_join(v->thread, NULL);
        }
        sd_event_source_disable_unref(v->source);
        safe_close(v->event_fd);
        safe_close(v->fd);
        return mfree(v);
}

static void *verify_thread(void *userdata) {
        BlobVerify *v = userdata;

        /* Touches nothing but its own fd and fields: the store's tables stay the loop's. */
        v->result = content_store_blob_hashes_to(v->fd, v->digest, &v->cancel);
        (void) eventfd_write(v->event_fd, 1);
        return NULL;
}

static int on_verified(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BlobVerify *v = userdata;
        eventfd_t n;

        (void) eventfd_read(fd, &n);
        (void) pthread_join(v->thread, NULL);
        v->running = false;
        v->source = sd_event_source_disable_unref(v->source);
        v->done(v, v->result, v->userdata);
        return 0;
}

int blob_verify_start(sd_event *event, int fd, const char *digest, blob_verify_done_fn done, void *userdata,
                      BlobVerify **ret) {
        _cleanup_(blob_verify_freep) BlobVerify *v = NULL;
        int r;

        if (strlen(digest) >= DIGEST_STRING_MAX)
                return -EINVAL;
        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->event_fd = -EBADF;
        v->done = done;
        v->userdata = userdata;
        strcpy(v->digest, digest);
        v->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (v->fd < 0)
                return -errno;
        v->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (v->event_fd < 0)
                return -errno;
        r = sd_event_add_io(event, &v->source, v->event_fd, EPOLLIN, on_verified, v);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(v->source, "blob-verify");
        r = pthread_create(&v->thread, NULL, verify_thread, v);
        if (r > 0)
                return -r;
        v->running = true;
        *ret = TAKE_PTR(v);
        return 0;
}
