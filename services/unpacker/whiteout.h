/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

/* OCI whiteouts, converted to overlayfs whiteouts in the layer's own snapshot (which becomes one
 * lowerdir of an overlay later): ".wh.NAME" → character device 0/0 "NAME"; ".wh..wh..opq" → xattr
 * trusted.overlay.opaque=y on the directory. The marker files themselves are never written. */

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_META_PREFIX ".wh..wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define OVERLAY_OPAQUE_XATTR "trusted.overlay.opaque"

typedef enum WhiteoutKind {
        WHITEOUT_NONE, /* an ordinary entry */
        WHITEOUT_FILE, /* ".wh.NAME": NAME is deleted */
        WHITEOUT_DIR_OPAQUE,
        WHITEOUT_IGNORE, /* other ".wh..wh.*" names: AUFS metadata, skipped like Docker does */
} WhiteoutKind;

/* Classifies the last path component. For WHITEOUT_FILE, *ret_target points at NAME inside name.
 * -EBADMSG for malformed whiteouts (".wh.", ".wh..", ".wh..."). */
int whiteout_classify(const char *name, WhiteoutKind *ret, const char **ret_target);

/* Replaces whatever is at (parent_fd, target) by a 0/0 character device owned by uid:gid. Nothing is
 * followed: a symlink named target is removed itself, never its destination. */
int whiteout_create(int parent_fd, const char *target, uid_t uid, gid_t gid);

/* Marks the directory open on dir_fd (a real fd, not O_PATH) opaque. */
int whiteout_make_opaque(int dir_fd);
