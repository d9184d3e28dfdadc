/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "broker-containers.h"
#include "broker.h"
#include "bus-names.h"
#include "bus-util.h"
#include "config.h"
#include "image-store.h"
#include "log.h"
#include "pull.h"
#include "transfer.h"

/* SD_BUS_VTABLE_UNPRIVILEGED marks methods any caller may reach through the bus policy; each of them
 * starts with broker_authorize(), which consults the action table in broker-auth.c. */
static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("GetInfo", "", SD_BUS_PARAM(), "sa(ssa{sv})",
                                 SD_BUS_PARAM(version) SD_BUS_PARAM(services), method_get_info,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PullImage", "sst", SD_BUS_PARAM(reference) SD_BUS_PARAM(platform) SD_BUS_PARAM(flags),
                                 "o", SD_BUS_PARAM(transfer), method_pull_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnpackImage", "sst", SD_BUS_PARAM(reference) SD_BUS_PARAM(platform) SD_BUS_PARAM(flags),
                                 "o", SD_BUS_PARAM(transfer), method_unpack_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListTransfers", "", SD_BUS_PARAM(), "a(oss)", SD_BUS_PARAM(transfers),
                                 method_list_transfers, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListImages", "", SD_BUS_PARAM(), "a(sssts)", SD_BUS_PARAM(images),
                                 method_list_images, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("InspectImage", "s", SD_BUS_PARAM(reference), "s", SD_BUS_PARAM(json),
                                 method_inspect_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("TagImage", "ss", SD_BUS_PARAM(source) SD_BUS_PARAM(target), "", SD_BUS_PARAM(),
                                 method_tag_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveImage", "st", SD_BUS_PARAM(reference) SD_BUS_PARAM(flags), "", SD_BUS_PARAM(),
                                 method_remove_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListContent", "", SD_BUS_PARAM(), "a(sttas)", SD_BUS_PARAM(blobs),
                                 method_list_content, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PruneContent", "t", SD_BUS_PARAM(flags), "tu",
                                 SD_BUS_PARAM(bytes_freed) SD_BUS_PARAM(blobs_removed), method_prune_content,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Login", "sss", SD_BUS_PARAM(registry) SD_BUS_PARAM(username) SD_BUS_PARAM(secret), "",
                                 SD_BUS_PARAM(), method_login, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("Logout", "s", SD_BUS_PARAM(registry), "", SD_BUS_PARAM(), method_logout,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListSnapshots", "", SD_BUS_PARAM(), "a(ssstuas)", SD_BUS_PARAM(snapshots),
                                 method_list_snapshots, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SnapshotInfo", "s", SD_BUS_PARAM(chain_id), "s", SD_BUS_PARAM(json),
                                 method_snapshot_info, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveSnapshots", "ast", SD_BUS_PARAM(chain_ids) SD_BUS_PARAM(flags), "t",
                                 SD_BUS_PARAM(bytes_freed), method_remove_snapshots, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Usage", "s", SD_BUS_PARAM(reference), "a(sttttb)", SD_BUS_PARAM(images),
                                 method_usage, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("MountImage", "sht", SD_BUS_PARAM(reference) SD_BUS_PARAM(directory) SD_BUS_PARAM(flags),
                                 "t", SD_BUS_PARAM(mount_id), method_mount_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnmountImage", "ht", SD_BUS_PARAM(directory) SD_BUS_PARAM(flags), "", SD_BUS_PARAM(),
                                 method_unmount_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ImportImage", "hst", SD_BUS_PARAM(archive) SD_BUS_PARAM(name) SD_BUS_PARAM(flags),
                                 "a(ss)", SD_BUS_PARAM(images), method_import_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ExportImage", "sht", SD_BUS_PARAM(reference) SD_BUS_PARAM(out) SD_BUS_PARAM(flags),
                                 "", SD_BUS_PARAM(), method_export_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CreateContainer", "sssa{sh}t",
                                 SD_BUS_PARAM(image) SD_BUS_PARAM(name) SD_BUS_PARAM(options) SD_BUS_PARAM(fds)
                                         SD_BUS_PARAM(flags),
                                 "oah", SD_BUS_PARAM(container) SD_BUS_PARAM(pty), method_create_container,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListContainers", "t", SD_BUS_PARAM(flags), "a(ssssuisuttto)",
                                 SD_BUS_PARAM(containers), method_list_containers, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetContainer", "s", SD_BUS_PARAM(name), "o", SD_BUS_PARAM(container),
                                 method_get_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static int manager_setup(sd_bus *bus, sd_event *event, void *userdata) {
        Manager *m = userdata;
        const char *e;
        int r;

        m->bus = bus;
        m->event = event;
        m->transfers = g_hash_table_new(g_direct_hash, g_direct_equal);

        /* Tests point this elsewhere; the service itself uses the compiled-in path. */
        e = getenv("BERTH_STATE_DIR");
        m->state_dir = strdup(!isempty(e) ? e : BERTH_STATEDIR);
        if (!m->state_dir)
                return log_oom();
        r = image_store_open(m->state_dir, &m->images);
        if (r < 0)
                return log_error_errno(r, "Failed to open the image metadata under '%s/meta': %m", m->state_dir);

        /* The fetcher's Progress signals are unicast to us; which transfer, and whether the sender is
         * the fetcher instance that transfer talks to, is decided per signal in pull.c. */
        r = sd_bus_match_signal(bus, &m->progress_match, NULL, BERTH_FETCHER_PATH, BERTH_FETCHER_IFACE, "Progress",
                                pull_on_fetcher_progress, m);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to the fetcher's progress: %m");

        r = container_manager_setup(m);
        if (r < 0)
                return r;

        r = sd_bus_add_object_vtable(bus, NULL, BERTH_BROKER_PATH, BERTH_BROKER_MANAGER_IFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", BERTH_BROKER_PATH);
        return 0;
}

static void manager_shutdown(void *userdata) {
        Manager *m = userdata;

        manager_free_transfers(m);
        container_manager_free(m);
        m->progress_match = sd_bus_slot_unref(m->progress_match);
        m->images = image_store_free(m->images);
        free(m->state_dir);
}

int main(int argc, char *argv[]) {
        Manager manager = {};
        const BusService svc = {
                .program = "berth-broker",
                .bus_name = BERTH_BROKER_NAME,
                .description = "The public door of berth: authorises callers with polkit, keeps image and "
                               "container metadata, and orchestrates the fetcher, unpacker and supervisor.",
                .setup = manager_setup,
                .shutdown = manager_shutdown,
                .userdata = &manager,
        };

        return bus_service_main(&svc, argc, argv);
}
