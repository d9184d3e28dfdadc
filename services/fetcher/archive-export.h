/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "archive-job.h"
#include "content-store.h"

/* ExportArchive's child: writes an OCI image layout as a tar stream to fd: blobs/, blobs/<alg>/, every
 * blobs/<alg>/<hex> of digests (sorted, unique, all present: the caller checked), index.json
 * (index_json verbatim), oci-layout. Deterministic: sorted names, pax/ustar headers, mtime 0, uid/gid 0,
 * files 0644, directories 0755, no user or group names. Streams (no temporary file); short writes,
 * EINTR and EAGAIN are handled, EPIPE ends the export. Result: {"bytes": N}. */
int archive_export(ContentStore *store, int fd, const char *index_json, char *const *digests,
                   ArchiveReport *rep);
