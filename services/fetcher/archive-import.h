/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "archive-job.h"
#include "content-store.h"

/* ImportArchive's child: reads an OCI image layout archive (tar of oci-layout, index.json,
 * blobs/<alg>/<hex>; gzip or zstd compressed or not) or a `docker save` tarball (manifest.json,
 * <id>.json configs, <dir>/layer.tar) from fd, once, as a stream, and commits every blob through a
 * private ingest: blobs/<alg>/<hex> must hash to <hex>, docker save files are named by their hash. For
 * docker save it synthesises and stores an OCI manifest per image. Result: {"images": [{"name",
 * "digest", "media_type", "size"}]} where name is what the archive says (a full reference, a bare tag,
 * or "" when it names none): the broker decides what to make of it. */
int archive_import(ContentStore *store, int fd, ArchiveReport *rep);
