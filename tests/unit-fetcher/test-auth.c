/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "auth.h"

static void test_challenge_bearer(void) {
        AuthChallenge c = {};

        g_assert_cmpint(
                auth_challenge_parse(
                        "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                        "scope=\"repository:library/busybox:pull\"",
                        &c),
                ==, 0);
        g_assert_cmpint(c.scheme, ==, AUTH_SCHEME_BEARER);
        g_assert_cmpstr(c.realm, ==, "https://auth.docker.io/token");
        g_assert_cmpstr(c.service, ==, "registry.docker.io");
        g_assert_cmpstr(c.scope, ==, "repository:library/busybox:pull");
        auth_challenge_done(&c);

        /* Case-insensitive scheme and names, blanks around '=', unquoted tokens, escapes. */
        g_assert_cmpint(auth_challenge_parse(
                                "bearer  Realm = \"https://r/t\" , SERVICE=reg.io, scope=\"a\\\"b\"", &c),
                        ==, 0);
        g_assert_cmpstr(c.realm, ==, "https://r/t");
        g_assert_cmpstr(c.service, ==, "reg.io");
        g_assert_cmpstr(c.scope, ==, "a\"b");
        auth_challenge_done(&c);
}

static void test_challenge_basic_and_multi(void) {
        AuthChallenge c = {};

        g_assert_cmpint(auth_challenge_parse("Basic realm=\"berth-test\"", &c), ==, 0);
        g_assert_cmpint(c.scheme, ==, AUTH_SCHEME_BASIC);
        g_assert_cmpstr(c.realm, ==, "berth-test");
        auth_challenge_done(&c);

        /* An unknown scheme first: skipped, the next usable one taken. */
        g_assert_cmpint(auth_challenge_parse("Negotiate, Foo a=b, Bearer realm=\"https://x/token\"", &c), ==,
                        0);
        g_assert_cmpint(c.scheme, ==, AUTH_SCHEME_BEARER);
        g_assert_cmpstr(c.realm, ==, "https://x/token");
        auth_challenge_done(&c);
}

static void test_challenge_bad(void) {
        AuthChallenge c = {};
        g_autofree char *huge = NULL;

        g_assert_cmpint(auth_challenge_parse(NULL, &c), ==, -EBADMSG);
        g_assert_cmpint(auth_challenge_parse("", &c), ==, -EOPNOTSUPP);
        g_assert_cmpint(auth_challenge_parse("Negotiate", &c), ==, -EOPNOTSUPP);
        g_assert_cmpint(auth_challenge_parse("Bearer service=\"x\"", &c), ==, -EBADMSG); /* no realm */
        g_assert_cmpint(auth_challenge_parse("Bearer realm=\"unterminated", &c), ==, -EBADMSG);
        g_assert_cmpint(auth_challenge_parse("Bearer realm=\"a\" junk junk", &c), ==, -EBADMSG);
        g_assert_cmpint(auth_challenge_parse("Bearer realm=\"a\",realm=\"b\"", &c), ==,
                        -EBADMSG); /* ambiguous */
        g_assert_cmpint(auth_challenge_parse("Bearer realm=\"a\x01\"", &c), ==, -EBADMSG);
        g_assert_cmpint(auth_challenge_parse("Bearer realm=", &c), ==, -EBADMSG);
        huge = g_strnfill(8192, 'a');
        g_assert_cmpint(auth_challenge_parse(huge, &c), ==, -EBADMSG);
}

static void test_token_url(void) {
        AuthChallenge c = { .scheme = AUTH_SCHEME_BEARER,
                            .realm = (char *) "https://auth/token",
                            .service = (char *) "reg io" };
        g_autofree char *u1 = NULL, *u2 = NULL, *u3 = NULL;

        g_assert_cmpint(auth_token_url(&c, "repository:a/b:pull", &u1), ==, 0);
        g_assert_cmpstr(u1, ==, "https://auth/token?service=reg%20io&scope=repository%3Aa%2Fb%3Apull");
        c.realm = (char *) "https://auth/token?x=1";
        g_assert_cmpint(auth_token_url(&c, NULL, &u2), ==, 0);
        g_assert_cmpstr(u2, ==, "https://auth/token?x=1&service=reg%20io");
        c.realm = (char *) "file:///etc/passwd";
        g_assert_cmpint(auth_token_url(&c, NULL, &u3), ==, -EPROTONOSUPPORT);
}

static void test_token_parse(void) {
        const char *ok = "{\"token\":\"abc.def\",\"expires_in\":300}";
        const char *oauth = "{\"access_token\":\"xyz\"}";
        const char *inj = "{\"token\":\"abc\\r\\nX-Evil: 1\"}";
        char *t = NULL;
        uint64_t e = 0;

        g_assert_cmpint(auth_token_parse(ok, strlen(ok), &t, &e), ==, 0);
        g_assert_cmpstr(t, ==, "abc.def");
        g_assert_cmpuint(e, ==, 300);
        free(t);
        g_assert_cmpint(auth_token_parse(oauth, strlen(oauth), &t, &e), ==, 0);
        g_assert_cmpstr(t, ==, "xyz");
        g_assert_cmpuint(e, ==, 60);
        free(t);
        g_assert_cmpint(auth_token_parse(inj, strlen(inj), &t, &e), <, 0);
        g_assert_cmpint(auth_token_parse("{}", 2, &t, &e), <, 0);
        g_assert_cmpint(auth_token_parse("[1]", 3, &t, &e), <, 0);
        g_assert_cmpint(auth_token_parse("nope", 4, &t, &e), <, 0);
}

static void test_credentials(void) {
        g_autofree char *dir = g_dir_make_tmp("berth-auth-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "sub", "config.json", NULL);
        char *u = NULL, *s = NULL;
        struct stat st;

        g_assert_nonnull(dir);
        g_assert_cmpint(credentials_load(path, "r.io", &u, &s), ==, -ENOENT);
        g_assert_cmpint(credentials_store(path, "r.io", "alice", "p:ss word"), ==, 0);
        g_assert_cmpint(credentials_store(path, "docker.io", "bob", "x"), ==, 0);
        g_assert_cmpint(stat(path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);
        g_assert_cmpint(credentials_load(path, "r.io", &u, &s), ==, 0);
        g_assert_cmpstr(u, ==, "alice");
        g_assert_cmpstr(s, ==, "p:ss word");
        free(u);
        free(s);
        /* docker.io credentials also serve its API host. */
        g_assert_cmpint(credentials_load(path, "registry-1.docker.io", &u, &s), ==, 0);
        g_assert_cmpstr(u, ==, "bob");
        free(u);
        free(s);
        g_assert_cmpint(credentials_remove(path, "r.io"), ==, 0);
        g_assert_cmpint(credentials_remove(path, "r.io"), ==, -ENOENT);
        g_assert_cmpint(credentials_load(path, "r.io", &u, &s), ==, -ENOENT);
        g_assert_cmpint(credentials_load(path, "docker.io", &u, &s), ==, 0);
        free(u);
        free(s);

        g_assert_true(credential_is_valid("alice", true));
        g_assert_false(credential_is_valid("al:ice", true));
        g_assert_true(credential_is_valid("se:cret", false));
        g_assert_false(credential_is_valid("a\nb", false));
        g_assert_false(credential_is_valid("", false));

        g_assert_cmpint(g_remove(path), ==, 0);
        g_autofree char *sub = g_path_get_dirname(path);
        g_assert_cmpint(g_rmdir(sub), ==, 0);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void test_cache(void) {
        AuthCache *c = auth_cache_new();

        auth_cache_put(c, "h:1", "repository:a:pull", "Authorization: Bearer t", 1000);
        g_assert_cmpstr(auth_cache_lookup(c, "h:1", "repository:a:pull", 999), ==,
                        "Authorization: Bearer t");
        g_assert_null(auth_cache_lookup(c, "h:1", "repository:b:pull", 999));
        g_assert_null(auth_cache_lookup(c, "h:1", "repository:a:pull", 1000)); /* expired */
        auth_cache_put(c, "h:1", "s", "Authorization: Basic x", 0);
        auth_cache_put(c, "h:12", "s", "Authorization: Basic y", 0);
        auth_cache_forget_host(c, "h:1");
        g_assert_null(auth_cache_lookup(c, "h:1", "s", 5));
        g_assert_cmpstr(auth_cache_lookup(c, "h:12", "s", 5), ==, "Authorization: Basic y");
        auth_cache_free(c);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/auth/challenge/bearer", test_challenge_bearer);
        g_test_add_func("/auth/challenge/basic-multi", test_challenge_basic_and_multi);
        g_test_add_func("/auth/challenge/bad", test_challenge_bad);
        g_test_add_func("/auth/token-url", test_token_url);
        g_test_add_func("/auth/token-parse", test_token_parse);
        g_test_add_func("/auth/credentials", test_credentials);
        g_test_add_func("/auth/cache", test_cache);
        return g_test_run();
}
