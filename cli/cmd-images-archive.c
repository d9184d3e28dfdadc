/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fcntl.h>
#include <getopt.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "berth-flags.h"
#include "berth-limits.h"
#include "berthctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "transfer-view.h"

/* berthctl images import|export: archives travel as file descriptors. We open FILE here, as the user
 * who runs us, and pass the descriptor: no berth service ever opens a path a user names. */

static int call_long(sd_bus *bus, const char *member, sd_bus_message **reply, const char *what,
                     const char *types, ...) {
        va_list ap;
        int r;

        /* A large archive takes a while; the fetcher's stall guard ends a stuck one. */
        va_start(ap, types);
        r = broker_callv(bus, member, reply, what, ARCHIVE_CALL_TIMEOUT_USEC, types, ap);
        va_end(ap);
        return r;
}

int images_verb_import(int argc, char *argv[]) {
        enum { ARG_NO_UNPACK = 0x100 };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "name", required_argument, NULL, 'n' },
                                                 { "no-unpack", no_argument, NULL, ARG_NO_UNPACK },
                                                 {} };
        g_auto(GStrv) refs = NULL;
        g_autoptr(GStrvBuilder) sb = g_strv_builder_new();
        uint64_t flags = 0;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *name = "", *file;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+hn:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("berthctl images import [--name REF] [--no-unpack] FILE\n\n"
                               "Import the images of an OCI image layout archive (tar, optionally gzip or "
                               "zstd\n"
                               "compressed) or a 'docker save' tarball. FILE '-' reads standard input. "
                               "--name names\n"
                               "the image, and wins over a name the archive gives (an archive names "
                               "itself;\n"
                               "you decide). With a bare tag in the archive it gives the repository "
                               "('latest' +\n"
                               "--name localhost/foo = localhost/foo:latest). Prints 'REF: DIGEST' per "
                               "image, then "
                               "waits until\n"
                               "this machine's platform of each is unpacked (as 'images unpack' does), "
                               "unless\n"
                               "--no-unpack.\n");
                        return 0;
                case 'n':
                        name = optarg;
                        break;
                case ARG_NO_UNPACK:
                        flags |= IMPORT_FLAG_NO_UNPACK;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "berthctl: images import: expected exactly one FILE (see --help)\n");
                return -EINVAL;
        }
        file = argv[optind];
        if (streq(file, "-"))
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "berthctl: images import: cannot open '%s': %s\n", file, strerror(errno));
                return -errno;
        }

        r = broker_connect(&bus);
        if (r < 0)
                return r;
        r = call_long(bus, "ImportImage", &reply, "images import", "hst", fd, name, flags);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ss)");
        for (;;) {
                const char *ref, *digest;

                if (r < 0)
                        return report_bus_error("images import", NULL, r);
                r = sd_bus_message_read(reply, "(ss)", &ref, &digest);
                if (r == 0)
                        break;
                if (r > 0) {
                        printf("%s: %s\n", ref, digest);
                        g_strv_builder_add(sb, ref);
                }
        }
        fflush(stdout);
        if (flags & IMPORT_FLAG_NO_UNPACK)
                return 0;
        /* The broker started unpacking each image (ImportImage without flag bit 0): UnpackImage joins that
         * transfer (or finds every layer committed already) and we wait for it to end. */
        refs = g_strv_builder_end(sb);
        STRV_FOREACH(ref, refs) {
                r = transfer_view_run("images import", "UnpackImage", *ref, "", 0, true);
                if (r < 0)
                        return r;
        }
        return 0;
}

int images_verb_export(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *ref, *file;
        bool to_stdout;
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl images export REF FILE\n\n"
                       "Write the image as an OCI image layout tar archive (what 'skopeo copy "
                       "oci-archive:FILE'\n"
                       "and 'ctr images import FILE' read). FILE '-' writes to standard output.\n");
                return 0;
        }
        if (argc != 3) {
                fprintf(stderr, "berthctl: images export: expected REF and FILE (see --help)\n");
                return -EINVAL;
        }
        ref = argv[1];
        file = argv[2];
        to_stdout = streq(file, "-");
        if (to_stdout) {
                if (isatty(STDOUT_FILENO)) {
                        fprintf(stderr,
                                "berthctl: images export: refusing to write an archive to a terminal\n");
                        return -EINVAL;
                }
                fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        } else
                fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0) {
                fprintf(stderr, "berthctl: images export: cannot open '%s': %s\n", file, strerror(errno));
                return -errno;
        }

        r = broker_connect(&bus);
        if (r >= 0)
                r = call_long(bus, "ExportImage", NULL, "images export", "sht", ref, fd, UINT64_C(0));
        if (r < 0) {
                /* Leave no half-written archive behind under the name the user gave. */
                if (!to_stdout)
                        (void) unlink(file);
                return r;
        }
        if (!to_stdout && !arg.quiet)
                printf("%s: exported to %s\n", ref, file);
        return 0;
}
