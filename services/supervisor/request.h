/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* The container request the broker sends with CreateContainer (docs/internal-api.md). This parser is
 * the supervisor's only reader of broker input: size and depth caps first, then a declarative field
 * table; unknown fields are refused, every value is checked here, before anything is opened. */

#define REQUEST_SIZE_MAX (256U * 1024U)
#define REQUEST_ARGS_MAX 4096U /* entrypoint + cmd entries */
#define REQUEST_ENV_MAX 4096U
#define REQUEST_STRINGS_BYTES_MAX (128U * 1024U) /* all argv + env bytes (execve's own limit is larger) */
#define REQUEST_MOUNTS_MAX 64U
#define REQUEST_CAPS_MAX 64U
#define REQUEST_NAME_MAX 128U
#define REQUEST_USER_MAX 256U
#define REQUEST_HOSTNAME_MAX 64U
#define REQUEST_PATH_MAX 4096U
#define REQUEST_MEMORY_MIN (6ULL * 1024ULL * 1024ULL) /* podman's minimum: below it nothing starts */
#define REQUEST_MEMORY_MAX (1ULL << 50)
#define REQUEST_CPU_MILLI_MAX 1000000U         /* 1000 CPUs */
#define REQUEST_PIDS_MAX (1U << 22)            /* the kernel's PID_MAX_LIMIT */
#define REQUEST_LOG_SIZE_MIN (16ULL * 1024ULL) /* log_max_size: the shim rotates at this size */
#define REQUEST_LOG_SIZE_MAX (64ULL * 1024ULL * 1024ULL * 1024ULL)

typedef struct RequestMount {
        uint64_t source_fd; /* index: the fd passed as "mount<N>" */
        char *destination;  /* absolute, normalised, inside the container */
        bool readonly;
} RequestMount;

/* Networking (issue 10). */
#define REQUEST_PORTS_MAX 64U
#define REQUEST_DNS_MAX 8U
#define REQUEST_ADD_HOSTS_MAX 64U
#define REQUEST_NETWORK_NAME_MAX 64U
#define REQUEST_DEFAULT_NETWORK "bridge"

typedef struct RequestPort {
        char *host_ip; /* "" = 127.0.0.1 (berth publishes on loopback unless told otherwise) */
        uint64_t host_port;
        uint64_t container_port;
        char *protocol; /* "tcp" or "udp" */
} RequestPort;

typedef struct ContainerRequest {
        char *name;
        uint64_t owner;
        char *image_config; /* "sha256:<hex>" */
        char **entrypoint;  /* NULL: the image's; empty: none */
        char **cmd;         /* NULL: the image's (or none when entrypoint was given) */
        char **env;         /* added to / overriding the image's */
        char *workdir;
        char *user;
        char *hostname;
        bool tty, stdin_open, detach, read_only;
        uint64_t memory, cpu_quota_milli, pids_limit;
        char **cap_add; /* normalised "CAP_X", or "ALL" */
        char **cap_drop;
        bool privileged;
        bool seccomp_unconfined;
        bool net_host;
        RequestMount *mounts;
        size_t n_mounts;
        struct HealthConfig *health; /* "health" (health-config.h), NULL = the image's */
        char *restart;               /* restart-parse.h; NULL = "no" */
        uint64_t log_max_size;       /* bytes before the log rotates; 0 = SHIM_LOG_SIZE_DEFAULT */
        /* "net": "none" → net_none, "host" → net_host, anything else (default "bridge") is the name of a
         * CNI network in network (NULL for none and host). */
        bool net_none;
        char *network;
        RequestPort *ports;
        size_t n_ports;
        char **dns;       /* name server addresses */
        char **add_hosts; /* "name:address" */
} ContainerRequest;

/* Parse and validate. -EBADMSG/-EFBIG/-EINVAL/-ERANGE plus a malloc'd message naming the field. */
int container_request_parse(const char *data, size_t size, ContainerRequest **ret, char **ret_error);
ContainerRequest *container_request_free(ContainerRequest *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(ContainerRequest *, container_request_free);

/* Whether any option needs org.berth.container-privileged; *ret_what names them for the message. */
bool container_request_is_privileged(const ContainerRequest *r, char **ret_what);

/* A CNI network name: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most REQUEST_NETWORK_NAME_MAX bytes. */
bool network_name_is_valid(const char *n);
/* An IPv4 or IPv6 address in text form. */
bool ip_address_is_valid(const char *s);
/* The host address a published port binds to ("" = 127.0.0.1). */
const char *request_port_host_ip(const RequestPort *p);

/* Shared checks (also used for the image config's values). */
bool env_entry_is_valid(const char *e);
bool hostname_is_valid(const char *h);
/* A container name as a request may give it (also checked on the state file read back). */
bool container_name_is_valid(const char *n);
/* Absolute, no "." or ".." components, no control characters, ≤ REQUEST_PATH_MAX. */
bool container_path_is_valid(const char *p);
/* "chown", "CAP_CHOWN", "cap_chown" → "CAP_CHOWN" (malloc'd); "all" → "ALL". -EINVAL if unknown. */
int capability_normalise(const char *name, char **ret);
/* Whether the name is a capability this kernel and libcap know. */
int capability_from_name(const char *name);
