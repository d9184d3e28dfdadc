/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "digest.h"
#include "macro.h"

/* The service's half of an unpack: reads the layer blob from the content store and writes it into a
 * pipe whose other end is the sandboxed child's only view of the layer, hashing every byte on the way.
 *
 * SECURITY (issue 12, finding 5): the child never holds the content-store file (a compromised child could
 * otherwise keep a descriptor to a blob other users' pulls share), and its verdict on the digest is not
 * trusted: the service compares what it fed with the digest the broker expects, itself. The pipe is
 * non-blocking on our side and driven by the event loop: a child that stops reading stalls only its own
 * job. */

typedef struct BlobFeed BlobFeed;

/* Takes blob_fd. *ret_read_end is the pipe's read end (CLOEXEC, blocking) for the child. */
int blob_feed_start(sd_event *event, int blob_fd, DigestAlgorithm algorithm, BlobFeed **ret,
                    int *ret_read_end);
BlobFeed *blob_feed_free(BlobFeed *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(BlobFeed *, blob_feed_free);

/* After the child exited. 0: the whole blob went into the pipe and hashes to expected. -EBADMSG: it
 * hashes to something else (*ret_actual says what). -EPIPE: the child stopped reading before the end.
 * Other < 0: reading the blob failed. */
int blob_feed_verify(BlobFeed *f, const char *expected, char ret_actual[static DIGEST_STRING_MAX]);
