/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "content-store.h"

/* Archive import and export run in a forked child of the fetcher, one per call: the tar stream is
 * read or written with blocking I/O on a descriptor the user handed in (a file, or a pipe that may
 * stall), which must not stop the fetcher's event loop, and a libarchive bug triggered by a hostile
 * archive then takes down the child only. The child reports one JSON document through a memfd:
 * {"error": "org.berth.Error.X", "message": "…"} or the method's result. */

typedef struct ArchiveContext {
        ContentStore *store;
        sd_event *event;
        unsigned n_jobs; /* children running */
} ArchiveContext;

typedef struct ArchiveReport {
        const char *error_name; /* static; NULL on success */
        char *error_message;
        JsonBuilder *result; /* the child's result document (an object, open), success only */
} ArchiveReport;

/* Sets the report's error (the first one set wins) and returns -abs(r), or -EIO when r is 0. */
int archive_report_error(ArchiveReport *rep, const char *name, int r, const char *format, ...)
        __attribute__((format(printf, 4, 5)));

/* Runs in the child: do the work, fill rep (result members go into rep->result, already begun as an
 * object). Return < 0 on failure (rep says why). */
typedef int (*archive_child_fn)(void *userdata, ArchiveReport *rep);
/* Runs in the parent when the child succeeded: build the reply to call from the result object. */
typedef int (*archive_reply_fn)(sd_bus_message *call, JsonObject *result);

/* Forks the child for call; the call is answered (reply_fn or an error) when it exits. Returns 1
 * (reply pending) or a negative errno with error set. */
/* user_fd is the caller's archive or output stream: besides the store's directories and the report,
 * the only descriptor the sandboxed child keeps (archive_child_sandbox()). */
int archive_job_spawn(ArchiveContext *ctx, sd_bus_message *call, int user_fd, archive_child_fn child,
                      void *userdata, archive_reply_fn reply, sd_bus_error *error);

/* Stall guard for the child's blocking reads/writes: no progress for ARCHIVE_STALL_TIMEOUT_SEC kills it
 * (SIGALRM, default action); call before every read()/write() on the user's descriptor. */
void archive_stall_guard(void);

/* The two methods (fetcherd.c's vtable, userdata an ArchiveContext). */
int method_import_archive(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_export_archive(sd_bus_message *msg, void *userdata, sd_bus_error *error);
