/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>

/* JSON string literals written without json-glib, for the one writer that must not load it: berthctl's
 * exec path (cli/cmd-exec.c), whose start-up is most of an exec's time. Everything that reads JSON, and
 * every other writer, uses json-glib (lib/json-util.h). */

/* Writes s to f as a JSON string literal (RFC 8259): '"' and '\\' escaped, control characters as \n, \t
 * or \u00XX, every other byte as it is. s must be UTF-8: sd-bus refuses a message whose string is not,
 * and json-glib a document. */
void json_fputs_string(FILE *f, const char *s);
