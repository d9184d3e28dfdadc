/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl pause / unpause NAME...: freeze and thaw every process of containers (the cgroup freezer). */
#include <errno.h>
#include <stdio.h>

#include "berthctl.h"
#include "macro.h"
#include "container-cli.h"

static int pause_names(int argc, char *argv[], const char *verb, const char *member) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int ret = 0, r;

        if (wants_help(argc, argv)) {
                printf("berthctl %s NAME...\n\n%s every process of the containers (cgroup freezer).\n", verb,
                       streq(verb, "pause") ? "Freeze" : "Thaw");
                return 0;
        }
        if (argc < 2) {
                fprintf(stderr, "berthctl: %s: expected a container name (see --help)\n", verb);
                return -EINVAL;
        }
        r = broker_connect(&bus);
        if (r < 0)
                return r;
        for (int i = 1; i < argc; i++) {
                _cleanup_free_ char *path = NULL;

                r = container_resolve(bus, argv[i], verb, &path);
                if (r >= 0)
                        r = container_call(bus, path, member, NULL, verb, "t", UINT64_C(0));
                if (r >= 0)
                        printf("%s\n", argv[i]);
                else
                        ret = r;
        }
        return ret;
}

int cmd_pause(int argc, char *argv[]) {
        return pause_names(argc, argv, "pause", "Pause");
}

int cmd_unpause(int argc, char *argv[]) {
        return pause_names(argc, argv, "unpause", "Unpause");
}
