/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "escape.h"
#include "macro.h"

static void check(const char *in, size_t max, EscapeFlags flags, const char *want) {
        _cleanup_free_ char *got = escape_untrusted(in, max, flags);

        g_assert_nonnull(got);
        g_assert_cmpstr(got, ==, want);
}

static void test_plain_text_unchanged(void) {
        check("", 0, 0, "");
        check("busybox:latest", 0, 0, "busybox:latest");
        check("busybox:latest", 0, ESCAPE_QUOTED, "busybox:latest");
        check(" !~", 0, 0, " !~");
}

static void test_controls_and_non_ascii(void) {
        /* What a hostile registry error would send: OSC retitle, clear screen, carriage return. */
        check("gone\033]0;pwned\007\033[2J\rfake", 0, 0, "gone\\x1b]0;pwned\\x07\\x1b[2J\\x0dfake");
        check("a\nb\tc\x7f", 0, 0, "a\\x0ab\\x09c\\x7f");
        /* C1 controls as UTF-8 (U+009B, a CSI to some terminals) and any other non-ASCII byte. */
        check("\xc2\x9b"
              "31m",
              0, 0, "\\xc2\\x9b31m");
        check("caf\xc3\xa9", 0, 0, "caf\\xc3\\xa9");
}

static void test_quotes(void) {
        check("it's a\\b", 0, 0, "it's a\\b");
        check("it's a\\b", 0, ESCAPE_QUOTED, "it\\x27s a\\x5cb");
}

static void test_cut(void) {
        check("abcdef", 3, 0, "abc...");
        check("abc", 3, 0, "abc");
        check("abcdef", 0, 0, "abcdef");
        /* The cap counts input bytes: an escaped byte still counts once. */
        check("\001\002\003\004", 2, 0, "\\x01\\x02...");
}

static void test_null(void) {
        check(NULL, 0, 0, "n/a");
        check(NULL, 1, ESCAPE_QUOTED, "n...");
}

static void test_worst_case_size(void) {
        char in[257];
        _cleanup_free_ char *got = NULL;

        for (size_t i = 0; i < 256; i++)
                in[i] = (char) (i == 0 ? 1 : i);
        in[256] = '\0';
        got = escape_untrusted(in, 0, ESCAPE_QUOTED);
        g_assert_nonnull(got);
        for (const char *p = got; *p; p++)
                g_assert_true(*p >= 0x20 && *p < 0x7f);
        g_assert_cmpuint(strlen(got), <=, 256 * 4);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/escape/plain", test_plain_text_unchanged);
        g_test_add_func("/escape/controls-and-non-ascii", test_controls_and_non_ascii);
        g_test_add_func("/escape/quotes", test_quotes);
        g_test_add_func("/escape/cut", test_cut);
        g_test_add_func("/escape/null", test_null);
        g_test_add_func("/escape/worst-case-size", test_worst_case_size);
        return g_test_run();
}
