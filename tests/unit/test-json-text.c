/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* json-text.c writes JSON strings without json-glib (berthctl's exec path): json-glib, which the broker
 * reads them with, must get back exactly the bytes written, whatever they are. */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "json-text.h"
#include "macro.h"

/* ["<s>"] written by json_fputs_string, parsed by json-glib: its one element. */
static char *round_trip(const char *s, char **ret_text) {
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        JsonArray *a;

        g_assert_nonnull(f);
        fputc('[', f);
        json_fputs_string(f, s);
        fputc(']', f);
        g_assert_cmpint(fclose(f), ==, 0);
        g_assert_true(json_parser_load_from_data(parser, text, -1, &error));
        g_assert_no_error(error);
        a = json_node_get_array(json_parser_get_root(parser));
        g_assert_cmpuint(json_array_get_length(a), ==, 1);
        *ret_text = text;
        return g_strdup(json_array_get_string_element(a, 0));
}

static void check(const char *s, const char *want_text) {
        _cleanup_free_ char *text = NULL;
        g_autofree char *back = round_trip(s, &text);

        g_assert_cmpstr(back, ==, s);
        if (want_text)
                g_assert_cmpstr(text, ==, want_text);
}

static void test_plain_and_escaped(void) {
        check("", "[\"\"]");
        check("/bin/true", "[\"/bin/true\"]");
        check("say \"hi\"", "[\"say \\\"hi\\\"\"]");
        check("C:\\dir\\", "[\"C:\\\\dir\\\\\"]");
        check("a\nb\tc", "[\"a\\nb\\tc\"]");
        check("\r\b\f\x1b[2J\x7f", "[\"\\u000d\\u0008\\u000c\\u001b[2J\x7f\"]");
        /* What json-glib's own generator would escape too: '/' needs none. */
        check("a/b</script>", "[\"a/b</script>\"]");
}

static void test_every_byte(void) {
        char s[2] = {};

        /* Every single ASCII byte but NUL, alone; the text must parse and give it back. */
        for (int c = 1; c < 0x80; c++) {
                s[0] = (char) c;
                check(s, NULL);
        }
}

static void test_utf8(void) {
        /* Two-, three- and four-byte sequences, U+2028 (a line break to JavaScript, not to JSON) and the
         * largest code point pass through unchanged. */
        check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3",
              "[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3\"]");
        check("\xe2\x80\xa8", NULL);
        check("\xf4\x8f\xbf\xbf", NULL);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/json-text/plain-and-escaped", test_plain_and_escaped);
        g_test_add_func("/json-text/every-byte", test_every_byte);
        g_test_add_func("/json-text/utf8", test_utf8);
        return g_test_run();
}
