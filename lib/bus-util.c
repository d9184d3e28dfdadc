/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "bus-idle.h"
#include "bus-names.h"
#include "bus-error.h"
#include "bus-util.h"
#include "config.h"
#include "log.h"
#include "sender-uid-cache.h"

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received %s, shutting down.", strsignal((int) si->ssi_signo));
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void help(const BusService *svc) {
        printf("%s [OPTIONS...]\n\n"
               "%s\n\n"
               "Owns %s on the system bus. Normally started by bus activation or systemd.\n\n"
               "  -h --help        Show this help\n"
               "     --version     Show package version\n"
               "  -v --verbose     Log debug messages\n",
               svc->program, svc->description, svc->bus_name);
}

static int parse_argv(const BusService *svc, int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "version", no_argument, NULL, ARG_VERSION },
                                                 { "verbose", no_argument, NULL, 'v' },
                                                 {} };
        int c;

        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(svc);
                        return 0;
                case ARG_VERSION:
                        printf("%s %s\n", svc->program, BERTH_VERSION);
                        return 0;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return -EINVAL;
                }

        if (optind < argc) {
                log_error("%s takes no arguments.", svc->program);
                return -EINVAL;
        }
        return 1;
}

int bus_service_main(const BusService *svc, int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *config_error = NULL;
        uint64_t idle_usec = BUS_IDLE_EXIT_SEC_DEFAULT * UINT64_C(1000000);
        const char *config_dir;
        sigset_t mask;
        int r;

        log_set_prefix(svc->program);
        log_parse_environment();

        r = parse_argv(svc, argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        /* Tests point this elsewhere; the service itself uses the compiled-in path. */
        config_dir = getenv("BERTH_CONFIG_DIR");
        if (isempty(config_dir))
                config_dir = BERTH_SYSCONFDIR;
        if (svc->config_file) {
                r = bus_idle_timeout_load(config_dir, svc->config_file, svc->config_group, &idle_usec,
                                          &config_error);
                if (r < 0)
                        return log_error_errno(r, "%s", strna(config_error)), EXIT_FAILURE;
        }

        /* Signals become events; block them first so none is lost between here and the loop. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m"), EXIT_FAILURE;
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m"), EXIT_FAILURE;
        r = sd_event_add_signal(event, NULL, SIGTERM, on_exit_signal, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_exit_signal, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to install signal handlers: %m"), EXIT_FAILURE;

        /* Handlers may return -ENOENT and friends for org.berth.Error.NotFound and friends. */
        r = bus_error_map_register();
        if (r < 0)
                return log_error_errno(r, "Failed to register the bus error map: %m"), EXIT_FAILURE;

        r = sd_bus_open_system_with_description(&bus, svc->program);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m"), EXIT_FAILURE;
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach bus to event loop: %m"), EXIT_FAILURE;
        /* Leaving the loop when the bus goes away: there is nobody left to serve. */
        r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r < 0)
                return log_error_errno(r, "Failed to set exit-on-disconnect: %m"), EXIT_FAILURE;

        r = svc->setup(bus, event, svc->userdata);
        if (r < 0)
                return EXIT_FAILURE; /* setup logged already */

        r = sd_bus_request_name(bus, svc->bus_name, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire bus name %s: %m", svc->bus_name), EXIT_FAILURE;

        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %s\nMAINPID=%lu", svc->bus_name,
                          (unsigned long) getpid());
        log_debug("Serving %s.", svc->bus_name);

        r = bus_event_loop_with_idle(event, bus, svc->bus_name, idle_usec, svc->busy, svc->userdata);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        if (svc->shutdown)
                svc->shutdown(svc->userdata);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), EXIT_FAILURE;

        (void) sd_bus_release_name(bus, svc->bus_name);
        return EXIT_SUCCESS;
}

int bus_message_sender_uid(sd_bus_message *m, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uint64_t augmented;
        uid_t uid;
        int r;

        if (sender_uid_cache_get(sd_bus_message_get_bus(m), sd_bus_message_get_sender(m), ret))
                return 0;
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID, &creds);
        if (r < 0)
                return r;

        /* SECURITY: augmented fields are read from /proc after the fact and race with pid reuse
         * (CVE-2013-4288 and friends); only what the bus daemon recorded at connect time counts. */
        augmented = sd_bus_creds_get_augmented_mask(creds);
        if ((!(augmented & SD_BUS_CREDS_EUID) && sd_bus_creds_get_euid(creds, &uid) >= 0) ||
            (!(augmented & SD_BUS_CREDS_UID) && sd_bus_creds_get_uid(creds, &uid) >= 0)) {
                sender_uid_cache_put(sd_bus_message_get_bus(m), sd_bus_message_get_sender(m), uid);
                *ret = uid;
                return 0;
        }
        return -EPERM;
}

int lookup_user_uid(const char *user, uid_t *ret) {
        struct passwd pw, *result = NULL;
        char buf[4096];
        int r;

        r = getpwnam_r(user, &pw, buf, sizeof(buf), &result);
        if (r != 0)
                return -r;
        if (!result)
                return -ESRCH;
        *ret = result->pw_uid;
        return 0;
}

int bus_require_broker(sd_bus_message *m, sd_bus_error *error) {
        static uid_t broker_uid = (uid_t) -1;
        uid_t sender;
        int r;

        /* SECURITY: the fetcher, unpacker and supervisor serve the broker only. The bus policy says so
         * too; this check holds even on a bus whose policy was loosened or forgotten. The broker is
         * identified by its system user, which only it runs as. */
        if (broker_uid == (uid_t) -1) {
                r = lookup_user_uid(BERTH_BROKER_USER, &broker_uid);
                if (r < 0) {
                        broker_uid = (uid_t) -1;
                        return sd_bus_error_setf(error, BERTH_ERROR_NOT_BROKER,
                                                 "Broker user '%s' does not exist, refusing all calls.",
                                                 BERTH_BROKER_USER);
                }
        }

        r = bus_message_sender_uid(m, &sender);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_BROKER,
                                         "Cannot establish the caller's identity, refusing.");
        if (sender != broker_uid)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_BROKER,
                                         "Only the berth broker may call this service (caller uid %u).",
                                         (unsigned) sender);
        return 0;
}

static uint64_t self_rss_bytes(void) {
        unsigned long size = 0, resident = 0;
        _cleanup_fclose_ FILE *f = fopen("/proc/self/statm", "re");

        if (!f)
                return 0;
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
                resident = 0;
        return (uint64_t) resident * (uint64_t) sysconf(_SC_PAGESIZE);
}

int bus_append_service_status(sd_bus_message *reply, const char *state) {
        return sd_bus_message_append(reply, "a{sv}", 5, "Version", "s", BERTH_VERSION, "State", "s", state,
                                     "PID", "u", (uint32_t) getpid(), "UID", "u", (uint32_t) geteuid(),
                                     "MemoryRSS", "t", self_rss_bytes());
}

int bus_reply_errno(sd_bus_message *m, int r, sd_bus_error *error) {
        _cleanup_bus_error_ sd_bus_error ours = SD_BUS_ERROR_NULL;

        if (error && sd_bus_error_is_set(error))
                return sd_bus_reply_method_error(m, error);
        (void) bus_error_from_errno(&ours, r);
        if (sd_bus_error_is_set(&ours))
                return sd_bus_reply_method_error(m, &ours);
        return sd_bus_reply_method_errno(m, r, NULL);
}

int bus_method_internal_get_info(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = bus_require_broker(m, error);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = bus_append_service_status(reply, "running");
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int bus_check_flags(uint64_t flags, uint64_t known, sd_bus_error *error) {
        if (flags & ~known)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown flags 0x%" PRIx64 ".",
                                         flags & ~known);
        return 0;
}
