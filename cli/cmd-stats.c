/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl stats [--no-stream] [--json] [NAME...]: CPU %, memory use and limit, pids and block I/O of
 * running containers, from one Manager.ContainerStats call per sample (the supervisor reads every
 * container's cgroup in that one call). CPU % is the CPU time used between two samples over the wall
 * time between them (100% = one CPU busy). On a terminal the table is redrawn every second. */
#include <getopt.h>
#include <json-glib/json-glib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "berthctl.h"
#include "macro.h"
#include "bus-names.h"
#include "table.h"

#define STATS_INTERVAL_USEC (1000U * 1000U)
#define STATS_FIRST_INTERVAL_USEC (200U * 1000U)

typedef struct Sample {
        char *id, *name;
        uint64_t cpu, mem, limit, pids, rd, wr, ts;
        bool has_cpu, has_mem, has_pids, has_blk;
} Sample;

static void sample_free(void *p) {
        Sample *s = p;

        g_free(s->id);
        g_free(s->name);
        g_free(s);
}

static int take_sample(sd_bus *bus, char **names, GPtrArray **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(sample_free);
        int r;

        r = broker_new_call(bus, &call, "ContainerStats");
        if (r >= 0)
                r = sd_bus_message_append_strv(call, names);
        if (r >= 0)
                r = sd_bus_message_append(call, "t", UINT64_C(0));
        if (r < 0)
                return report_bus_error("stats", NULL, r);
        r = broker_send(bus, call, broker_default_timeout(), &reply, "stats");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ssa{st})");
        while (r >= 0) {
                const char *id, *name;
                Sample *s;

                r = sd_bus_message_enter_container(reply, 'r', "ssa{st}");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "ss", &id, &name);
                if (r < 0)
                        break;
                s = g_new0(Sample, 1);
                s->id = g_strdup(id);
                s->name = g_strdup(name);
                g_ptr_array_add(out, s);
                r = sd_bus_message_enter_container(reply, 'a', "{st}");
                while (r >= 0) {
                        const char *k;
                        uint64_t v;

                        r = sd_bus_message_read(reply, "{st}", &k, &v);
                        if (r <= 0)
                                break;
                        if (streq(k, "CpuUsageNSec"))
                                s->cpu = v, s->has_cpu = true;
                        else if (streq(k, "MemoryUsage"))
                                s->mem = v, s->has_mem = true;
                        else if (streq(k, "MemoryLimit"))
                                s->limit = v;
                        else if (streq(k, "Pids"))
                                s->pids = v, s->has_pids = true;
                        else if (streq(k, "BlockRead"))
                                s->rd = v, s->has_blk = true;
                        else if (streq(k, "BlockWrite"))
                                s->wr = v;
                        else if (streq(k, "Timestamp"))
                                s->ts = v;
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return report_bus_error("stats", NULL, r);
        *ret = TAKE_PTR(out);
        return 0;
}

static const Sample *find(GPtrArray *a, const char *id) {
        for (guint i = 0; a && i < a->len; i++)
                if (streq(((Sample *) a->pdata[i])->id, id))
                        return a->pdata[i];
        return NULL;
}

static double cpu_percent(const Sample *prev, const Sample *now) {
        if (!prev || !prev->has_cpu || !now->has_cpu || now->ts <= prev->ts || now->cpu < prev->cpu)
                return -1;
        return (double) (now->cpu - prev->cpu) / ((double) (now->ts - prev->ts) * 1000.0) * 100.0;
}

static const TableColumn stats_columns[] = {
        { "ID", -12, "Id" },
        { "NAME", -24, "Name" },
        { "CPU %", 8, "CpuPercent" },
        { "MEM USAGE / LIMIT", -22, "Memory" },
        { "MEM %", 7, "MemoryPercent" },
        { "PIDS", 6, "Pids" },
        { "BLOCK I/O", -20, "BlockIO" },
        { NULL, 0, "MemoryUsage" },
        { NULL, 0, "MemoryLimit" },
        { NULL, 0, "BlockRead" },
        { NULL, 0, "BlockWrite" },
        { NULL, 0, "CpuUsageNSec" },
};

static JsonNode *jint(uint64_t v) {
        JsonNode *n = json_node_new(JSON_NODE_VALUE);
        json_node_set_int(n, (gint64) v);
        return n;
}

static JsonNode *jdouble(double v) {
        JsonNode *n = json_node_new(JSON_NODE_VALUE);
        json_node_set_double(n, v);
        return n;
}

static void print_table(GPtrArray *prev, GPtrArray *now, bool json) {
        _cleanup_(table_freep) Table *t =
                table_new(stats_columns, ELEMENTSOF(stats_columns), json ? TABLE_JSON : TABLE_TEXT);

        for (guint i = 0; i < now->len; i++) {
                const Sample *s = now->pdata[i];
                double cpu = cpu_percent(find(prev, s->id), s);
                char shortid[13], cpus[32], mem[64], memp[32], pids[32], blk[64], a[16], b[16];

                snprintf(shortid, sizeof(shortid), "%.12s", s->id);
                if (cpu >= 0)
                        snprintf(cpus, sizeof(cpus), "%.2f%%", cpu);
                else
                        snprintf(cpus, sizeof(cpus), "--");
                format_bytes(a, sizeof(a), s->mem);
                if (s->limit > 0)
                        format_bytes(b, sizeof(b), s->limit);
                else
                        snprintf(b, sizeof(b), "unlimited");
                snprintf(mem, sizeof(mem), "%s / %s", s->has_mem ? a : "--", b);
                if (s->has_mem && s->limit > 0)
                        snprintf(memp, sizeof(memp), "%.2f%%", (double) s->mem * 100.0 / (double) s->limit);
                else
                        snprintf(memp, sizeof(memp), "--");
                snprintf(pids, sizeof(pids), s->has_pids ? "%llu" : "--", (unsigned long long) s->pids);
                format_bytes(a, sizeof(a), s->rd);
                format_bytes(b, sizeof(b), s->wr);
                snprintf(blk, sizeof(blk), s->has_blk ? "%s / %s" : "--", a, b);

                table_add_cell(t, shortid, json_node_init_string(json_node_alloc(), s->id));
                table_add_string(t, s->name);
                table_add_cell(t, cpus, cpu >= 0 ? jdouble(cpu) : json_node_init_null(json_node_alloc()));
                table_add_cell(t, mem, json_node_init_string(json_node_alloc(), mem));
                table_add_cell(t, memp,
                               s->has_mem && s->limit > 0
                                       ? jdouble((double) s->mem * 100.0 / (double) s->limit)
                                       : json_node_init_null(json_node_alloc()));
                table_add_cell(t, pids, jint(s->pids));
                table_add_cell(t, blk, json_node_init_string(json_node_alloc(), blk));
                table_add_cell(t, NULL, jint(s->mem));
                table_add_cell(t, NULL, jint(s->limit));
                table_add_cell(t, NULL, jint(s->rd));
                table_add_cell(t, NULL, jint(s->wr));
                table_add_cell(t, NULL, jint(s->cpu));
        }
        table_print(t);
}

int cmd_stats(int argc, char *argv[]) {
        enum { ARG_NO_STREAM = 0x100, ARG_JSON };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "no-stream", no_argument, NULL, ARG_NO_STREAM },
                                                 { "json", no_argument, NULL, ARG_JSON },
                                                 {} };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        g_autoptr(GPtrArray) prev = NULL, now = NULL;
        bool stream = true, json = arg.json, tty = isatty(STDOUT_FILENO);
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("berthctl stats [--no-stream] [--json] [NAME...]\n\n"
                               "Show running containers' CPU %%, memory use and limit, processes and block "
                               "I/O\n(all of the caller's running containers when no NAME is given).\n\n"
                               "     --no-stream   One sample and exit (CPU %% over %u ms)\n"
                               "     --json        JSON (with --no-stream one array, else one per line)\n",
                               STATS_FIRST_INTERVAL_USEC / 1000);
                        return 0;
                case ARG_NO_STREAM:
                        stream = false;
                        break;
                case ARG_JSON:
                        json = true;
                        break;
                default:
                        return -EINVAL;
                }
        r = broker_connect(&bus);
        if (r < 0)
                return r;
        r = take_sample(bus, argv + optind, &prev);
        if (r < 0)
                return r;
        (void) usleep(STATS_FIRST_INTERVAL_USEC);
        for (;;) {
                r = take_sample(bus, argv + optind, &now);
                if (r < 0)
                        return r;
                if (stream && tty && !json)
                        fputs("\033[H\033[2J", stdout); /* redraw in place */
                print_table(prev, now, json);
                fflush(stdout);
                if (!stream)
                        return 0;
                g_ptr_array_unref(prev);
                prev = TAKE_PTR(now);
                (void) usleep(STATS_INTERVAL_USEC);
        }
}
