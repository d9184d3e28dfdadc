/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berthctl.h"
#include "config.h"
#include "macro.h"

/* berthctl's front: this binary links libc and libsystemd only. The commands a user waits on in a loop
 * (exec, and attach and top beside it in cmd-exec.c) run from here; every other command lives in
 * berthctl-commands.so (berthctl-commands.c), loaded only for them, with GLib, json-glib and GIO: loading
 * those costs about 3.5 ms, a third of an exec's time (bench/exec-vs-ctr.sh). */

CliOptions arg = {};

/* The commands this binary runs itself (cmd-exec.c); the module's help lists them too. */
static const Command front_commands[] = {
        { "exec", "Run a command in a running container", cmd_exec, NULL, true },
        { "attach", "Join the terminal of a detached -t container (ctrl-p ctrl-q detaches)", cmd_attach,
          NULL, true },
        { "top", "List a container's processes", cmd_top, NULL, false },
        {},
};

/* Where the module is: beside the binary when it is there (the build tree, or a copy of berthctl with its
 * module), else where meson installs it. By path, not by the loader's search through a RUNPATH: under
 * AddressSanitizer dlopen() is called from the sanitizer's interceptor, whose RUNPATH is not ours. */
static const char *commands_path(char *buf, size_t size) {
        ssize_t n = readlink("/proc/self/exe", buf, size);
        char *slash = n > 0 && (size_t) n < size ? memrchr(buf, '/', (size_t) n) : NULL;

        if (slash) {
                size_t left = size - (size_t) (slash + 1 - buf);
                if ((size_t) snprintf(slash + 1, left, "%s", BERTHCTL_COMMANDS_MODULE) < left &&
                    access(buf, F_OK) >= 0)
                        return buf;
        }
        return BERTH_PKGLIBDIR "/" BERTHCTL_COMMANDS_MODULE;
}

static const BerthctlCommands *commands_load(void) {
        const BerthctlCommands *c;
        char buf[PATH_MAX];
        const char *path;
        void *m;

        path = commands_path(buf, sizeof(buf));
        m = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!m) {
                fprintf(stderr, "berthctl: cannot load its commands: %s\n", dlerror());
                return NULL;
        }
        c = dlsym(m, "berthctl_commands");
        if (!c || c->abi != BERTHCTL_COMMANDS_ABI) {
                fprintf(stderr, "berthctl: %s does not belong to this berthctl (reinstall berth)\n", path);
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
                for (const Command *f = front_commands; f->name; f++)
                        if (streq(f->name, argv[i]))
                                return command_exit_status(f, f->run(argc - i, argv + i));

        c = commands_load();
        if (!c)
                return EXIT_FAILURE;
        if (i == CLI_OPTIONS_HELP || i >= argc) {
                c->help(front_commands);
                return i == CLI_OPTIONS_HELP ? EXIT_SUCCESS : EXIT_FAILURE;
        }
        return c->run(&arg, argc - i, argv + i);
}
