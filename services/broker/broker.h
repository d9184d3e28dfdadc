/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "image-store.h"
#include "oci-types.h"

typedef struct Manager {
        sd_bus *bus;
        sd_event *event;
        char *state_dir;
        ImageStore *images;
        GHashTable *transfers; /* id (GUINT_TO_POINTER) → Transfer* (owned) */
        uint32_t next_transfer_id;
        sd_bus_slot *progress_match; /* the fetcher's unicast Progress signals */
        struct ContainerManager *containers; /* broker-containers.h */
} Manager;

/* broker-auth.c: the one table that says which polkit action each public method needs. */
const char *broker_action_for_method(const char *member);
int broker_authorize(sd_bus_message *m, const char *const *details,
                     int (*cont)(sd_bus_message *m, void *userdata, sd_bus_error *error), void *userdata,
                     sd_bus_error *error);

/* The same for a method on an object owned by a uid: an action of container-manage becomes
 * container-manage-any when the caller is not the owner. */
int broker_authorize_owned(sd_bus_message *m, uid_t owner, const char *const *details,
                           int (*cont)(sd_bus_message *m, void *userdata, sd_bus_error *error), void *userdata,
                           sd_bus_error *error);

/* broker-info.c */
int method_get_info(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* broker-images.c: PullImage, ListTransfers, ListImages, InspectImage, TagImage, RemoveImage. */
int method_pull_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_transfers(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_images(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_inspect_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_tag_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_remove_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* UnpackImage; broker_start_unpack() is its body after authorisation (ImportImage uses it too): starts
 * (or joins) the unpack of reference for platform ("" = this machine's) and returns the transfer path
 * (borrowed), or sets error. */
int method_unpack_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int broker_start_unpack(Manager *manager, uid_t uid, const char *reference, const char *platform,
                        const char **ret_path, sd_bus_error *error);
/* The record a user's reference names (normalised first), or NotFound/InvalidReference in error. */
int broker_lookup_image(Manager *manager, const char *reference, Image **ret, sd_bus_error *error);
/* The platform of a record this machine runs (the default platform's, or the only one), or with
 * wanted that one; NULL when there is none. */
const ImagePlatform *broker_image_platform(const Image *i, const Platform *wanted);

/* broker-content.c: ListContent, PruneContent, Login, Logout. */
int method_list_content(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_prune_content(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_login(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_logout(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* broker-archive.c: ImportImage, ExportImage. */
int method_import_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_export_image(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* broker-snapshots.c: ListSnapshots, SnapshotInfo, RemoveSnapshots, Usage, MountImage, UnmountImage, and
 * the snapshot half of PruneContent. */
int method_list_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_snapshot_info(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_remove_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_usage(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_mount_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_unmount_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* Removes every snapshot no image, mounted view or running pull needs, then the unpacker's leftovers;
 * calls done once (r < 0 with a message on failure). On an immediate failure returns < 0 and never
 * calls done. */
typedef void (*BrokerGcDone)(void *userdata, int r, uint64_t freed, unsigned removed, const char *error);
int broker_snapshot_gc(Manager *m, BrokerGcDone done, void *userdata);
