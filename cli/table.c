/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "berthctl.h"
#include "escape.h"
#include "output.h"
#include "table.h"

typedef struct Cell {
        char *text;
        JsonNode *json;
} Cell;

struct Table {
        const TableColumn *columns;
        size_t n_columns;
        TableMode mode;
        GArray *cells; /* Cell, row after row */
};

static void cell_clear(gpointer p) {
        Cell *c = p;

        g_free(c->text);
        if (c->json)
                json_node_unref(c->json);
}

Table *table_new(const TableColumn *columns, size_t n_columns, TableMode mode) {
        Table *t = g_new0(Table, 1);

        t->columns = columns;
        t->n_columns = n_columns;
        t->mode = mode;
        t->cells = g_array_new(false, true, sizeof(Cell));
        g_array_set_clear_func(t->cells, cell_clear);
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        g_array_unref(t->cells);
        g_free(t);
        return NULL;
}

void table_add_cell(Table *t, const char *text, JsonNode *json) {
        /* SECURITY: cells hold the broker's strings (names, images, reasons): escaped for the terminal
         * (lib/escape.h); the JSON form escapes its own. */
        char *escaped = escape_untrusted(text ?: "", 0, 0);
        Cell c = { .text = escaped ?: g_strdup(""), .json = json ?: json_node_new(JSON_NODE_NULL) };

        g_array_append_val(t->cells, c);
}

void table_add_string(Table *t, const char *s) {
        JsonNode *n = json_node_new(JSON_NODE_VALUE);

        json_node_set_string(n, s ?: "");
        table_add_cell(t, s, n);
}

void table_add_bytes(Table *t, uint64_t bytes) {
        JsonNode *n = json_node_new(JSON_NODE_VALUE);
        char text[32];

        format_bytes(text, sizeof(text), bytes);
        json_node_set_int(n, (gint64) bytes);
        table_add_cell(t, text, n);
}

void table_add_uint(Table *t, uint64_t v) {
        JsonNode *n = json_node_new(JSON_NODE_VALUE);
        g_autofree char *text = g_strdup_printf("%" G_GUINT64_FORMAT, v);

        json_node_set_int(n, (gint64) v);
        table_add_cell(t, text, n);
}

void table_add_bool(Table *t, bool b, const char *yes, const char *no) {
        JsonNode *n = json_node_new(JSON_NODE_VALUE);

        json_node_set_boolean(n, b);
        table_add_cell(t, b ? yes : no, n);
}

void table_add_strv(Table *t, char **l) {
        JsonArray *a = json_array_new();
        JsonNode *n = json_node_new(JSON_NODE_ARRAY);
        g_autofree char *joined = l && *l ? g_strjoinv(",", l) : g_strdup("-");

        for (char **s = l; s && *s; s++)
                json_array_add_string_element(a, *s);
        json_node_take_array(n, a);
        table_add_cell(t, joined, n);
}

static void print_text(Table *t) {
        ssize_t last = -1;

        for (size_t i = 0; i < t->n_columns; i++)
                if (t->columns[i].header)
                        last = (ssize_t) i;
        if (last < 0)
                return;

        /* The header, then each row, in the same columns. */
        for (ssize_t row = -1; row < 0 || (size_t) row * t->n_columns < t->cells->len; row++) {
                for (size_t i = 0; i <= (size_t) last; i++) {
                        const TableColumn *col = t->columns + i;
                        const char *text;

                        if (!col->header)
                                continue;
                        text = row < 0 ? col->header
                                       : g_array_index(t->cells, Cell, (size_t) row * t->n_columns + i).text;
                        if (i == (size_t) last)
                                fputs(text, stdout);
                        else
                                printf("%*s ", col->width, text);
                }
                putchar('\n');
        }
}

static void print_json(Table *t) {
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_array(b);
        for (size_t row = 0; row * t->n_columns < t->cells->len; row++) {
                json_builder_begin_object(b);
                for (size_t i = 0; i < t->n_columns; i++) {
                        Cell *c = &g_array_index(t->cells, Cell, row * t->n_columns + i);

                        if (!t->columns[i].json_key)
                                continue;
                        json_builder_set_member_name(b, t->columns[i].json_key);
                        json_builder_add_value(b, json_node_ref(c->json));
                }
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        print_json_builder(b);
}

void table_print(Table *t) {
        /* A row cut short (a reader that stopped half-way) is not printed. */
        g_array_set_size(t->cells, t->cells->len - t->cells->len % t->n_columns);

        switch (t->mode) {
        case TABLE_JSON:
                print_json(t);
                break;
        case TABLE_QUIET:
                for (size_t row = 0; row * t->n_columns < t->cells->len; row++)
                        puts(g_array_index(t->cells, Cell, row * t->n_columns).text);
                break;
        case TABLE_TEXT:
        default:
                print_text(t);
        }
}

int table_parse_args(const char *what, const char *usage_text, int argc, char *argv[],
                     const char **free_args, size_t max_free, TableMode *ret_mode) {
        bool json = arg.json, quiet = false;
        size_t n_free = 0;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
                        fputs(usage_text, stdout);
                        return 1;
                } else if (streq(argv[i], "--json"))
                        json = true;
                else if (streq(argv[i], "-q") || streq(argv[i], "--quiet"))
                        quiet = true;
                else if (argv[i][0] != '-' && n_free < max_free)
                        free_args[n_free++] = argv[i];
                else {
                        fprintf(stderr, "berthctl: %s: unknown argument '%s'\n", what, argv[i]);
                        return -EINVAL;
                }
        }
        /* --json wins over -q, as it always did for images ls. */
        *ret_mode = json ? TABLE_JSON : quiet ? TABLE_QUIET : TABLE_TEXT;
        return 0;
}
