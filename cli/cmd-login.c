/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <getopt.h>
#include <stdio.h>
#include <termios.h>

#include "berthctl.h"
#include "bus-util.h"
#include "erase-util.h"

/* berthctl login / logout: the secret goes to the broker (and on to the fetcher) in the message body,
 * never on the command line where ps would show it. */

#define SECRET_MAX 4096

static int read_line(FILE *f, char **ret) {
        char *line = NULL;
        size_t n = 0;
        ssize_t l;

        l = getline(&line, &n, f);
        if (l < 0) {
                free(line);
                return -ENODATA;
        }
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
                line[--l] = 0;
        if (l > SECRET_MAX) {
                erase_and_free(line);
                return -E2BIG;
        }
        *ret = line;
        return 0;
}

static int prompt(const char *what, bool echo, char **ret) {
        struct termios old, quiet;
        bool restore = false;
        int r;

        fprintf(stderr, "%s: ", what);
        fflush(stderr);
        if (!echo && tcgetattr(STDIN_FILENO, &old) >= 0) {
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t) ECHO;
                restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) >= 0;
        }
        r = read_line(stdin, ret);
        if (restore) {
                (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
                fputc('\n', stderr);
        }
        return r;
}

int cmd_login(int argc, char *argv[]) {
        enum { ARG_PASSWORD_STDIN = 0x100 };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "username", required_argument, NULL, 'u' },
                                                 { "password-stdin", no_argument, NULL, ARG_PASSWORD_STDIN },
                                                 {} };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(erase_and_freep) char *password = NULL;
        _cleanup_free_ char *user = NULL;
        bool password_stdin = false, tty = isatty(STDIN_FILENO);
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+hu:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("berthctl login [-u USER] [--password-stdin] REGISTRY\n\n"
                               "Check credentials against REGISTRY and store them for later pulls.\n"
                               "The password is read from stdin with --password-stdin, otherwise asked\n"
                               "for on the terminal without echo.\n");
                        return 0;
                case 'u':
                        free(user);
                        user = strdup(optarg);
                        if (!user)
                                return -ENOMEM;
                        break;
                case ARG_PASSWORD_STDIN:
                        password_stdin = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "berthctl: login: expected exactly one registry\n");
                return -EINVAL;
        }

        if (!user) {
                if (password_stdin || !tty) {
                        fprintf(stderr, "berthctl: login: a username is needed (-u USER)\n");
                        return -EINVAL;
                }
                r = prompt("Username", true, &user);
                if (r < 0) {
                        fprintf(stderr, "berthctl: login: no username given\n");
                        return r;
                }
        }
        if (password_stdin)
                r = read_line(stdin, &password);
        else if (tty)
                r = prompt("Password", false, &password);
        else {
                fprintf(stderr, "berthctl: login: not on a terminal; use --password-stdin\n");
                return -EINVAL;
        }
        if (r < 0 || isempty(password)) {
                fprintf(stderr, "berthctl: login: no password given\n");
                return r < 0 ? r : -EINVAL;
        }

        r = broker_connect_call(&bus, "Login", NULL, "login", "sss", argv[optind], user, password);
        if (r < 0)
                return r;
        if (!arg.quiet)
                printf("Login succeeded.\n");
        return 0;
}

int cmd_logout(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;

        if (wants_help(argc, argv)) {
                printf("berthctl logout REGISTRY\n\nForget the stored credentials for REGISTRY.\n");
                return 0;
        }
        if (argc != 2) {
                fprintf(stderr, "berthctl: logout: expected exactly one registry\n");
                return -EINVAL;
        }
        return broker_connect_call(&bus, "Logout", NULL, "logout", "s", argv[1]);
}
