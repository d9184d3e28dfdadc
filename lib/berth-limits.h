/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Every quantity a hostile peer (registry, layer author, bus caller) controls has a named limit here. */

/* Bus */
#define BUS_STRING_MAX 4096U                           /* any string argument on the bus */
#define BUS_ARRAY_MAX 1024U                            /* entries in any array argument */
#define TERMINAL_SIZE_MAX 0xffffU                      /* rows or columns (struct winsize: unsigned short) */
#define BUS_INTERNAL_TIMEOUT_USEC (25ULL * 1000000ULL) /* broker → internal service call */
#define PLATFORM_STRING_MAX 256U                       /* "linux/arm64/v8" as a bus argument */
#define REGISTRY_NAME_MAX 255U                         /* Login/Logout registry argument */
#define LOGIN_FIELD_MAX 4096U                          /* Login username and secret */

/* Registry documents */
#define MANIFEST_SIZE_MAX (4U * 1024U * 1024U) /* manifests and indexes (containerd: 4 MiB) */
#define CONFIG_SIZE_MAX (8U * 1024U * 1024U)   /* image config */
#define JSON_DEPTH_MAX 64U
/* Layers per image, one limit for every part: the broker and the fetcher refuse a manifest (or an
 * archive's) with more, the unpacker stacks at most this many lower snapshots, and the supervisor mounts
 * no deeper snapshot chain (IMAGE_MOUNT_LAYERS_MAX). */
#define LAYERS_MAX 256U
#define INDEX_MANIFESTS_MAX 1024U  /* entries in a manifest list / index */
#define REFERENCE_LENGTH_MAX 4096U /* a whole image reference */
#define REPOSITORY_LENGTH_MAX 255U /* distribution spec: name length */
#define TAG_LENGTH_MAX 128U
#define AUTH_CHALLENGE_MAX 4096U /* WWW-Authenticate header */
#define TOKEN_RESPONSE_MAX (1024U * 1024U)
#define HTTP_HEADER_MAX (64U * 1024U)
#define HTTP_ERROR_BODY_MAX (64U * 1024U) /* a registry's error body, kept for its message */
#define REDIRECTS_MAX 5L
#define AUTH_TOKEN_MAX (16U * 1024U) /* a bearer token from a token service */
#define MEDIA_TYPE_LENGTH_MAX 255U   /* a media type as a bus argument (RFC 6838: 127/127) */

/* Registry configuration and credentials (hosts.d, credentials file: admin-written, still bounded) */
#define MIRRORS_MAX 16U /* mirrors per registry */
#define RETRIES_MAX 10U
#define STALL_TIMEOUT_MIN 5U /* seconds */
#define STALL_TIMEOUT_MAX 3600U
#define CREDENTIALS_FILE_MAX (1024U * 1024U)
#define CREDENTIAL_LENGTH_MAX 4096U /* one username or secret */
/* Transfers */
#define TRANSFERS_MAX 64U /* concurrent transfers on the broker */
#define TRANSFERS_PER_USER_MAX 16U
/* A fetcher or unpacker that dies (crash, kill, restart) while a pull needs it is started again by the
 * next call, and the pull resumes (downloads from their partial ingest, with Range): at most this many
 * times per service and pull, then the pull fails. */
#define PULL_SERVICE_RESTARTS_MAX 3U
#define FETCH_PARALLEL_DEFAULT 3U /* blobs downloaded at once (containerd default) */
#define FETCH_PARALLEL_MAX 16U
/* A transfer slower than FETCH_STALL_MIN_BYTES_DEFAULT bytes/s for FETCH_STALL_TIMEOUT_SEC_DEFAULT
 * seconds is cut and retried: a real registry never drops that low, a slow or hostile one that holds a
 * download slot does (issue 12, finding 4). Both are settings ([fetcher] stall-*). */
#define FETCH_QUEUE_MAX (TRANSFERS_MAX * 4U)            /* blob downloads running or queued */
#define FETCH_QUEUE_PER_USER_MAX (FETCH_QUEUE_MAX / 2U) /* of which one user's (issue 12, f4) */
#define FETCH_STALL_TIMEOUT_SEC_DEFAULT 60U
#define FETCH_STALL_MIN_BYTES_DEFAULT 1024U
#define STALL_MIN_BYTES_MAX (1024U * 1024U)
#define FETCH_RETRIES_DEFAULT 3U
#define BLOB_SIZE_MAX (64ULL * 1024ULL * 1024ULL * 1024ULL) /* one blob, as claimed by a descriptor */

/* Unpack */
#define LAYER_UNCOMPRESSED_MAX_DEFAULT (64ULL * 1024ULL * 1024ULL * 1024ULL)
#define LAYER_ENTRIES_MAX_DEFAULT (4U * 1024U * 1024U)
#define PATH_LENGTH_MAX 4096U
#define XATTR_SIZE_MAX_BERTH (64U * 1024U)
#define LAYER_PATH_DEPTH_MAX 128U  /* components in one entry path (systemd tar_x: 128) */
#define LAYER_NAME_LENGTH_MAX 255U /* one path component (NAME_MAX) */
#define LAYER_XATTRS_PER_ENTRY_MAX 128U
#define LAYER_SYMLINK_TARGET_MAX 4095U /* PATH_MAX - 1 */
#define UNPACK_PARALLEL_DEFAULT 2U     /* sandboxed unpack children at once */
#define UNPACK_PARALLEL_MAX 16U
#define UNPACK_QUEUE_MAX 256U /* Unpack calls waiting for a slot */

/* Image views (MountImage): a chain deeper than any image the other services accept cannot be an image's;
 * it was 500, which let a view stack snapshots that no pull or import could have made. */
#define IMAGE_MOUNT_LAYERS_MAX LAYERS_MAX

/* Archives (images import / export): the archive is as hostile as a registry. */
#define ARCHIVE_ENTRIES_MAX 65536U                               /* tar entries in one archive */
#define ARCHIVE_BYTES_MAX (256ULL * 1024ULL * 1024ULL * 1024ULL) /* sum of entry sizes */
#define ARCHIVE_IMAGES_MAX 1024U                                 /* images/names one archive may carry */
#define ARCHIVE_LINK_HOPS_MAX 8U                                 /* docker save layer symlink chains */
#define ARCHIVE_OCI_LAYOUT_SIZE_MAX 4096U                        /* the oci-layout file */
#define ARCHIVE_JOBS_MAX 8U             /* archive children on the fetcher at once */
#define ARCHIVE_EXPORTS_PER_USER_MAX 4U /* running ExportImage calls per uid */
#define ARCHIVE_STALL_TIMEOUT_SEC 600U  /* no byte read/written for that long: abort */
#define ARCHIVE_CALL_TIMEOUT_USEC (24ULL * 3600ULL * 1000000ULL) /* CLI → broker → fetcher */
#define ARCHIVE_RESULT_MAX (8U * 1024U * 1024U) /* the archive child's report to its parent */

/* Content store */
#define INGEST_META_MAX 256U /* an ingest's metadata file (key, expected digest and size) */

/* Metadata */
#define IMAGES_MAX 65536U
#define TAGS_PER_IMAGE_MAX 1024U
#define META_DOCUMENT_MAX (16U * 1024U * 1024U)

/* Messages */
#define QUOTED_INPUT_MAX 200U /* bytes of an untrusted string echoed back in an error message */
