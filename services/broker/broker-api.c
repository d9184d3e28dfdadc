/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "broker-containers.h"
#include "container-life.h"
#include "events.h"
#include "broker.h"
#include "broker-networks.h"

/* The public API: org.berth.Broker1.Manager at /org/berth/Broker1 (docs/ and dbus/ describe it; a
 * published signature never changes). Each method's handler lives with its concern (broker.h lists
 * where); which polkit action each needs is broker-auth.c's table, checked against this vtable by
 * tests/unit-broker/test-broker-auth.c. */

/* SD_BUS_VTABLE_UNPRIVILEGED marks methods any caller may reach through the bus policy; each of them
 * starts with broker_authorize(), which consults the action table in broker-auth.c. */
const sd_bus_vtable broker_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("GetInfo", "", SD_BUS_PARAM(), "sa(ssa{sv})",
                                 SD_BUS_PARAM(version) SD_BUS_PARAM(services), method_get_info,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PullImage", "sst",
                                 SD_BUS_PARAM(reference) SD_BUS_PARAM(platform) SD_BUS_PARAM(flags), "o",
                                 SD_BUS_PARAM(transfer), method_pull_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnpackImage", "sst",
                                 SD_BUS_PARAM(reference) SD_BUS_PARAM(platform) SD_BUS_PARAM(flags), "o",
                                 SD_BUS_PARAM(transfer), method_unpack_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListTransfers", "", SD_BUS_PARAM(), "a(oss)", SD_BUS_PARAM(transfers),
                                 method_list_transfers, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListImages", "", SD_BUS_PARAM(), "a(sssts)", SD_BUS_PARAM(images),
                                 method_list_images, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("InspectImage", "s", SD_BUS_PARAM(reference), "s", SD_BUS_PARAM(json),
                                 method_inspect_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("TagImage", "ss", SD_BUS_PARAM(source) SD_BUS_PARAM(target), "",
                                 SD_BUS_PARAM(), method_tag_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveImage", "st", SD_BUS_PARAM(reference) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_remove_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListContent", "", SD_BUS_PARAM(), "a(sttas)", SD_BUS_PARAM(blobs),
                                 method_list_content, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PruneContent", "t", SD_BUS_PARAM(flags), "tu",
                                 SD_BUS_PARAM(bytes_freed) SD_BUS_PARAM(blobs_removed), method_prune_content,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES(
                "Login", "sss", SD_BUS_PARAM(registry) SD_BUS_PARAM(username) SD_BUS_PARAM(secret), "",
                SD_BUS_PARAM(), method_login, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("Logout", "s", SD_BUS_PARAM(registry), "", SD_BUS_PARAM(), method_logout,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListSnapshots", "", SD_BUS_PARAM(), "a(ssstuas)", SD_BUS_PARAM(snapshots),
                                 method_list_snapshots, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SnapshotInfo", "s", SD_BUS_PARAM(chain_id), "s", SD_BUS_PARAM(json),
                                 method_snapshot_info, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveSnapshots", "ast", SD_BUS_PARAM(chain_ids) SD_BUS_PARAM(flags), "t",
                                 SD_BUS_PARAM(bytes_freed), method_remove_snapshots,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Usage", "s", SD_BUS_PARAM(reference), "a(sttttb)", SD_BUS_PARAM(images),
                                 method_usage, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("MountImage", "sht",
                                 SD_BUS_PARAM(reference) SD_BUS_PARAM(directory) SD_BUS_PARAM(flags), "t",
                                 SD_BUS_PARAM(mount_id), method_mount_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnmountImage", "ht", SD_BUS_PARAM(directory) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_unmount_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ImportImage", "hst",
                                 SD_BUS_PARAM(archive) SD_BUS_PARAM(name) SD_BUS_PARAM(flags), "a(ss)",
                                 SD_BUS_PARAM(images), method_import_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ExportImage", "sht",
                                 SD_BUS_PARAM(reference) SD_BUS_PARAM(out) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_export_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CreateContainer", "sssa{sh}t",
                                 SD_BUS_PARAM(image) SD_BUS_PARAM(name) SD_BUS_PARAM(options)
                                         SD_BUS_PARAM(fds) SD_BUS_PARAM(flags),
                                 "oah", SD_BUS_PARAM(container) SD_BUS_PARAM(pty), method_create_container,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListContainers", "t", SD_BUS_PARAM(flags), "a(ssssuisuttto)",
                                 SD_BUS_PARAM(containers), method_list_containers,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetContainer", "s", SD_BUS_PARAM(name), "o", SD_BUS_PARAM(container),
                                 method_get_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES(
                "ExecContainer", "ssa{sh}t",
                SD_BUS_PARAM(name) SD_BUS_PARAM(options) SD_BUS_PARAM(fds) SD_BUS_PARAM(flags), "uah",
                SD_BUS_PARAM(pid) SD_BUS_PARAM(pty), method_exec_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ContainerStats", "ast", SD_BUS_PARAM(names) SD_BUS_PARAM(flags),
                                 "a(ssa{st})", SD_BUS_PARAM(stats), method_container_stats,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SubscribeEvents", "tt", SD_BUS_PARAM(since) SD_BUS_PARAM(flags),
                                 "a(tssssua{ss})", SD_BUS_PARAM(events), method_subscribe_events,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnsubscribeEvents", "", SD_BUS_PARAM(), "", SD_BUS_PARAM(),
                                 method_unsubscribe_events, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("Event", "tssssua{ss}",
                                 SD_BUS_PARAM(time) SD_BUS_PARAM(type) SD_BUS_PARAM(action) SD_BUS_PARAM(id)
                                         SD_BUS_PARAM(name) SD_BUS_PARAM(owner) SD_BUS_PARAM(attributes),
                                 0),
        SD_BUS_METHOD_WITH_NAMES("CreateNetwork", "ssst",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(subnet) SD_BUS_PARAM(gateway)
                                         SD_BUS_PARAM(flags),
                                 "s", SD_BUS_PARAM(json), method_create_network, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveNetwork", "st", SD_BUS_PARAM(name) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_remove_network, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListNetworks", "t", SD_BUS_PARAM(flags), "a(ssssu)",
                                 SD_BUS_PARAM(networks), method_list_networks, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("InspectNetwork", "s", SD_BUS_PARAM(name), "s", SD_BUS_PARAM(json),
                                 method_inspect_network, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};
