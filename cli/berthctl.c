/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "berthctl.h"
#include "config.h"
#include "macro.h"

/* berthctl's front: this binary links libc and libsystemd only. The commands a user waits on in a loop
 * (exec, and attach and top beside it in cmd-exec.c) run from here; every other command lives in
 * berthctl-commands.so (berthctl-commands.c), loaded only for them, with GLib, json-glib and GIO: loading
 * those costs about 3.5 ms, a third of an exec's time (bench/exec-vs-ctr.sh). */

CliOptions arg = {};

static const Command front_commands[] = {
        { "exec", NULL, cmd_exec, NULL, true },
        { "attach", NULL, cmd_attach, NULL, true },
        { "top", NULL, cmd_top, NULL, false },
};

/* The module is found through this binary's RUNPATH: $ORIGIN in the build tree, the installed
 * <libdir>/berth after meson install (cli/meson.build). */
static const BerthctlCommands *commands_load(void) {
        const BerthctlCommands *c;
        void *m;

        m = dlopen(BERTHCTL_COMMANDS_MODULE, RTLD_NOW | RTLD_LOCAL);
        if (!m) {
                fprintf(stderr, "berthctl: cannot load its commands (%s): %s\n", BERTHCTL_COMMANDS_MODULE,
                        dlerror());
                return NULL;
        }
        c = dlsym(m, "berthctl_commands");
        if (!c || c->abi != BERTHCTL_COMMANDS_ABI) {
                fprintf(stderr, "berthctl: %s does not belong to this berthctl (reinstall berth)\n",
                        BERTHCTL_COMMANDS_MODULE);
                return NULL;
        }
        return c;
}

int main(int argc, char *argv[]) {
        const BerthctlCommands *c;
        int i;

        i = cli_parse_global_options(argc, argv);
        if (i == CLI_OPTIONS_VERSION) {
                printf("berthctl %s\n", BERTH_VERSION);
                return EXIT_SUCCESS;
        }
        if (i == -EINVAL)
                return EXIT_FAILURE;
        if (i > 0 && i < argc)
                for (size_t k = 0; k < ELEMENTSOF(front_commands); k++)
                        if (streq(front_commands[k].name, argv[i]))
                                return command_exit_status(&front_commands[k],
                                                           front_commands[k].run(argc - i, argv + i));

        c = commands_load();
        if (!c)
                return EXIT_FAILURE;
        if (i == CLI_OPTIONS_HELP || i >= argc) {
                c->help();
                return i == CLI_OPTIONS_HELP ? EXIT_SUCCESS : EXIT_FAILURE;
        }
        return c->run(&arg, argc - i, argv + i);
}
