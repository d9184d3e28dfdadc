/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl run / create: docker's and podman's argument order (options stop at IMAGE), turned into
 * Manager.CreateContainer's options JSON; foreground runs pass our own stdin (with -i) and pipes for
 * the container's stdout and stderr, which its shim logs and copies to (container-attach.c). */
#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "berthctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "container-cli.h"
#include "output.h"
#include "run-health.h"

#define MOUNTS_MAX 64

typedef struct RunOptions {
        const char *name;
        bool rm, detach, tty, interactive;
        GPtrArray *env; /* char* (owned) */
        const char *workdir, *user, *entrypoint, *hostname;
        bool entrypoint_set;
        bool read_only, privileged, seccomp_unconfined;
        const char *net;      /* NULL: the default network */
        GPtrArray *ports;     /* JsonNode* objects (owned) */
        GPtrArray *dns;       /* borrowed argv strings */
        GPtrArray *add_hosts; /* borrowed argv strings */
        uint64_t memory, cpu_quota_milli, pids_limit;
        const char *restart;           /* --restart, checked by the broker */
        uint64_t log_max_size;         /* --log-max-size */
        GPtrArray *cap_add, *cap_drop; /* borrowed argv strings */
        int mount_fds[MOUNTS_MAX];
        char *mount_dst[MOUNTS_MAX];
        bool mount_ro[MOUNTS_MAX];
        unsigned n_mounts;
        const char *image;
        char **cmd; /* borrowed from argv, may be empty */
        int n_cmd;
        RunHealth health; /* run-health.c */
} RunOptions;

static void run_options_done(RunOptions *o) {
        if (o->env)
                g_ptr_array_unref(o->env);
        if (o->cap_add)
                g_ptr_array_unref(o->cap_add);
        if (o->cap_drop)
                g_ptr_array_unref(o->cap_drop);
        if (o->ports)
                g_ptr_array_unref(o->ports);
        if (o->dns)
                g_ptr_array_unref(o->dns);
        if (o->add_hosts)
                g_ptr_array_unref(o->add_hosts);
        for (unsigned i = 0; i < o->n_mounts; i++) {
                safe_close(o->mount_fds[i]);
                free(o->mount_dst[i]);
        }
}

static int parse_size(const char *s, uint64_t *ret) {
        char *end;
        double v;
        uint64_t mult = 1;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || v < 0 || !isfinite(v))
                return -EINVAL;
        switch (tolower((unsigned char) *end)) {
        case 0:
                break;
        case 'b':
                break;
        case 'k':
                mult = UINT64_C(1) << 10;
                break;
        case 'm':
                mult = UINT64_C(1) << 20;
                break;
        case 'g':
                mult = UINT64_C(1) << 30;
                break;
        default:
                return -EINVAL;
        }
        if (*end && end[1] && !(tolower((unsigned char) end[1]) == 'b' && !end[2]))
                return -EINVAL;
        if (v * (double) mult > 1e18)
                return -ERANGE;
        *ret = (uint64_t) (v * (double) mult);
        return 0;
}

/* "K=V" as given; "K" alone takes K from our environment (docker's rule), or is dropped when unset. */
static int add_env(RunOptions *o, const char *e) {
        const char *v;

        if (isempty(e) || e[0] == '=') {
                fprintf(stderr, "berthctl: run: invalid environment entry '%s'\n", e);
                return -EINVAL;
        }
        if (strchr(e, '=')) {
                g_ptr_array_add(o->env, g_strdup(e));
                return 0;
        }
        v = getenv(e);
        if (v)
                g_ptr_array_add(o->env, g_strdup_printf("%s=%s", e, v));
        return 0;
}

static int add_env_file(RunOptions *o, const char *path) {
        g_autofree char *data = NULL;
        g_auto(GStrv) lines = NULL;
        g_autoptr(GError) err = NULL;
        int r;

        if (!g_file_get_contents(path, &data, NULL, &err)) {
                fprintf(stderr, "berthctl: run: cannot read env file '%s': %s\n", path, err->message);
                return -EINVAL;
        }
        lines = g_strsplit(data, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_strstrip(*l);
                if (**l == 0 || **l == '#')
                        continue;
                r = add_env(o, *l);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* --mount type=bind,src=PATH,dst=PATH[,ro|readonly] (also source=, target=, destination=). The source is
 * opened here, as the caller, O_PATH: the supervisor binds what this fd names, never a path. */
static int add_mount(RunOptions *o, const char *spec) {
        g_auto(GStrv) parts = g_strsplit(spec, ",", -1);
        const char *type = NULL, *src = NULL, *dst = NULL;
        bool ro = false;
        int fd;

        for (char **p = parts; *p; p++) {
                char *eq = strchr(*p, '=');
                const char *k = *p, *v = eq ? eq + 1 : NULL;

                if (eq)
                        *eq = 0;
                if (streq(k, "type") && v)
                        type = v;
                else if ((streq(k, "src") || streq(k, "source")) && v)
                        src = v;
                else if ((streq(k, "dst") || streq(k, "target") || streq(k, "destination")) && v)
                        dst = v;
                else if ((streq(k, "ro") || streq(k, "readonly")) &&
                         (!v || streq(v, "true") || streq(v, "1")))
                        ro = true;
                else if ((streq(k, "ro") || streq(k, "readonly")) && (streq(v, "false") || streq(v, "0")))
                        ro = false;
                else {
                        fprintf(stderr, "berthctl: run: --mount: unknown field '%s'\n", k);
                        return -EINVAL;
                }
        }
        if (!streq_ptr(type, "bind") || !src || !dst) {
                fprintf(stderr, "berthctl: run: --mount needs type=bind,src=…,dst=…\n");
                return -EINVAL;
        }
        if (o->n_mounts >= MOUNTS_MAX) {
                fprintf(stderr, "berthctl: run: at most %d mounts\n", MOUNTS_MAX);
                return -E2BIG;
        }
        fd = open(src, O_PATH | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "berthctl: run: --mount: cannot open '%s': %m\n", src);
                return -errno;
        }
        o->mount_fds[o->n_mounts] = fd;
        o->mount_dst[o->n_mounts] = strdup(dst);
        o->mount_ro[o->n_mounts] = ro;
        o->n_mounts++;
        return 0;
}

/* -p [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp]; an IPv6 address goes in brackets: [::1]:8080:80. */
static int add_port(RunOptions *o, const char *verb, const char *spec) {
        g_autofree char *copy = g_strdup(spec);
        g_autoptr(JsonBuilder) b = json_builder_new();
        const char *proto = "tcp", *ip = "";
        char *slash = strrchr(copy, '/'), *rest = copy, *colon, *end;
        unsigned long host, cont;

        if (slash) {
                *slash = 0;
                proto = slash + 1;
        }
        if (rest[0] == '[') {
                char *close = strchr(rest, ']');
                if (!close || close[1] != ':')
                        goto bad;
                *close = 0;
                ip = rest + 1;
                rest = close + 2;
        } else if (strchr(rest, ':') != strrchr(rest, ':')) {
                colon = strchr(rest, ':');
                *colon = 0;
                ip = rest;
                rest = colon + 1;
        }
        colon = strchr(rest, ':');
        if (!colon)
                goto bad;
        *colon = 0;
        errno = 0;
        host = strtoul(rest, &end, 10);
        if (errno || *end || end == rest || host == 0 || host > 65535)
                goto bad;
        cont = strtoul(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || cont == 0 || cont > 65535)
                goto bad;
        if (!streq(proto, "tcp") && !streq(proto, "udp"))
                goto bad;
        json_builder_begin_object(b);
        if (*ip) {
                json_builder_set_member_name(b, "host_ip");
                json_builder_add_string_value(b, ip);
        }
        json_builder_set_member_name(b, "host_port");
        json_builder_add_int_value(b, (gint64) host);
        json_builder_set_member_name(b, "container_port");
        json_builder_add_int_value(b, (gint64) cont);
        json_builder_set_member_name(b, "protocol");
        json_builder_add_string_value(b, proto);
        json_builder_end_object(b);
        g_ptr_array_add(o->ports, json_builder_get_root(b));
        return 0;
bad:
        fprintf(stderr, "berthctl: %s: invalid -p '%s' (expected [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp])\n",
                verb, spec);
        return -EINVAL;
}

static void help(const char *verb) {
        printf("berthctl %s [OPTIONS] IMAGE [COMMAND [ARG...]]\n\n"
               "%s a container from IMAGE (options go before IMAGE, as with docker and podman).\n\n"
               "  --name NAME            Container name (default: a generated one)\n"
               "  --rm                   Remove the container when it exits\n"
               "  -d --detach            Run in the background, print the id (output goes to its log)\n"
               "  -t --tty               Allocate a pseudo-terminal\n"
               "  -i --interactive       Keep stdin attached\n"
               "  -e --env K=V           Set an environment variable (repeatable)\n"
               "     --env-file FILE     Read K=V lines from FILE\n"
               "  -w --workdir DIR       Working directory inside the container\n"
               "  -u --user USER[:GROUP] User (name or uid) inside the image\n"
               "     --entrypoint CMD    Override the image's entrypoint\n"
               "     --hostname NAME     Container host name\n"
               "     --read-only         Mount the root file system read-only\n"
               "     --memory BYTES      Memory limit (k, m, g suffixes)\n"
               "     --cpus N            CPU limit (fractions allowed)\n"
               "     --pids-limit N      Process limit\n"
               "     --cap-add CAP       Add a capability (privileged)\n"
               "     --cap-drop CAP      Drop a capability\n"
               "     --privileged        All capabilities, no seccomp (privileged)\n"
               "     --security-opt seccomp=unconfined  No seccomp filter (privileged)\n"
               "     --net NETWORK       bridge (default: the default network), none (loopback only),\n"
               "                         host (the host's, privileged) or a network from 'network ls'\n"
               "  -p --publish [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp]\n"
               "                         Publish a port (on 127.0.0.1 unless IP is given; a port below\n"
               "                         1024 or another address is privileged)\n"
               "     --dns IP            Name server for the container's /etc/resolv.conf\n"
               "     --add-host NAME:IP  Extra line for the container's /etc/hosts\n"
               "     --mount type=bind,src=PATH,dst=PATH[,ro]  Bind a host path (privileged)\n"
               "     --health-cmd CMD    Health check run with /bin/sh -c in the container\n"
               "     --health-interval T --health-timeout T --health-start-period T  (30s, 500ms, 1m)\n"
               "     --health-retries N  Failures in a row before unhealthy (3)\n"
               "     --health-on-failure none|kill|restart|stop  What an unhealthy container gets\n"
               "     --no-healthcheck    Not even the image's health check\n"
               "     --restart POLICY    no, on-failure[:N], always or unless-stopped\n"
               "     --log-max-size SIZE Rotate the log at SIZE (k, m, g suffixes; one old file kept)\n",
               verb, streq(verb, "run") ? "Run" : "Create");
}

/* Parses argv (argv[0] = the verb). */
static int parse_run_args(const char *verb, int argc, char *argv[], RunOptions *o) {
        enum {
                ARG_NAME = 0x100,
                ARG_RM,
                ARG_ENV_FILE,
                ARG_ENTRYPOINT,
                ARG_HOSTNAME,
                ARG_READ_ONLY,
                ARG_MEMORY,
                ARG_CPUS,
                ARG_PIDS_LIMIT,
                ARG_CAP_ADD,
                ARG_CAP_DROP,
                ARG_PRIVILEGED,
                ARG_SECURITY_OPT,
                ARG_NET,
                ARG_MOUNT,
                ARG_RESTART,
                ARG_LOG_MAX,
                ARG_DNS,
                ARG_ADD_HOST,
        };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "name", required_argument, NULL, ARG_NAME },
                                                 { "rm", no_argument, NULL, ARG_RM },
                                                 { "detach", no_argument, NULL, 'd' },
                                                 { "tty", no_argument, NULL, 't' },
                                                 { "interactive", no_argument, NULL, 'i' },
                                                 { "env", required_argument, NULL, 'e' },
                                                 { "env-file", required_argument, NULL, ARG_ENV_FILE },
                                                 { "workdir", required_argument, NULL, 'w' },
                                                 { "user", required_argument, NULL, 'u' },
                                                 { "entrypoint", required_argument, NULL, ARG_ENTRYPOINT },
                                                 { "hostname", required_argument, NULL, ARG_HOSTNAME },
                                                 { "read-only", no_argument, NULL, ARG_READ_ONLY },
                                                 { "memory", required_argument, NULL, ARG_MEMORY },
                                                 { "cpus", required_argument, NULL, ARG_CPUS },
                                                 { "pids-limit", required_argument, NULL, ARG_PIDS_LIMIT },
                                                 { "cap-add", required_argument, NULL, ARG_CAP_ADD },
                                                 { "cap-drop", required_argument, NULL, ARG_CAP_DROP },
                                                 { "privileged", no_argument, NULL, ARG_PRIVILEGED },
                                                 { "security-opt", required_argument, NULL,
                                                   ARG_SECURITY_OPT },
                                                 { "net", required_argument, NULL, ARG_NET },
                                                 { "network", required_argument, NULL, ARG_NET },
                                                 { "mount", required_argument, NULL, ARG_MOUNT },
                                                 RUN_HEALTH_OPTIONS,
                                                 { "restart", required_argument, NULL, ARG_RESTART },
                                                 { "log-max-size", required_argument, NULL, ARG_LOG_MAX },
                                                 { "publish", required_argument, NULL, 'p' },
                                                 { "dns", required_argument, NULL, ARG_DNS },
                                                 { "add-host", required_argument, NULL, ARG_ADD_HOST },
                                                 {} };
        int c, r;
        char *end;
        double cpus;

        o->env = g_ptr_array_new_with_free_func(g_free);
        o->cap_add = g_ptr_array_new();
        o->cap_drop = g_ptr_array_new();
        o->ports = g_ptr_array_new_with_free_func((GDestroyNotify) json_node_unref);
        o->dns = g_ptr_array_new();
        o->add_hosts = g_ptr_array_new();
        optind = 0;
        /* "+": options stop at IMAGE; what follows is the container's command. */
        while ((c = getopt_long(argc, argv, "+hdtie:w:u:p:", options, NULL)) >= 0) {
                r = run_health_option(&o->health, c, optarg);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                switch (c) {
                case 'h':
                        help(verb);
                        return 0;
                case ARG_NAME:
                        o->name = optarg;
                        break;
                case ARG_RM:
                        o->rm = true;
                        break;
                case 'd':
                        o->detach = true;
                        break;
                case 't':
                        o->tty = true;
                        break;
                case 'i':
                        o->interactive = true;
                        break;
                case 'e':
                        r = add_env(o, optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_ENV_FILE:
                        r = add_env_file(o, optarg);
                        if (r < 0)
                                return r;
                        break;
                case 'w':
                        o->workdir = optarg;
                        break;
                case 'u':
                        o->user = optarg;
                        break;
                case ARG_ENTRYPOINT:
                        o->entrypoint = optarg;
                        o->entrypoint_set = true;
                        break;
                case ARG_HOSTNAME:
                        o->hostname = optarg;
                        break;
                case ARG_READ_ONLY:
                        o->read_only = true;
                        break;
                case ARG_MEMORY:
                        if (parse_size(optarg, &o->memory) < 0) {
                                fprintf(stderr, "berthctl: %s: invalid --memory '%s'\n", verb, optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_CPUS:
                        errno = 0;
                        cpus = strtod(optarg, &end);
                        if (errno != 0 || end == optarg || *end || !(cpus > 0) || cpus > 1e6) {
                                fprintf(stderr, "berthctl: %s: invalid --cpus '%s'\n", verb, optarg);
                                return -EINVAL;
                        }
                        o->cpu_quota_milli = (uint64_t) llround(cpus * 1000.0);
                        if (o->cpu_quota_milli == 0)
                                o->cpu_quota_milli = 1;
                        break;
                case ARG_PIDS_LIMIT:
                        errno = 0;
                        o->pids_limit = strtoull(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end || optarg[0] == '-') {
                                fprintf(stderr, "berthctl: %s: invalid --pids-limit '%s'\n", verb, optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_CAP_ADD:
                        g_ptr_array_add(o->cap_add, optarg);
                        break;
                case ARG_CAP_DROP:
                        g_ptr_array_add(o->cap_drop, optarg);
                        break;
                case ARG_PRIVILEGED:
                        o->privileged = true;
                        break;
                case ARG_SECURITY_OPT:
                        if (streq(optarg, "seccomp=unconfined"))
                                o->seccomp_unconfined = true;
                        else if (!streq(optarg, "seccomp=default")) {
                                fprintf(stderr,
                                        "berthctl: %s: unsupported --security-opt '%s' "
                                        "(seccomp=unconfined or seccomp=default)\n",
                                        verb, optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_NET:
                        /* The supervisor's request parser checks the name. */
                        o->net = optarg;
                        break;
                case 'p':
                        r = add_port(o, verb, optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_DNS:
                        g_ptr_array_add(o->dns, optarg);
                        break;
                case ARG_ADD_HOST:
                        g_ptr_array_add(o->add_hosts, optarg);
                        break;
                case ARG_MOUNT:
                        r = add_mount(o, optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_RESTART:
                        o->restart = optarg;
                        break;
                case ARG_LOG_MAX:
                        if (parse_size(optarg, &o->log_max_size) < 0 || o->log_max_size == 0) {
                                fprintf(stderr, "berthctl: %s: invalid --log-max-size '%s'\n", verb, optarg);
                                return -EINVAL;
                        }
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "berthctl: %s: expected an image (see --help)\n", verb);
                return -EINVAL;
        }
        o->image = argv[optind];
        o->cmd = argv + optind + 1;
        o->n_cmd = argc - optind - 1;
        return 1;
}

static void add_strv(JsonBuilder *b, const char *name, char **v, int n) {
        json_builder_set_member_name(b, name);
        json_builder_begin_array(b);
        for (int i = 0; i < n; i++)
                json_builder_add_string_value(b, v[i]);
        json_builder_end_array(b);
}

static char *options_json(const RunOptions *o, bool detach) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object(b);
        if (o->entrypoint_set) {
                char *ep[1] = { (char *) o->entrypoint };

                /* --entrypoint "" clears it; the image's cmd does not apply to a new entrypoint. */
                add_strv(b, "entrypoint", ep, isempty(o->entrypoint) ? 0 : 1);
        }
        if (o->n_cmd > 0)
                add_strv(b, "cmd", o->cmd, o->n_cmd);
        if (o->env->len > 0)
                add_strv(b, "env", (char **) o->env->pdata, (int) o->env->len);
#define STR(k, v)                                                                                           \
        if (v) {                                                                                            \
                json_builder_set_member_name(b, k);                                                         \
                json_builder_add_string_value(b, v);                                                        \
        }
#define BOOL(k, v)                                                                                          \
        if (v) {                                                                                            \
                json_builder_set_member_name(b, k);                                                         \
                json_builder_add_boolean_value(b, true);                                                    \
        }
#define NUM(k, v)                                                                                           \
        if (v) {                                                                                            \
                json_builder_set_member_name(b, k);                                                         \
                json_builder_add_int_value(b, (gint64) (v));                                                \
        }
        STR("workdir", o->workdir);
        STR("user", o->user);
        STR("hostname", o->hostname);
        BOOL("tty", o->tty);
        BOOL("stdin", o->interactive);
        BOOL("detach", detach);
        BOOL("read_only", o->read_only);
        NUM("memory", o->memory);
        NUM("cpu_quota_milli", o->cpu_quota_milli);
        NUM("pids_limit", o->pids_limit);
        STR("restart", o->restart);
        NUM("log_max_size", o->log_max_size);
        if (o->cap_add->len > 0)
                add_strv(b, "cap_add", (char **) o->cap_add->pdata, (int) o->cap_add->len);
        if (o->cap_drop->len > 0)
                add_strv(b, "cap_drop", (char **) o->cap_drop->pdata, (int) o->cap_drop->len);
        BOOL("privileged", o->privileged);
        if (o->seccomp_unconfined) {
                json_builder_set_member_name(b, "seccomp");
                json_builder_add_string_value(b, "unconfined");
        }
        STR("net", o->net);
        if (o->ports->len > 0) {
                json_builder_set_member_name(b, "ports");
                json_builder_begin_array(b);
                for (unsigned i = 0; i < o->ports->len; i++)
                        json_builder_add_value(b, json_node_copy(o->ports->pdata[i]));
                json_builder_end_array(b);
        }
        if (o->dns->len > 0)
                add_strv(b, "dns", (char **) o->dns->pdata, (int) o->dns->len);
        if (o->add_hosts->len > 0)
                add_strv(b, "add_hosts", (char **) o->add_hosts->pdata, (int) o->add_hosts->len);
#undef STR
#undef BOOL
#undef NUM
        if (o->n_mounts > 0) {
                json_builder_set_member_name(b, "mounts");
                json_builder_begin_array(b);
                for (unsigned i = 0; i < o->n_mounts; i++) {
                        json_builder_begin_object(b);
                        json_builder_set_member_name(b, "source_fd");
                        json_builder_add_int_value(b, i);
                        json_builder_set_member_name(b, "destination");
                        json_builder_add_string_value(b, o->mount_dst[i]);
                        json_builder_set_member_name(b, "readonly");
                        json_builder_add_boolean_value(b, o->mount_ro[i]);
                        json_builder_end_object(b);
                }
                json_builder_end_array(b);
        }
        run_health_to_json(&o->health, b);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        return json_to_string(root, false);
}

/* CreateContainer; *ret_path is the container's object path, *ret_pty the session stream of run -t (or
 * -1). With out (write ends of two pipes), the container's stdout and stderr go there. */
static int create(sd_bus *bus, const char *verb, const RunOptions *o, bool detach, const int *out,
                  char **ret_path, int *ret_pty) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        g_autofree char *options = options_json(o, detach);
        const char *path;
        int r, fd = -EBADF;

        r = broker_new_call(bus, &m, "CreateContainer");
        if (r >= 0)
                r = sd_bus_message_append(m, "sss", o->image, o->name ?: "", options);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sh}");
        if (r >= 0 && out) {
                /* The container reads our own stdin; its output goes through its shim (which logs it)
                 * into pipes of ours: never our own stdout, whose file description it could not make
                 * non-blocking without making it so for whoever shares it. */
                if (o->interactive)
                        r = sd_bus_message_append(m, "{sh}", "stdin", STDIN_FILENO);
                if (r >= 0)
                        r = sd_bus_message_append(m, "{sh}", "stdout", out[0]);
                if (r >= 0)
                        r = sd_bus_message_append(m, "{sh}", "stderr", out[1]);
        }
        for (unsigned i = 0; r >= 0 && i < o->n_mounts; i++) {
                char key[16];

                snprintf(key, sizeof(key), "mount%u", i);
                r = sd_bus_message_append(m, "{sh}", key, o->mount_fds[i]);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "t", o->rm ? UINT64_C(1) : UINT64_C(0));
        if (r < 0)
                return report_bus_error(verb, NULL, r);
        r = broker_send(bus, m, broker_default_timeout(), &reply, verb);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "h");
        if (r >= 0) {
                int pty;

                r = sd_bus_message_read(reply, "h", &pty);
                if (r > 0) {
                        fd = fcntl(pty, F_DUPFD_CLOEXEC, 3);
                        if (fd < 0)
                                r = -errno;
                }
        }
        if (r < 0) {
                safe_close(fd);
                return report_bus_error(verb, NULL, r);
        }
        *ret_path = strdup(path);
        if (!*ret_path) {
                safe_close(fd);
                return -ENOMEM;
        }
        *ret_pty = fd;
        return 0;
}

static int run_or_create(int argc, char *argv[], bool run) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        __attribute__((cleanup(run_options_done))) RunOptions o = { .name = NULL };
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int pty = -EBADF, out_r = -EBADF, out_w = -EBADF, err_r = -EBADF, err_w = -EBADF;
        const char *verb = run ? "run" : "create";
        bool detach;
        int r;

        r = parse_run_args(verb, argc, argv, &o);
        if (r <= 0)
                return r < 0 ? CLI_EXIT_ERROR : 0;
        if (o.tty && !run) {
                fprintf(stderr, "berthctl: create: -t needs a terminal to attach: use run -t\n");
                return CLI_EXIT_ERROR;
        }
        /* A created container has nobody attached: it logs, as a detached one. */
        detach = o.detach || !run;
        r = broker_connect(&bus);
        if (r < 0)
                return CLI_EXIT_ERROR;
        if (!detach && !o.tty) {
                int fds[2];

                if (pipe2(fds, O_CLOEXEC) < 0)
                        return CLI_EXIT_ERROR;
                out_r = fds[0];
                out_w = fds[1];
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return CLI_EXIT_ERROR;
                err_r = fds[0];
                err_w = fds[1];
        }
        r = create(bus, verb, &o, detach, out_w >= 0 ? (const int[]){ out_w, err_w } : NULL, &path, &pty);
        /* The shim holds the only write ends now: their end of file is the end of the output. */
        out_w = safe_close(out_w);
        err_w = safe_close(err_w);
        if (r < 0)
                return CLI_EXIT_ERROR;
        if (!run || detach) {
                if (run) {
                        r = container_call(bus, path, "Start", NULL, "start", "t", UINT64_C(0));
                        if (r < 0) {
                                if (o.rm)
                                        (void) container_call(bus, path, "Remove", NULL, "rm", "t",
                                                              UINT64_C(1));
                                return CLI_EXIT_ERROR;
                        }
                }
                printf("%s\n", container_id_from_path(path));
                return 0;
        }
        return container_attach_run(bus, path, TAKE_FD(pty),
                                    out_r >= 0 ? (const int[]){ out_r, err_r } : NULL, o.tty, o.interactive,
                                    o.rm);
}

int cmd_run(int argc, char *argv[]) {
        return run_or_create(argc, argv, true);
}

int cmd_create(int argc, char *argv[]) {
        return run_or_create(argc, argv, false);
}
