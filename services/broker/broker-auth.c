/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "bus-util.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-polkit.h"
#include "log.h"
#include "macro.h"

/* Which polkit action each public method of org.berth.Broker1.Manager needs. This table is the whole
 * authorisation policy of the public API: audit it here. A method missing from it is refused. */
static const struct {
        const char *member;
        const char *action;
} method_actions[] = {
        /* SECURITY: GetInfo reveals service state and versions only; still gated (org.berth.info) so that
         * a host can keep berth invisible to users outside group berth. */
        { "GetInfo", BERTH_ACTION_INFO },
        /* SECURITY: pulling makes the host download and store registry data; it never runs any of it.
         * Granted to group berth by the shipped rule. The reference and platform are polkit details. */
        { "PullImage", BERTH_ACTION_IMAGE_PULL },
        /* SECURITY: unpacking an image already in the content store is the second half of a pull (the
         * same snapshots a pull would make, from blobs a pull or an admin's import stored; the unpacker
         * re-hashes every layer): it needs the pull action, nothing more. The reference and platform are
         * polkit details. */
        { "UnpackImage", BERTH_ACTION_IMAGE_PULL },
        /* SECURITY: Transfer.Cancel needs the pull action, and the handler additionally allows only the
         * uid that started the transfer (or root): members cannot stop each other's pulls. */
        { "Cancel", BERTH_ACTION_IMAGE_PULL },
        /* SECURITY: read-only listings. Images and blobs are shared by all users of the host (as with
         * containerd), so whoever may see berth at all may see them. */
        { "ListTransfers", BERTH_ACTION_INFO },
        { "ListImages", BERTH_ACTION_INFO },
        { "InspectImage", BERTH_ACTION_INFO },
        { "ListContent", BERTH_ACTION_INFO },
        /* SECURITY: a new name for an image already on the host adds no content and no trust; it is
         * what a pull of that name would do, so it needs the pull action. Overwriting a name that
         * points elsewhere is refused (Exists), so nobody can redirect another user's tag. */
        { "TagImage", BERTH_ACTION_IMAGE_PULL },
        /* SECURITY: removing a name affects every user of the host: admin-only by default. */
        { "RemoveImage", BERTH_ACTION_IMAGE_REMOVE },
        /* SECURITY: deletes content store blobs; maintenance of the whole host, admin-only. */
        { "PruneContent", BERTH_ACTION_MAINTENANCE },
        /* SECURITY: stored credentials are used for every later pull by every user: admin-only. */
        { "Login", BERTH_ACTION_REGISTRY_LOGIN },
        { "Logout", BERTH_ACTION_REGISTRY_LOGIN },
        /* SECURITY: read-only listings of the unpacked snapshots and of disk usage; like ListImages. */
        { "ListSnapshots", BERTH_ACTION_INFO },
        { "SnapshotInfo", BERTH_ACTION_INFO },
        { "Usage", BERTH_ACTION_INFO },
        /* SECURITY: deletes snapshots every user's images may share; the broker refuses those an image,
         * a mounted view or a running pull uses. Host maintenance, admin-only. */
        { "RemoveSnapshots", BERTH_ACTION_MAINTENANCE },
        /* SECURITY: makes the root supervisor mount an image read-only (nosuid, nodev) onto a directory the
         * caller opened: it exposes image content (which may hold setuid files, neutralised by nosuid)
         * and changes the mount table. Its own action (org.berth.image-mount, admin-only by default), so
         * that granting maintenance does not grant mounts; and the target must be a directory the
         * caller owns and may write (fusermount's rule, method_mount_image), or an O_PATH fd on
         * /etc/sudoers.d would let this action cover any directory of the host. UnmountImage removes
         * only berth's own views (the supervisor checks). */
        { "MountImage", BERTH_ACTION_IMAGE_MOUNT },
        { "UnmountImage", BERTH_ACTION_IMAGE_MOUNT },
        /* SECURITY: an import can plant any image name (docker.io/library/debian:latest included) with
         * any content for every user of the host, bypassing the registry a pull would ask: admin-only
         * (org.berth.image-import, not granted to group berth). The archive itself is parsed by the
         * unprivileged fetcher and re-verified here like registry data. */
        { "ImportImage", BERTH_ACTION_IMAGE_IMPORT },
        /* SECURITY: exporting writes an image's blobs to a descriptor the caller opened itself; it reveals
         * nothing ListContent/InspectImage do not already show to whoever may see berth (images are shared
         * by all users of the host), so it needs org.berth.info. No path is opened on anyone's behalf. */
        { "ExportImage", BERTH_ACTION_INFO },
        /* SECURITY: creating a container runs the image's code as root inside a confined container (own
         * namespaces, podman's default capabilities, seccomp, no new privileges): granted to group berth
         * by the shipped rule. The container belongs to the caller's uid. Privileged options (host
         * network, bind mounts, --privileged, added capabilities, no seccomp) additionally need
         * org.berth.container-privileged, which the supervisor checks itself with the caller's bus name
         * the broker forwards, so a broker bug cannot grant them. The image and name are polkit details. */
        { "CreateContainer", BERTH_ACTION_CONTAINER_RUN },
        /* SECURITY: lists the caller's own containers (root: all); flag ALL_USERS (everyone's) is
         * checked against container-manage-any in method_list_containers. */
        { "ListContainers", BERTH_ACTION_INFO },
        /* SECURITY: resolves a container's name or id to its object path (a name is no secret on a shared
         * host, as with containerd); acting on the object needs container-manage(-any). */
        { "GetContainer", BERTH_ACTION_INFO },
        /* SECURITY: org.berth.Broker1.Container methods act on one container: its owner needs
         * container-manage, anyone else container-manage-any (broker_authorize_owned() picks). OpenLog
         * reveals the container's output, Wait only its exit: which its owner reads in the properties
         * anyway, so method_wait asks polkit for the others only. */
        { "Start", BERTH_ACTION_CONTAINER_MANAGE },
        { "Kill", BERTH_ACTION_CONTAINER_MANAGE },
        { "Stop", BERTH_ACTION_CONTAINER_MANAGE },
        { "Remove", BERTH_ACTION_CONTAINER_MANAGE },
        { "Wait", BERTH_ACTION_CONTAINER_MANAGE },
        { "OpenLog", BERTH_ACTION_CONTAINER_MANAGE },
        /* SECURITY: Exec runs a process inside the container with the container's own confinement (no
         * more than its init has) and Attach joins its terminal: both are as much as the container's owner
         * can do already, and nothing for anyone else without container-manage-any. Top lists its
         * processes. */
        { "Exec", BERTH_ACTION_CONTAINER_MANAGE },
        /* SECURITY: Exec on the container a name names, in one call: the same rule as Exec, for the
         * container the name named when the call came (method_exec_container); an unknown name is
         * NotFound only to whoever may call GetContainer (org.berth.info). */
        { "ExecContainer", BERTH_ACTION_CONTAINER_MANAGE },
        { "Attach", BERTH_ACTION_CONTAINER_MANAGE },
        { "Top", BERTH_ACTION_CONTAINER_MANAGE },
        /* SECURITY: the window size of the container's terminal, and a signal to a process exec'd in it
         * (the shim checks it is one: never the init or another container's); both less than Exec. */
        { "ResizeTerminal", BERTH_ACTION_CONTAINER_MANAGE },
        { "KillExec", BERTH_ACTION_CONTAINER_MANAGE },
        /* SECURITY: freezing and thawing act on one container like Kill; OpenLogStreams reveals its output
         * like OpenLog (the follow pipe only carries what the log gets). */
        { "Pause", BERTH_ACTION_CONTAINER_MANAGE },
        { "Unpause", BERTH_ACTION_CONTAINER_MANAGE },
        { "OpenLogStreams", BERTH_ACTION_CONTAINER_MANAGE },
        /* SECURITY: resource numbers of the caller's own containers only (root: all), like ListContainers;
         * another user's container is NotFound. */
        { "ContainerStats", BERTH_ACTION_INFO },
        /* SECURITY: the events of the caller's own containers and of images (root: all); flag ALL_USERS
         * (everyone's container events) is checked against container-manage-any in
         * method_subscribe_events. Delivered as unicast signals, never broadcast (events.h). */
        { "SubscribeEvents", BERTH_ACTION_INFO },
        { "UnsubscribeEvents", BERTH_ACTION_INFO },
        /* SECURITY: a container's addresses and published ports; its owner's (or an admin's) to see. */
        { "GetNetwork", BERTH_ACTION_CONTAINER_MANAGE },
        /* SECURITY: networks change the host's bridges, routes, NAT and the subnets every container of
         * the host shares (a subnet over a route of the host's would cut it off a network): admin-only.
         * Listing and inspecting them is read-only and shows no container another user could not see
         * by name already (addresses of the host's bridges). */
        { "CreateNetwork", BERTH_ACTION_NETWORK_MANAGE },
        { "RemoveNetwork", BERTH_ACTION_NETWORK_MANAGE },
        { "ListNetworks", BERTH_ACTION_INFO },
        { "InspectNetwork", BERTH_ACTION_INFO },
        /* SECURITY: GetSpec reveals the container's runtime spec (its command, environment, mounts,
         * capabilities): as much as its options and output do, so the same rule as OpenLog. */
        { "GetSpec", BERTH_ACTION_CONTAINER_MANAGE },
};

const char *broker_action_for_method(const char *member) {
        if (!member)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(method_actions); i++)
                if (streq(method_actions[i].member, member))
                        return method_actions[i].action;
        return NULL;
}

const char *broker_auth_rule_member(size_t i) {
        return i < ELEMENTSOF(method_actions) ? method_actions[i].member : NULL;
}

/* One authorisation in flight: the handler's continuation and its own copy of the arguments it read. */
typedef struct BrokerAuth {
        Manager *manager;
        broker_continuation_t cont;
        void (*args_done)(void *args);
        _Alignas(max_align_t) unsigned char args[];
} BrokerAuth;

static void broker_auth_free(void *userdata) {
        BrokerAuth *a = userdata;

        if (a->args_done)
                a->args_done(a->args);
        free(a);
}

static int broker_auth_continue(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BrokerAuth *a = userdata;

        return a->cont(m, a->manager, a->args, error);
}

/* SECURITY: which action a TagImage to target needs. A name is what every user of the host later runs,
 * inspects or mounts by, so creating one is planting content under it:
 *  - a digest-pinned target names its content exactly (the handler refuses one that is not the source's
 *    digest, for everyone, root included): no trust is added, image-pull is enough;
 *  - a name under "localhost/" (no port) is the host's own namespace, which no registry serves (as with
 *    podman): anyone who may pull may name images there, and users know such names vouch for nothing;
 *  - any other name (a registry's namespace: docker.io/library/debian:latest) is what a pull of that
 *    name from that registry would create; a member who could tag there would make every other user run
 *    the member's content (or an old, vulnerable version of it) by that registry's name. That is what an
 *    import does, so it needs org.berth.image-import (administrators only). */
const char *broker_tag_image_action(const ImageReference *target) {
        if (target && target->digest)
                return BERTH_ACTION_IMAGE_PULL;
        if (target && streq_ptr(target->registry, "localhost"))
                return BERTH_ACTION_IMAGE_PULL;
        return BERTH_ACTION_IMAGE_IMPORT;
}

int broker_authorize(sd_bus_message *m, const char *const *details, broker_continuation_t cont,
                     Manager *manager, const void *args, size_t args_size, void (*args_done)(void *args),
                     sd_bus_error *error) {
        return broker_authorize_action(m, broker_action_for_method(sd_bus_message_get_member(m)), details,
                                       cont, manager, args, args_size, args_done, error);
}

int broker_authorize_action(sd_bus_message *m, const char *action, const char *const *details,
                            broker_continuation_t cont, Manager *manager, const void *args, size_t args_size,
                            void (*args_done)(void *args), sd_bus_error *error) {
        BrokerAuth *a;

        a = malloc(offsetof(BrokerAuth, args) + args_size);
        if (!a) {
                /* The arguments are ours from the call on (see broker.h). */
                if (args_done)
                        args_done((void *) args);
                return -ENOMEM;
        }
        *a = (BrokerAuth){ .manager = manager, .cont = cont, .args_done = args_done };
        if (args_size > 0)
                memcpy(a->args, args, args_size);
        if (!action) {
                broker_auth_free(a);
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Method '%s' has no authorization rule.",
                                         strna(sd_bus_message_get_member(m)));
        }
        /* A continuation that ran at once (root caller) may return -ENOENT and friends: named here, as
         * bus_reply_errno() names them for one that ran later. */
        return bus_error_from_errno(error,
                                    bus_polkit_check_async_full(m, action, details, broker_auth_continue, a,
                                                                broker_auth_free, error));
}

int broker_authorize_owned(sd_bus_message *m, uid_t owner, const char *const *details,
                           int (*cont)(sd_bus_message *m, void *userdata, sd_bus_error *error),
                           void *userdata, sd_bus_error *error) {
        return broker_authorize_owned_full(m, owner, details, cont, userdata, NULL, error);
}

int broker_authorize_owned_full(sd_bus_message *m, uid_t owner, const char *const *details,
                                int (*cont)(sd_bus_message *m, void *userdata, sd_bus_error *error),
                                void *userdata, void (*destroy)(void *userdata), sd_bus_error *error) {
        const char *action = broker_action_for_method(sd_bus_message_get_member(m));
        uid_t uid;
        int r;

        if (!action) {
                if (destroy)
                        destroy(userdata);
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Method '%s' has no authorization rule.",
                                         strna(sd_bus_message_get_member(m)));
        }
        /* SECURITY: container-manage covers the caller's own containers only; another user's container
         * needs container-manage-any (admins), so members of group berth cannot stop, read or remove each
         * other's containers. The owner is the uid the bus daemon reported when the container was
         * created, compared with the uid it reports for this caller. */
        if (streq(action, BERTH_ACTION_CONTAINER_MANAGE)) {
                r = bus_message_sender_uid(m, &uid);
                if (r < 0) {
                        if (destroy)
                                destroy(userdata);
                        return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                                 "Cannot establish the caller's identity.");
                }
                if (uid != owner)
                        action = BERTH_ACTION_CONTAINER_MANAGE_ANY;
        }
        if (!destroy)
                return bus_error_from_errno(
                        error, bus_polkit_check_async(m, action, details, cont, userdata, error));
        return bus_error_from_errno(
                error, bus_polkit_check_async_full(m, action, details, cont, userdata, destroy, error));
}
