/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "berthctl.h"
#include "config.h"
#include "macro.h"

/* berthctl-commands.so: every command but the few berthctl.c runs itself, loaded by berthctl when one is
 * asked for. berthctl talks only to the broker (org.berth.Broker1); every command is one file,
 * cmd-<group>.c. Subcommands follow ctr's: `berthctl images pull`, `berthctl info`, … */

CliOptions arg = {};

static const Command commands[] = {
        { "info", "Show the version and the state of the berth services", cmd_info, NULL },
        { "images", "Pull, list, inspect, tag and remove images", NULL, images_verbs },
        { "content", "List and garbage-collect the content store", NULL, content_verbs },
        { "snapshots", "List, inspect and remove unpacked layer snapshots", NULL, snapshots_verbs },
        { "login", "Store credentials for a registry", cmd_login, NULL },
        { "logout", "Forget the credentials for a registry", cmd_logout, NULL },
        { "containers", "Containers, ctr-style (ls, create, start, stop, rm, inspect, logs)", NULL,
          containers_verbs },
        { "tasks", "Running containers, ctr-style (ls, kill)", NULL, tasks_verbs },
        { "network", "Container networks (create, ls, inspect, rm)", NULL, network_verbs },
};

static void help(const Command *front_commands) {
        printf("berthctl [OPTIONS...] COMMAND [ARGS...]\n\n"
               "Drive the berth container runtime through its broker (org.berth.Broker1).\n\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-12s %s\n", commands[i].name, commands[i].summary);
        for (const Command *c = container_commands; c->name; c++)
                printf("  %-12s %s\n", c->name, c->summary);
        for (const Command *c = front_commands; c->name; c++)
                printf("  %-12s %s\n", c->name, c->summary);
        printf("\nOptions:\n"
               "  -h --help             Show this help\n"
               "     --version          Show package version\n"
               "     --json             Print machine-readable JSON where a command supports it\n"
               "     --no-ask-password  Never ask for polkit authentication (default when not on a tty)\n"
               "  -q --quiet            Print less\n\n"
               "Run 'berthctl COMMAND --help' for a command's options.\n");
}

static void group_help(const Command *c) {
        printf("berthctl %s VERB [ARGS...]\n\n%s.\n\nVerbs:\n", c->name, c->summary);
        for (const Verb *v = c->verbs; v->name; v++)
                printf("  %-8s %-20s %s\n", v->name, v->args, v->summary);
}

static int run_command(const Command *c, int argc, char *argv[]) {
        if (!c->verbs)
                return c->run(argc, argv);

        if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
                group_help(c);
                return argc < 2 ? -EINVAL : 0;
        }
        for (const Verb *v = c->verbs; v->name; v++)
                if (streq(v->name, argv[1]))
                        return v->run(argc - 1, argv + 1);

        fprintf(stderr, "berthctl: unknown verb '%s %s' (see 'berthctl %s --help')\n", c->name, argv[1],
                c->name);
        return -EINVAL;
}

static int commands_run(const CliOptions *o, int argc, char *argv[]) {
        arg = *o;
        for (const Command *c = container_commands; c->name; c++)
                if (streq(c->name, argv[0]))
                        return command_exit_status(c, c->run(argc, argv));
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, argv[0]))
                        return command_exit_status(&commands[i], run_command(&commands[i], argc, argv));

        fprintf(stderr, "berthctl: unknown command '%s' (see 'berthctl --help')\n", argv[0]);
        return EXIT_FAILURE;
}

_public_ const BerthctlCommands berthctl_commands = {
        .abi = BERTHCTL_COMMANDS_ABI,
        .help = help,
        .run = commands_run,
};
