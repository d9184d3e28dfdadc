/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "bus-names.h"
#include "bus-util.h"
#include "config.h"
#include "container.h"
#include "containers-life.h"
#include "digest.h"
#include "event-journal.h"
#include "exe-seal.h"
#include "container-io.h"
#include "exec.h"
#include "image-mount.h"
#include "log.h"
#include "networks-bus.h"
#include "restart-policy.h"

static int method_mount_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        _cleanup_free_ char *msg = NULL;
        const char *chain_id;
        uint64_t flags, mount_id = 0;
        DigestAlgorithm alg;
        int target_fd, r;

        r = bus_require_broker(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sht", &chain_id, &target_fd, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        /* STYLE 7: every argument is validated here, before anything is opened on its behalf. */
        if (digest_validate(chain_id, &alg) < 0 || alg != DIGEST_SHA256)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Cannot mount image: invalid chain id '%.80s'.", chain_id);
        if (manager->snapshots_fd < 0)
                /* The unpacker creates the store; it may have done so since we started. */
                manager->snapshots_fd =
                        open(manager->snapshots_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (manager->snapshots_fd < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No snapshot store at '%s'.",
                                         manager->snapshots_path);

        /* In a child in the host's mount namespace: ours is private under systemd (docs/systemd.md). */
        r = image_mount_host(manager->snapshots_path, chain_id, target_fd, &mount_id, &msg);
        if (r < 0) {
                log_warning_errno(r, "Failed to mount image view of '%s': %s", chain_id, strna(msg));
                return sd_bus_error_setf(error, r == -ENOENT ? BERTH_ERROR_NOT_FOUND : BERTH_ERROR_IO,
                                         "Cannot mount image: %s", msg ?: strerror(-r));
        }
        log_info("Mounted read-only view of %s (mount id %" PRIu64 ").", chain_id, mount_id);
        return sd_bus_reply_method_return(m, "t", mount_id);
}

static int method_unmount_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        _cleanup_free_ char *msg = NULL;
        uint64_t flags;
        int target_fd, r;

        r = bus_require_broker(m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ht", &target_fd, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;

        r = image_unmount_host(manager->snapshots_path, target_fd, &msg);
        if (r < 0)
                return sd_bus_error_setf(error, r == -EPERM ? BERTH_ERROR_ACCESS_DENIED : BERTH_ERROR_IO,
                                         "Cannot unmount: %s", msg ?: strerror(-r));
        return sd_bus_reply_method_return(m, NULL);
}

static int method_list_mounted_snapshots(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char **ids = NULL;
        int r;

        r = bus_require_broker(m, error);
        if (r < 0)
                return r;
        r = image_mounts_in_use(manager->snapshots_path, &ids);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append_strv(reply, ids);
        for (char **i = ids; i && *i; i++)
                free(*i);
        free(ids);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* UNPRIVILEGED lets sd-bus hand the (non-root) broker's calls to the methods; every method then
 * checks bus_require_broker() first: this service serves the broker only. */
static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("GetInfo", "", SD_BUS_PARAM(), "a{sv}", SD_BUS_PARAM(info),
                                 bus_method_internal_get_info, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("MountImage", "sht",
                                 SD_BUS_PARAM(chain_id) SD_BUS_PARAM(target) SD_BUS_PARAM(flags), "t",
                                 SD_BUS_PARAM(mount_id), method_mount_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnmountImage", "ht", SD_BUS_PARAM(target) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_unmount_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListMountedSnapshots", "", SD_BUS_PARAM(), "as", SD_BUS_PARAM(chain_ids),
                                 method_list_mounted_snapshots, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("CreateContainer", "ssa{sh}st",
                                 SD_BUS_PARAM(id) SD_BUS_PARAM(request) SD_BUS_PARAM(fds)
                                         SD_BUS_PARAM(caller) SD_BUS_PARAM(flags),
                                 "ah", SD_BUS_PARAM(pty), method_create_container,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("StartContainer", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_start_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("KillContainer", "sit",
                                 SD_BUS_PARAM(id) SD_BUS_PARAM(signal) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_kill_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("DeleteContainer", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_delete_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListContainers", "", SD_BUS_PARAM(), "a(sa{sv})", SD_BUS_PARAM(containers),
                                 method_list_containers, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("WaitContainer", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "is",
                                 SD_BUS_PARAM(exit_code) SD_BUS_PARAM(reason), method_wait_container,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenLog", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "h",
                                 SD_BUS_PARAM(log), method_open_log, SD_BUS_VTABLE_UNPRIVILEGED),
        /* exec.c */
        SD_BUS_METHOD_WITH_NAMES(
                "ExecContainer", "ssa{sh}t",
                SD_BUS_PARAM(id) SD_BUS_PARAM(options) SD_BUS_PARAM(fds) SD_BUS_PARAM(flags), "uah",
                SD_BUS_PARAM(pid) SD_BUS_PARAM(pty), method_exec_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AttachContainer", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "h",
                                 SD_BUS_PARAM(stream), method_attach_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("TopContainer", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "a(uuus)",
                                 SD_BUS_PARAM(processes), method_top_container, SD_BUS_VTABLE_UNPRIVILEGED),
        /* container-io-bus.c */
        SD_BUS_METHOD_WITH_NAMES(
                "ResizeContainerTerminal", "suut",
                SD_BUS_PARAM(id) SD_BUS_PARAM(rows) SD_BUS_PARAM(columns) SD_BUS_PARAM(flags), "",
                SD_BUS_PARAM(), method_resize_container_terminal, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SignalExec", "suit",
                                 SD_BUS_PARAM(id) SD_BUS_PARAM(pid) SD_BUS_PARAM(signal) SD_BUS_PARAM(flags),
                                 "", SD_BUS_PARAM(), method_signal_exec, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("PauseContainer", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_pause_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ResumeContainer", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_resume_container, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ContainerStats", "ast", SD_BUS_PARAM(ids) SD_BUS_PARAM(flags), "a(sa{st})",
                                 SD_BUS_PARAM(stats), method_container_stats, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenLogStreams", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "ahah",
                                 SD_BUS_PARAM(files) SD_BUS_PARAM(follow), method_open_log_streams,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
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
        SD_BUS_METHOD_WITH_NAMES("GetContainerNetwork", "s", SD_BUS_PARAM(id), "s", SD_BUS_PARAM(json),
                                 method_get_container_network, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetContainerSpec", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags), "ay",
                                 SD_BUS_PARAM(config), method_get_container_spec,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ReadEvents", "stt",
                                 SD_BUS_PARAM(ring) SD_BUS_PARAM(after) SD_BUS_PARAM(flags),
                                 "sa(ttsssua{ss})", SD_BUS_PARAM(ring) SD_BUS_PARAM(events),
                                 method_read_events, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("Event", "sttsssua{ss}",
                                 SD_BUS_PARAM(ring) SD_BUS_PARAM(seq) SD_BUS_PARAM(time_usec)
                                         SD_BUS_PARAM(action) SD_BUS_PARAM(id) SD_BUS_PARAM(name)
                                                 SD_BUS_PARAM(owner) SD_BUS_PARAM(attributes),
                                 0),
        SD_BUS_SIGNAL_WITH_NAMES(
                "ContainerChanged", "ssis",
                SD_BUS_PARAM(id) SD_BUS_PARAM(status) SD_BUS_PARAM(exit_code) SD_BUS_PARAM(reason), 0),
        SD_BUS_VTABLE_END
};

static void container_free_void(void *p) {
        container_free(p);
}

static int manager_setup(sd_bus *bus, sd_event *event, void *userdata) {
        Manager *m = userdata;
        const char *state = getenv("BERTH_STATE_DIR") ?: BERTH_STATEDIR;
        const char *runtime = getenv("BERTH_RUNTIME_DIR") ?: BERTH_RUNTIMEDIR;
        _cleanup_close_ int runtime_fd = -EBADF;
        int r;

        m->bus = bus;
        m->event = event;
        m->containers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, container_free_void);
        m->state_path = strdup(state);
        m->shim_path = strdup(getenv("BERTH_SHIM_PATH") ?: BERTH_LIBEXECDIR "/berth-shim");
        if (!m->state_path || !m->shim_path ||
            asprintf_safe(&m->snapshots_path, "%s/snapshots", state) < 0 ||
            asprintf_safe(&m->containers_path, "%s/containers", runtime) < 0)
                return log_oom();
        /* CVE-2019-5736: shims run from a sealed copy (exec'd processes are their clones until execve). */
        m->shim_exe_fd = shim_exe_seal(m->shim_path);
        if (m->shim_exe_fd < 0)
                log_warning_errno(m->shim_exe_fd, "Cannot seal a copy of '%s' (exec will be refused): %m",
                                  m->shim_path);
        /* /run/berth/containers: root only (0700), the shims' sockets live below it (S11). */
        (void) mkdir(runtime, 0755);
        if (mkdir(m->containers_path, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create %s: %m", m->containers_path);
        m->containers_fd = open(m->containers_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (m->containers_fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", m->containers_path);
        (void) fchmod(m->containers_fd, 0700);
        m->content_fd = -EBADF;
        /* Opened once: every snapshot path below is resolved relative to this fd. A store that does
         * not exist yet is created by the unpacker; we retry lazily. */
        m->snapshots_fd = open(m->snapshots_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (m->snapshots_fd < 0)
                log_debug_errno(errno, "No snapshot store at '%s' yet: %m", m->snapshots_path);

        r = sd_bus_add_object_vtable(bus, NULL, BERTH_SUPERVISOR_PATH, BERTH_SUPERVISOR_IFACE,
                                     manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", BERTH_SUPERVISOR_PATH);
        /* Before the containers: an exit missed while we were away is recorded when one is re-adopted. */
        (void) event_journal_open(m);
        /* Before we take the name: nobody can ask about a container we have not re-adopted yet. */
        r = manager_adopt_containers(m);
        if (r < 0)
                log_warning_errno(r, "Failed to look for existing containers: %m");
        return 0;
}

static void manager_shutdown(void *userdata) {
        Manager *m = userdata;

        /* The containers keep running: only our bookkeeping goes. */
        if (m->containers)
                g_hash_table_destroy(m->containers);
        event_journal_close();
        m->snapshots_fd = safe_close(m->snapshots_fd);
        m->content_fd = safe_close(m->content_fd);
        m->containers_fd = safe_close(m->containers_fd);
        m->snapshots_path = mfree(m->snapshots_path);
        m->containers_path = mfree(m->containers_path);
        m->state_path = mfree(m->state_path);
        m->shim_path = mfree(m->shim_path);
        m->shim_exe_fd = safe_close(m->shim_exe_fd);
}

/* The supervisor stays while it has containers or shims to watch: the container code answers here.
 * Image views need nothing from this process (they live in the host's mount table, and UnmountImage
 * and ListMountedSnapshots read that), and shims never depend on it, so it may come and go. */
static bool manager_busy(void *userdata) {
        Manager *m = userdata;
        GHashTableIter it;
        gpointer value;

        /* A stopped container is all on disk (its exit record, state and spec): the next start re-reads
         * it. One that is being created, waits to start or runs needs us for its ContainerChanged; one
         * whose restart policy has a restart due needs us to run it (the back-off outlasts the idle
         * time: up to RESTART_DELAY_MAX_USEC). */
        if (!m->containers)
                return false;
        g_hash_table_iter_init(&it, m->containers);
        while (g_hash_table_iter_next(&it, NULL, &value))
                if (((Container *) value)->status != CONTAINER_STOPPED || restart_pending(value))
                        return true;
        return false;
}

int main(int argc, char *argv[]) {
        Manager manager = {
                .snapshots_fd = -EBADF, .content_fd = -EBADF, .containers_fd = -EBADF, .shim_exe_fd = -EBADF
        };
        const BusService svc = {
                .program = "berth-supervisor",
                .bus_name = BERTH_SUPERVISOR_NAME,
                .description = "Creates, runs and supervises containers from committed snapshots.",
                .setup = manager_setup,
                .shutdown = manager_shutdown,
                .busy = manager_busy,
                .config_file = "supervisor.conf",
                .config_group = "supervisor",
                .userdata = &manager,
        };
        int r;

        /* SECURITY (S1, CVE-2019-5736): containers are cloned from us; we must run from a sealed copy of
         * our binary, so that a container reopening /proc/self/exe cannot write the host's file. */
        r = exe_seal_reexec(argv);
        if (r < 0) {
                log_error_errno(r, "Failed to re-execute from a sealed copy: %m");
                return EXIT_FAILURE;
        }
        return bus_service_main(&svc, argc, argv);
}
