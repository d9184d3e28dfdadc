/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "macro.h"

/* snapshots/<chain-id hex>/{fs/,snapshot.json}: committed, never modified again.
 * snapshots/tmp/<random>/{fs/,snapshot.json}: work in progress; renamed to <hex> only after both
 * digests matched. A service killed at any point leaves only tmp/ entries, removed at start-up. */

typedef struct SnapshotInfo {
        char *chain_id;
        char *parent; /* "" for a base layer */
        char *diff_id;
        char *layer_digest;
        uint64_t size; /* bytes of the uncompressed layer stream */
        uint32_t entries;
        uint64_t created; /* CLOCK_REALTIME usec */
} SnapshotInfo;

void snapshot_info_done(SnapshotInfo *i);

typedef struct SnapshotStore {
        char *path;
        int dir_fd;
        int tmp_fd;
        /* Where mounts are read from to refuse removing a mounted snapshot: /proc/self/mountinfo unless
         * NULL is replaced (tests point it at a file that cannot be read). */
        const char *mountinfo_path;
} SnapshotStore;

/* Creates path (0700) and path/tmp, and removes every tmp/ leftover: nothing runs yet. */
int snapshot_store_open(const char *path, SnapshotStore **ret);
SnapshotStore *snapshot_store_free(SnapshotStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnapshotStore *, snapshot_store_free);

/* A new tmp/<random>/ with an empty fs/ (0755). Returns its name, the fs/ fd and fs/'s full path. */
int snapshot_store_new_work(SnapshotStore *s, char **ret_name, int *ret_fs_fd, char **ret_fs_path);
int snapshot_store_discard_work(SnapshotStore *s, const char *name);
/* Removes tmp/ entries whose names are not in in_use (NULL-terminated, may be NULL). */
int snapshot_store_clean_work(SnapshotStore *s, char *const *in_use, uint64_t *ret_freed);

/* Writes snapshot.json into tmp/<name>, syncs, and renames tmp/<name> to <chain hex>. */
int snapshot_store_commit(SnapshotStore *s, const char *name, const SnapshotInfo *info);

/* 0 and *ret filled if committed, -ENOENT if not. ret may be NULL. */
int snapshot_store_get(SnapshotStore *s, const char *chain_id, SnapshotInfo *ret);
int snapshot_store_list(SnapshotStore *s, SnapshotInfo **ret, size_t *ret_n);
/* Removes the given committed snapshots. Refuses (-EBUSY, message) if another snapshot not in the set
 * has one as parent, or one is mounted; -ENOENT if one is not there. Nothing is removed then. */
int snapshot_store_remove(SnapshotStore *s, char *const *chain_ids, uint64_t *ret_freed, char **ret_error);
