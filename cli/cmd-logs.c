/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl logs [-f] [--tail N] [--since T] [-t] NAME, and the log printer `start -a` shares.
 *
 * Container.OpenLogStreams gives the log files (log.1, log: oldest first) and, with -f, a pipe the shim
 * feeds: its first line is "<inode> <size>" of the log file at the moment following began; the file with
 * that inode is read up to size, the rest comes through the pipe until the shim exits (EOF), so nothing is
 * missed or printed twice and nothing polls. Records are "<RFC 3339 time> <stdout|stderr> <F|P> <text>"
 * (lib/shim-protocol.h): the text goes to our stdout or stderr as the container wrote it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "berthctl.h"
#include "bus-names.h"
#include "container-cli.h"
#include "fs-util.h"
#include "log-record.h"
#include "macro.h"

#define OPEN_LOG_STREAMS_FLAG_FOLLOW (UINT64_C(1) << 0)
#define LOG_RECORD_MAX 65536U
#define LOG_TAIL_MAX 1000000U

typedef struct LogPrinter {
        uint64_t since_usec; /* records before it are skipped */
        bool timestamps;     /* -t */
        bool at_line_start[2];
        /* --tail: the last `tail` records of the files, printed once the files are read */
        uint64_t tail;
        bool tail_set;
        char **ring;
        uint64_t ring_len, ring_next;
        bool buffering;
} LogPrinter;

static int print_record(LogPrinter *p, const char *rec) {
        LogRecord r;
        int fd;

        if (log_record_parse(rec, &r) < 0)
                return 0; /* not a record: skipped */
        if (r.time_usec < p->since_usec)
                return 0;
        fd = r.stderr_stream ? STDERR_FILENO : STDOUT_FILENO;
        if (p->timestamps && p->at_line_start[r.stderr_stream]) {
                if (loop_write(fd, rec, r.time_len) < 0 || loop_write(fd, " ", 1) < 0)
                        return -EPIPE;
        }
        if (loop_write(fd, r.text, strlen(r.text)) < 0)
                return -EPIPE;
        if (!r.partial && loop_write(fd, "\n", 1) < 0)
                return -EPIPE;
        p->at_line_start[r.stderr_stream] = !r.partial;
        return 0;
}

static int handle_record(LogPrinter *p, const char *rec) {
        if (!p->buffering)
                return print_record(p, rec);
        if (p->tail == 0)
                return 0;
        /* A ring of the last `tail` records. */
        free(p->ring[p->ring_next]);
        p->ring[p->ring_next] = strdup(rec);
        if (!p->ring[p->ring_next])
                return -ENOMEM;
        p->ring_next = (p->ring_next + 1) % p->tail;
        if (p->ring_len < p->tail)
                p->ring_len++;
        return 0;
}

static int flush_tail(LogPrinter *p) {
        int r = 0;

        if (!p->buffering)
                return 0;
        p->buffering = false;
        for (uint64_t i = 0; i < p->ring_len; i++) {
                uint64_t k = (p->ring_next + p->tail - p->ring_len + i) % p->tail;
                if (r >= 0)
                        r = print_record(p, p->ring[k]);
                free(p->ring[k]);
                p->ring[k] = NULL;
        }
        return r;
}

/* Reads fd to its end (or `limit` bytes), record by record. */
static int read_records(LogPrinter *p, int fd, uint64_t limit) {
        _cleanup_free_ char *buf = malloc(LOG_RECORD_MAX + 1);
        size_t len = 0;
        uint64_t total = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                size_t want = LOG_RECORD_MAX - len;
                ssize_t n;
                char *nl;

                if (limit != UINT64_MAX && limit - total < want)
                        want = (size_t) (limit - total);
                if (want == 0)
                        break;
                n = read(fd, buf + len, want);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                total += (uint64_t) n;
                len += (size_t) n;
                while ((nl = memchr(buf, '\n', len))) {
                        *nl = 0;
                        r = handle_record(p, buf);
                        if (r < 0)
                                return r;
                        len -= (size_t) (nl + 1 - buf);
                        memmove(buf, nl + 1, len);
                }
                if (len == LOG_RECORD_MAX)
                        len = 0; /* longer than any record the shim writes: dropped */
        }
        return 0;
}

/* The follow pipe's first line: "<inode> <size>". */
static int read_follow_header(int fd, uint64_t *ret_ino, uint64_t *ret_size) {
        char line[64];
        size_t n = 0;

        while (n < sizeof(line) - 1) {
                ssize_t k = read(fd, line + n, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -EPROTO;
                if (line[n] == '\n')
                        break;
                n++;
        }
        line[n] = 0;
        if (sscanf(line, "%" SCNu64 " %" SCNu64, ret_ino, ret_size) != 2)
                return -EPROTO;
        return 0;
}

static int print_streams(sd_bus_message *reply, LogPrinter *p, bool follow) {
        int files[2] = { -1, -1 }, pipe_fd = -1, n_files = 0, r;
        uint64_t ino = 0, size = 0;

        r = sd_bus_message_enter_container(reply, 'a', "h");
        while (r >= 0) {
                int fd;
                r = sd_bus_message_read(reply, "h", &fd);
                if (r <= 0)
                        break;
                if (n_files < 2)
                        files[n_files++] = fd;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "h");
        if (r >= 0 && sd_bus_message_read(reply, "h", &pipe_fd) <= 0)
                pipe_fd = -1;
        if (r < 0)
                return r;
        if (pipe_fd >= 0 && read_follow_header(pipe_fd, &ino, &size) < 0)
                pipe_fd = -1;
        for (int i = 0; i < n_files; i++) {
                struct stat st;
                bool last = pipe_fd >= 0 && fstat(files[i], &st) == 0 && (uint64_t) st.st_ino == ino;

                r = read_records(p, files[i], last ? size : UINT64_MAX);
                if (r < 0)
                        return r;
                if (last)
                        break; /* anything after it came through the pipe */
        }
        r = flush_tail(p);
        if (r < 0)
                return r;
        if (follow && pipe_fd >= 0) {
                fflush(stdout);
                r = read_records(p, pipe_fd, UINT64_MAX);
        }
        return r;
}

int container_print_log_full(sd_bus *bus, const char *path, const LogOptions *o, const char *what) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        LogPrinter p = {
                .since_usec = o->since_usec,
                .timestamps = o->timestamps,
                .at_line_start = { true, true },
                .tail = o->tail,
                .tail_set = o->tail_set,
                .buffering = o->tail_set,
        };
        int r;

        r = container_call(bus, path, "OpenLogStreams", &reply, what, "t",
                           o->follow ? OPEN_LOG_STREAMS_FLAG_FOLLOW : UINT64_C(0));
        if (r < 0)
                return r;
        if (p.tail_set && p.tail > 0) {
                p.ring = calloc(p.tail, sizeof(char *));
                if (!p.ring)
                        return -ENOMEM;
        }
        r = print_streams(reply, &p, o->follow);
        for (uint64_t i = 0; p.ring && i < p.tail; i++)
                free(p.ring[i]);
        free(p.ring);
        fflush(stdout);
        if (r == -EPIPE)
                return 0; /* our reader went away (| head) */
        if (r < 0)
                return report_bus_error(what, NULL, r);
        return 0;
}

int container_print_log(sd_bus *bus, const char *path, bool follow, const char *what) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        LogOptions o = { .follow = follow };
        const char *reason;
        int32_t code;
        int r;

        r = container_print_log_full(bus, path, &o, what);
        if (r < 0 || !follow)
                return r;
        /* The follow pipe ends with the container: its exit status. */
        r = container_call(bus, path, "Wait", &reply, what, "t", UINT64_C(0));
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "is", &code, &reason);
        if (r < 0)
                return report_bus_error(what, NULL, r);
        return container_exit_status(code);
}

static void logs_help(void) {
        printf("berthctl logs [-f] [--tail N] [--since TIME] [-t] NAME\n\n"
               "Print a detached container's output: its stdout to stdout, its stderr to stderr.\n\n"
               "  -f --follow       Keep printing until the container stops\n"
               "     --tail N       Only the last N log records (then, with -f, what follows)\n"
               "     --since TIME   Only records since TIME: RFC 3339 (2024-01-02T15:04:05Z) or a\n"
               "                    duration before now (10m, 1h30m, 45s)\n"
               "  -t --timestamps   Prefix each line with its time (RFC 3339, UTC)\n");
}

int cmd_logs(int argc, char *argv[]) {
        enum { ARG_TAIL = 0x100, ARG_SINCE };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "follow", no_argument, NULL, 'f' },
                                                 { "timestamps", no_argument, NULL, 't' },
                                                 { "tail", required_argument, NULL, ARG_TAIL },
                                                 { "since", required_argument, NULL, ARG_SINCE },
                                                 {} };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *path = NULL;
        LogOptions o = {};
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+hft", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        logs_help();
                        return 0;
                case 'f':
                        o.follow = true;
                        break;
                case 't':
                        o.timestamps = true;
                        break;
                case ARG_TAIL: {
                        char *end;
                        if (streq(optarg, "all"))
                                break;
                        errno = 0;
                        unsigned long long v = strtoull(optarg, &end, 10);
                        if (errno || end == optarg || *end || optarg[0] == '-' || v > LOG_TAIL_MAX) {
                                fprintf(stderr, "berthctl: logs: invalid --tail '%s'\n", optarg);
                                return -EINVAL;
                        }
                        o.tail = v;
                        o.tail_set = true;
                        break;
                }
                case ARG_SINCE:
                        if (log_parse_since(optarg, &o.since_usec) < 0) {
                                fprintf(stderr,
                                        "berthctl: logs: invalid --since '%s' (RFC 3339 time or a duration "
                                        "like 10m)\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                default:
                        return -EINVAL;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "berthctl: logs: expected one container name (see --help)\n");
                return -EINVAL;
        }
        r = broker_connect(&bus);
        if (r >= 0)
                r = container_resolve(bus, argv[optind], "logs", &path);
        if (r >= 0)
                r = container_print_log_full(bus, path, &o, "logs");
        return r < 0 ? r : 0;
}
