/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "image-store.h"
#include "oci-ref.h"
#include "oci-types.h"

typedef struct Manager {
        sd_bus *bus;
        sd_event *event;
        char *state_dir;
        ImageStore *images;
        GHashTable *transfers; /* id (GUINT_TO_POINTER) → Transfer* (owned) */
        uint32_t next_transfer_id;
        sd_bus_slot *progress_match; /* the fetcher's unicast Progress signals */
        sd_bus_slot *fetcher_owner_match;
        char *fetcher_owner; /* unique name of the fetcher now owning its name (NameOwnerChanged), or NULL */
        struct ContainerManager *containers; /* broker-containers.h */
        /* owner-signal.h: signals about a user's objects go to that user */
        struct OwnerSignals *owner_signals;
} Manager;

/* broker-api.c: the vtable of org.berth.Broker1.Manager. */
extern const sd_bus_vtable broker_manager_vtable[];

/* broker-auth.c: the one table that says which polkit action each public method needs. */
const char *broker_action_for_method(const char *member);
/* The member the i-th rule of the table is for, NULL past the end (for tests that hold the table against
 * the vtables). */
const char *broker_auth_rule_member(size_t i);
/* Every public handler: reads its arguments once (into a struct of its own; strings and fds may stay
 * borrowed from m, which lives until the continuation ran), puts the security-relevant ones in details,
 * and calls broker_authorize(). The continuation runs once the caller is authorised, with a copy of
 * the arguments (args_size bytes); args_done(args), if given, frees what they own once the continuation
 * ran or the check ended without it (the args are the check's from the call on, even on failure). The
 * continuation replies itself (returns 1, or the reply's r) or returns < 0 with error set (or an errno
 * that lib/bus-error.h names). */
typedef int (*broker_continuation_t)(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error);
int broker_authorize(sd_bus_message *m, const char *const *details, broker_continuation_t cont,
                     Manager *manager, const void *args, size_t args_size, void (*args_done)(void *args),
                     sd_bus_error *error);

/* The same with an action the handler chose from its arguments (one of broker-auth.c's functions). */
int broker_authorize_action(sd_bus_message *m, const char *action, const char *const *details,
                            broker_continuation_t cont, Manager *manager, const void *args, size_t args_size,
                            void (*args_done)(void *args), sd_bus_error *error);
/* The action TagImage needs for this (normalised) target: see broker-auth.c. */
const char *broker_tag_image_action(const ImageReference *target);

/* The same for a method on an object owned by a uid: an action of container-manage becomes
 * container-manage-any when the caller is not the owner. */
int broker_authorize_owned(sd_bus_message *m, uid_t owner, const char *const *details,
                           int (*cont)(sd_bus_message *m, void *userdata, sd_bus_error *error),
                           void *userdata, sd_bus_error *error);
/* The same for a userdata that lives only as long as the check: destroy(userdata) runs exactly once,
 * after cont ran or when the check ended without running it. */
int broker_authorize_owned_full(sd_bus_message *m, uid_t owner, const char *const *details,
                                int (*cont)(sd_bus_message *m, void *userdata, sd_bus_error *error),
                                void *userdata, void (*destroy)(void *userdata), sd_bus_error *error);

/* broker-common.c: what every handler needs. */
/* Ends a reply built step by step (r: the last step's result): sends it, or on failure logs and answers
 * request with IO "Failed to <what>: <errno>". */
void broker_send_built_reply(sd_bus_message *request, sd_bus_message *reply, int r, const char *what);
/* PullImage and UnpackImage: (reference, platform, flags); strings borrowed from the message. */
typedef struct ReferenceArgs {
        const char *reference;
        const char *platform;
        uint64_t flags;
} ReferenceArgs;
/* Reads ReferenceArgs and authorises with reference and platform as polkit details. */
int broker_authorize_reference(sd_bus_message *m, broker_continuation_t cont, Manager *manager,
                               sd_bus_error *error);
/* Parses a user's reference and returns its normalised spelling (and, with ret_ref, the parsed
 * reference), or sets InvalidReference saying what is wrong. */
int broker_normalise_reference(const char *s, ImageReference **ret_ref, char **ret, sd_bus_error *error);
/* An argument as a polkit detail: agents show details to humans, so an oversized one is left out ("");
 * the handler refuses it anyway. */
const char *broker_detail(const char *s);
/* The global and per-user limits on running transfers (pulls and unpacks alike): LimitExceeded. */
int broker_check_transfer_limits(Manager *manager, uid_t uid, sd_bus_error *error);
/* The record a user's reference names (normalised first), or NotFound/InvalidReference in error. */
int broker_lookup_image(Manager *manager, const char *reference, Image **ret, sd_bus_error *error);
/* The platform of a record this machine runs (the default platform's, or the only one), or with
 * wanted that one; NULL when there is none. */
const ImagePlatform *broker_image_platform(const Image *i, const Platform *wanted);

/* A public call waiting for internal replies: who asked (referenced), and the manager that answers. */
typedef struct BrokerRequest {
        Manager *manager;
        sd_bus_message *message;
} BrokerRequest;
BrokerRequest *broker_request_new(Manager *manager, sd_bus_message *message);
BrokerRequest *broker_request_free(BrokerRequest *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(BrokerRequest *, broker_request_free);

/* broker-info.c */
int method_get_info(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* broker-images.c: PullImage, ListTransfers, ListImages, InspectImage, TagImage, RemoveImage. */
int method_pull_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_transfers(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_images(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_inspect_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_tag_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_remove_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* unpack-image.c: UnpackImage; broker_start_unpack() is its body after authorisation (ImportImage uses it
 * too): starts (or joins) the unpack of reference for platform ("" = this machine's) and returns the
 * transfer path (borrowed), or sets error. watcher: the call whose sender gets the transfer's signals. */
int method_unpack_image(sd_bus_message *m, void *userdata, sd_bus_error *error);
int broker_start_unpack(Manager *manager, uid_t uid, const char *reference, const char *platform,
                        sd_bus_message *watcher, const char **ret_path, sd_bus_error *error);

/* broker-content.c: ListContent, PruneContent. */
int method_list_content(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_prune_content(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* broker-login.c: Login, Logout. */
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
