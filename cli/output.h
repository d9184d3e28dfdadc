/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdbool.h>

/* Output helpers shared by the cmd-*.c files: one way to print JSON, one way to read the common
 * "[--json]" argument list. */

/* Pretty-prints the builder's root (a finished document) on stdout. */
void print_json_builder(JsonBuilder *b);

/* Pretty-prints a JSON document received from the broker; prints it escaped (escape.h) if it does not
 * parse. */
void print_json_string(const char *json);

/* For verbs whose only option is --json: sets arg.json, or prints
 * "berthctl: <what>: unknown argument '<arg>'" and returns -EINVAL. */
int parse_json_only_args(const char *what, int argc, char *argv[]);

/* Connects, calls member(id) → s, and pretty-prints the JSON string it returns. */
int broker_call_print_json(const char *member, const char *what, const char *id);

/* Connects once and calls member(name, flags 0) for each name, going on after a failure (reported by
 * broker_call); prints each name done unless -q. The last failure, or 0. */
int broker_call_each(const char *member, const char *what, int argc, char *argv[]);
