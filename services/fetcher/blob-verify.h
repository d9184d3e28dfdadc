/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "macro.h"

/* Re-hashes a committed blob (content_store_blob_hashes_to()) in a thread of its own, so that a large
 * blob (up to BLOB_SIZE_MAX) does not stop the fetcher's event loop, every other transfer and every bus
 * call with it, for as long as hashing it takes; done() runs on the loop with the answer: 1 it hashes to
 * digest, 0 it does not, or -errno. */
typedef struct BlobVerify BlobVerify;
typedef void (*blob_verify_done_fn)(BlobVerify *v, int hashes, void *userdata);

/* fd is borrowed (duplicated); digest is copied. */
int blob_verify_start(sd_event *event, int fd, const char *digest, blob_verify_done_fn done, void *userdata,
                      BlobVerify **ret);
/* Stops the thread if it still runs (only at shutdown: within one 128 KiB read); done() is not called. */
BlobVerify *blob_verify_free(BlobVerify *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(BlobVerify *, blob_verify_free);
