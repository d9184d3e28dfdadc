/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What both halves of berthctl (berthctl.c, berthctl-commands.c) share: the global options before the
 * command word, and how a command's result becomes the exit status. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

#include "berthctl.h"
#include "container-cli.h"

int cli_parse_global_options(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_JSON, ARG_NO_ASK_PASSWORD };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                { "quiet", no_argument, NULL, 'q' },
                {}
        };
        int c;

        arg.ask_password = isatty(STDIN_FILENO);

        /* Global options stop at the first command word; the rest belongs to the command. */
        optind = 0;
        while ((c = getopt_long(argc, argv, "+hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        return CLI_OPTIONS_HELP;
                case ARG_VERSION:
                        return CLI_OPTIONS_VERSION;
                case ARG_JSON:
                        arg.json = true;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        arg.ask_password = false;
                        break;
                case 'q':
                        arg.quiet = true;
                        break;
                default:
                        return -EINVAL;
                }
        return optind;
}

int command_exit_status(const Command *c, int r) {
        if (c->returns_status)
                return r < 0 ? -CLI_EXIT_ERROR : r;
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
