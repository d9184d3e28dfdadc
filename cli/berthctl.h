/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

/* Global options, set by berthctl.c before a command runs. */
typedef struct CliOptions {
        bool json;
        bool ask_password; /* allow interactive polkit authentication */
        bool quiet;
} CliOptions;
extern CliOptions arg;

typedef struct Verb {
        const char *name;
        const char *args;    /* "REF", "" … for help */
        const char *summary; /* one line */
        int (*run)(int argc, char *argv[]);
} Verb;

typedef struct Command {
        const char *name;
        const char *summary;
        int (*run)(int argc, char *argv[]);
        const Verb *verbs;   /* for command groups (images, content, …); NULL for single commands */
        bool returns_status; /* run returns an exit status (>= 0), or < 0 for a failure (exit 125) */
} Command;

/* cli-options.c, shared by both halves of berthctl: the global options into arg. Returns the index of the
 * command word in argv (argc when there is none), CLI_OPTIONS_HELP or CLI_OPTIONS_VERSION when one of those
 * was asked for, or -EINVAL after getopt reported a bad option. */
enum { CLI_OPTIONS_HELP = -1000, CLI_OPTIONS_VERSION = -1001 };
int cli_parse_global_options(int argc, char *argv[]);
/* The exit status for what c's run returned. */
int command_exit_status(const Command *c, int r);

/* berthctl-commands.so's one exported symbol, berthctl_commands: the commands berthctl (berthctl.c) does
 * not run itself. abi must be BERTHCTL_COMMANDS_ABI: a module from another build is refused. */
#define BERTHCTL_COMMANDS_MODULE "berthctl-commands.so"
#define BERTHCTL_COMMANDS_ABI 2
typedef struct BerthctlCommands {
        unsigned abi;
        /* The help, with the commands berthctl runs itself (front_commands, terminated by {}). */
        void (*help)(const Command *front_commands);
        /* argv[0] is the command word; returns the exit status. */
        int (*run)(const CliOptions *o, int argc, char *argv[]);
} BerthctlCommands;

/* bus-client.c: connect to the broker, and turn a failed call into one line for the user. */
int broker_connect(sd_bus **ret);
/* Prints "berthctl: <what>: <reason>" for a failed call and returns a negative errno. */
int report_bus_error(const char *what, const sd_bus_error *error, int r);
/* Calls member on the broker's Manager with the arguments types/...; reports a failure (once) with
 * report_bus_error(what, …). broker_call() waits broker_default_timeout(). */
int broker_call(sd_bus *bus, const char *member, sd_bus_message **reply, const char *what, const char *types,
                ...);
/* broker_connect() into *bus (the caller owns it), then broker_call(). */
int broker_connect_call(sd_bus **bus, const char *member, sd_bus_message **reply, const char *what,
                        const char *types, ...);
int broker_callv(sd_bus *bus, const char *member, sd_bus_message **reply, const char *what,
                 uint64_t timeout_usec, const char *types, va_list ap);
/* For calls whose arguments sd_bus_message_append() cannot take (strv): build with broker_new_call(),
 * send with broker_send(), which reports a failed call like broker_call(). */
int broker_new_call(sd_bus *bus, sd_bus_message **ret, const char *member);
int broker_send(sd_bus *bus, sd_bus_message *m, uint64_t timeout_usec, sd_bus_message **reply,
                const char *what);
/* 0 (libsystemd's default), or ten minutes when an interactive polkit prompt may be answered. */
uint64_t broker_default_timeout(void);

/* Commands. One file per group (cmd-<group>.c). */
int cmd_info(int argc, char *argv[]);
extern const Verb images_verbs[];               /* cmd-images.c */
int images_verb_import(int argc, char *argv[]); /* cmd-images-archive.c */
int images_verb_export(int argc, char *argv[]);
extern const Verb content_verbs[];   /* cmd-content.c */
extern const Verb snapshots_verbs[]; /* cmd-snapshots.c */
extern const Verb network_verbs[];   /* cmd-network.c */
/* cmd-images-mount.c: images mount / unmount / usage */
int images_verb_mount(int argc, char *argv[]);
int images_verb_unmount(int argc, char *argv[]);
int images_verb_usage(int argc, char *argv[]);
int cmd_login(int argc, char *argv[]); /* cmd-login.c */
int cmd_logout(int argc, char *argv[]);
/* cmd-content.c: PruneContent, shared by `content gc` and `images prune`. */
int content_gc(const char *what);

/* Containers: cmd-run.c (run, create), cmd-containers.c (the rest, and the ctr-style groups). */
int cmd_run(int argc, char *argv[]);
int cmd_exec(int argc, char *argv[]); /* cmd-exec.c: exec, attach, top */
int cmd_attach(int argc, char *argv[]);
int cmd_top(int argc, char *argv[]);
int cmd_create(int argc, char *argv[]);
extern const Command container_commands[]; /* terminated by {} */
extern const Verb containers_verbs[];
extern const Verb tasks_verbs[];
/* Living containers: cmd-logs.c, cmd-events.c, cmd-stats.c, cmd-pause.c. */
int cmd_logs(int argc, char *argv[]);
int cmd_events(int argc, char *argv[]);
int cmd_stats(int argc, char *argv[]);
int cmd_pause(int argc, char *argv[]);
int cmd_unpause(int argc, char *argv[]);

/* Helpers for verbs. */
bool wants_help(int argc, char *argv[]);
void format_bytes(char *buf, size_t size, uint64_t bytes);
