/* Unit tests for processor/themes.c: the comment tokenizer and its stop word lists. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "themes.h"

#define MAX_TOKS 64

typedef struct collected {
    size_t n;
    char tok[MAX_TOKS][CX_THEMES_TOKEN_MAX + 1];
} collected_t;

static void collect(void *opaque, const char *tok, size_t len) {
    collected_t *c = opaque;
    cr_assert_leq(len, CX_THEMES_TOKEN_MAX);
    cr_assert_geq(len, 2);
    if (c->n < MAX_TOKS) {
        memcpy(c->tok[c->n], tok, len);
        c->tok[c->n][len] = '\0';
    }
    c->n++;
}

/* Tokenizes text[0..len) and asserts the tokens equal the NULL-terminated list `want`. */
static void expect_tokens(const char *text, size_t len, const char *const *want) {
    collected_t *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    size_t n = cx_themes_tokenize(text, len, collect, c);
    size_t nw = 0;
    while (want[nw])
        nw++;
    cr_assert_eq(n, c->n, "return value %zu vs callbacks %zu", n, c->n);
    cr_assert_eq(c->n, nw, "got %zu tokens, want %zu (first: %s)", c->n, nw, c->n ? c->tok[0] : "-");
    for (size_t i = 0; i < nw; i++)
        cr_assert_str_eq(c->tok[i], want[i], "token %zu", i);
    free(c);
}
#define EXPECT(text, ...)                                \
    do {                                                 \
        const char *const want_[] = {__VA_ARGS__, NULL}; \
        expect_tokens((text), sizeof(text) - 1, want_);  \
    } while (0)
#define EXPECT_NONE(text)                               \
    do {                                                \
        const char *const want_[] = {NULL};             \
        expect_tokens((text), sizeof(text) - 1, want_); \
    } while (0)

Test(themes, english_comment_is_lowercased_and_loses_stop_words_and_punctuation) {
    EXPECT("Buffering ALL the time!!", "buffering", "time");
}

Test(themes, swedish_capitals_are_lowercased_and_och_is_dropped) {
    EXPECT("Förfärligt LÅNGSAM uppspelning, och dålig ljud", "förfärligt", "långsam", "uppspelning", "dålig", "ljud");
}

Test(themes, latin1_and_extended_a_capitals_fold_to_lowercase) {
    EXPECT("ÅÄÖ ÉCRAN ÜBER Ñandú ŁÓDŹ ŒUVRE ĞÜL İSTANBUL Ÿves GROẞ ẠB", "åäö", "écran", "über", "ñandú", "łódź",
           "œuvre", "ğül", "istanbul", "ÿves", "groß", "ạb");
}

Test(themes, greek_and_cyrillic_are_letters_and_fold) {
    EXPECT("ΤΑΙΝΊΑ Фильм ПЛОХОЙ", "ταινία", "фильм", "плохой");
}

Test(themes, emoji_and_symbols_are_separators) {
    EXPECT("great\xF0\x9F\x98\x80movie \xF0\x9F\x91\x8D\xF0\x9F\x91\x8D 5\xE2\x82\xAC "
           "price\xC3\x97two",
           "great", "movie", "price", "two");
}

Test(themes, lone_lead_byte_is_a_separator_and_neighbours_survive) {
    EXPECT("bra\xC3 ljud", "bra", "ljud");
    EXPECT("ab\xC3"
           "cd",
           "ab", "cd");
}

Test(themes, byte_ff_is_a_separator) {
    EXPECT("\xFFhej\xFF"
           "bild\xFF",
           "hej", "bild");
}

Test(themes, truncated_four_byte_sequence_at_the_end_is_dropped) {
    EXPECT("slut p\xC3\xA5 film\xF0\x9F\x98", "slut", "film");
    EXPECT("film \xF0", "film");
}

Test(themes, overlongs_surrogates_and_stray_continuations_never_form_letters) {
    /* C3 A5 is "å"; C1 A5 and E0 83 A5 are overlong spellings of 'e' and "å"; ED A0 80 is a
     * surrogate; 85 a stray continuation byte. */
    EXPECT("ok\xC1\xA5zz \xE0\x83\xA5xx q\xED\xA0\x80q\x85qq", "ok", "zz", "xx", "qq");
}

Test(themes, nul_bytes_separate_and_are_not_the_end) {
    EXPECT("abc\0def", "abc", "def");
}

Test(themes, english_contractions_join_without_the_apostrophe) {
    EXPECT("Player's menu doesn't work, I've tried", "players", "menu", "work", "tried");
    EXPECT("player\xE2\x80\x99s subtitles", "players", "subtitles");
}

Test(themes, other_apostrophes_separate) {
    EXPECT("l'application rock'n'roll 'quoted' '", "application", "rock", "roll", "quoted");
}

Test(themes, single_code_point_tokens_are_dropped_two_are_kept) {
    EXPECT("x y ok å åä", "ok", "åä");
}

Test(themes, pure_numbers_are_dropped_mixed_tokens_kept) {
    EXPECT("2024 12 4k h264 1080p", "4k", "h264", "1080p");
}

Test(themes, token_of_48_bytes_is_kept_and_49_dropped) {
    char buf[128];
    memset(buf, 'a', 48);
    buf[48] = ' ';
    memset(buf + 49, 'b', 49);
    collected_t *c = calloc(1, sizeof *c);
    cr_assert_eq(cx_themes_tokenize(buf, 98, collect, c), 1);
    cr_assert_eq(strlen(c->tok[0]), 48);
    cr_assert_eq(c->tok[0][0], 'a');
    free(c);
}

Test(themes, multibyte_token_at_the_limit_is_not_split) {
    /* 24 × "ö" = 48 bytes: kept whole; 25 × "Ö" = 50 bytes: dropped, not cut in a code point. */
    char buf[256];
    size_t n = 0;
    for (int i = 0; i < 24; i++)
        buf[n++] = '\xC3', buf[n++] = '\xB6';
    buf[n++] = ' ';
    for (int i = 0; i < 25; i++)
        buf[n++] = '\xC3', buf[n++] = '\x96';
    buf[n++] = ' ';
    buf[n++] = 'o';
    buf[n++] = 'k';
    collected_t *c = calloc(1, sizeof *c);
    cr_assert_eq(cx_themes_tokenize(buf, n, collect, c), 2);
    cr_assert_eq(strlen(c->tok[0]), 48);
    cr_assert_eq(memcmp(c->tok[0], "\xC3\xB6\xC3\xB6", 4), 0);
    cr_assert_str_eq(c->tok[1], "ok");
    free(c);
}

Test(themes, stop_words_in_either_language_are_recognised) {
    const char *stops[] = {"the", "and",  "dont", "och", "att", "det", "som",  "en",  "är", "på",
                           "för", "inte", "jag",  "med", "har", "av",  "till", "den", "så", "om"};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++)
        cr_assert(cx_themes_is_stopword(stops[i], strlen(stops[i])), "%s", stops[i]);
    const char *content[] = {"buffering", "ljud", "långsam", "th", "thee", "ä", "", "pa"};
    for (size_t i = 0; i < sizeof content / sizeof content[0]; i++)
        cr_assert_not(cx_themes_is_stopword(content[i], strlen(content[i])), "%s", content[i]);
    cr_assert_not(cx_themes_is_stopword(NULL, 0));
    /* Length matters: a prefix of a stop word is not one. */
    cr_assert_not(cx_themes_is_stopword("thes", 4));
    cr_assert(cx_themes_is_stopword("these", 5));
}

Test(themes, only_stop_words_gives_no_tokens) {
    EXPECT_NONE("Det är inte så att jag har det, och the it is what it is");
}

static void check_sorted_unique(const char *lang, size_t min_count) {
    size_t n = 0;
    const char *const *w = cx_themes_stopwords(lang, &n);
    cr_assert_not_null(w);
    cr_assert_geq(n, min_count, "%s has %zu words", lang, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert(cx_themes_is_stopword(w[i], strlen(w[i])), "%s: %s", lang, w[i]);
        if (i > 0) cr_assert_lt(strcmp(w[i - 1], w[i]), 0, "%s: %s !< %s", lang, w[i - 1], w[i]);
    }
}

Test(themes, stop_word_lists_are_sorted_unique_and_of_useful_size) {
    check_sorted_unique("en", 150);
    check_sorted_unique("sv", 120);
    size_t n = 7;
    cr_assert_null(cx_themes_stopwords("de", &n));
    cr_assert_eq(n, 0);
}

/* docs/voc.md lists each language's stop words in a fenced block after `<!-- stopwords:LANG -->`;
 * the lists in the code and in the doc must not drift. */
static void check_doc_lists(const char *doc, const char *lang) {
    char marker[64];
    snprintf(marker, sizeof marker, "<!-- stopwords:%s -->", lang);
    const char *p = strstr(doc, marker);
    cr_assert_not_null(p, "docs/voc.md lacks %s", marker);
    p = strstr(p, "```");
    cr_assert_not_null(p);
    p = strchr(p, '\n');
    cr_assert_not_null(p);
    const char *end = strstr(p, "```");
    cr_assert_not_null(end);
    size_t n = 0, seen = 0;
    const char *const *w = cx_themes_stopwords(lang, &n);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\n'))
            p++;
        const char *q = p;
        while (q < end && *q != ' ' && *q != '\n')
            q++;
        if (q > p) {
            size_t len = (size_t)(q - p);
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = strlen(w[i]) == len && !memcmp(w[i], p, len);
            cr_assert(found, "docs/voc.md lists %.*s, not a %s stop word in the code", (int)len, p, lang);
            seen++;
        }
        p = q;
    }
    cr_assert_eq(seen, n, "docs/voc.md lists %zu %s stop words, the code %zu", seen, lang, n);
}

Test(themes, docs_list_the_same_stop_words_as_the_code) {
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/voc.md", CX_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    static char doc[1 << 17];
    size_t len = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[len] = '\0';
    check_doc_lists(doc, "en");
    check_doc_lists(doc, "sv");
}

/* Each emitted token, tokenized again, must come back as exactly itself: it is well-formed
 * UTF-8 (a bad byte would split it), already lower-case, long enough and not a stop word. */
static void check_fixed_point(void *opaque, const char *tok, size_t len) {
    size_t *count = opaque;
    collected_t *again = calloc(1, sizeof *again);
    cr_assert_not_null(again);
    cr_assert_eq(cx_themes_tokenize(tok, len, collect, again), 1, "%.*s", (int)len, tok);
    cr_assert_eq(strlen(again->tok[0]), len);
    cr_assert_eq(memcmp(again->tok[0], tok, len), 0);
    free(again);
    (*count)++;
}

Test(themes, random_bytes_yield_only_well_formed_lowercase_tokens) {
    /* Bytes biased towards UTF-8 lead and continuation bytes so that valid sequences, truncated
     * ones and letters of every accepted range all occur. Fixed seed: reproducible. */
    static const unsigned char alphabet[] = {'a',  'B',  'z',  '0',  '9',  ' ',  '\'', 0xC3, 0xC4,
                                             0xC5, 0xCE, 0xD0, 0xE1, 0xB8, 0x80, 0x96, 0xA5, 0xBF,
                                             0xED, 0xF0, 0x9F, 0xE2, 0x80, 0x99, 0xFF, 0x00};
    uint64_t x = 0x9E3779B97F4A7C15u;
    size_t len = 1 << 18, count = 0;
    unsigned char *b = malloc(len);
    cr_assert_not_null(b);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = alphabet[x % sizeof alphabet];
    }
    size_t n = cx_themes_tokenize((const char *)b, len, check_fixed_point, &count);
    cr_assert_eq(n, count);
    cr_assert_gt(n, 100);
    free(b);
}

/* ---- linear time ------------------------------------------------------------------------- */

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *repeat(const char *pat, size_t patlen, size_t total) {
    char *b = malloc(total);
    cr_assert_not_null(b);
    for (size_t i = 0; i < total; i++)
        b[i] = pat[i % patlen];
    return b;
}

/* Best of three CPU times for tokenizing buf[0..len). */
static double time_tokenize(const char *buf, size_t len, size_t *tokens) {
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        double t0 = cpu_seconds();
        *tokens = cx_themes_tokenize(buf, len, NULL, NULL);
        double t = cpu_seconds() - t0;
        if (t < best) best = t;
    }
    return best;
}

/* 8 MB must take about 8× as long as 1 MB (a quadratic scan would take 64×); the slack covers
 * timer noise and caches. */
static void check_linear(const char *pat, size_t patlen) {
    const size_t mb = 1 << 20;
    char *small = repeat(pat, patlen, mb), *large = repeat(pat, patlen, 8 * mb);
    size_t ns, nl;
    double ts = time_tokenize(small, mb, &ns);
    double tl = time_tokenize(large, 8 * mb, &nl);
    cr_assert_lt(ts, 2.0, "1 MB took %.3f s", ts);
    cr_assert_lt(tl, 24.0 * ts + 0.02, "1 MB %.4f s, 8 MB %.4f s: not linear", ts, tl);
    cr_assert_geq(nl, ns);
    free(small);
    free(large);
}

Test(themes, one_megabyte_comment_is_tokenized_completely) {
    const char pat[] = "Buffering ALL the time!! Förfärligt LÅNGSAM uppspelning, och dålig ljud "
                       "\xF0\x9F\x98\x80 don't ";
    size_t patlen = sizeof pat - 1, reps = (1u << 20) / patlen;
    char *b = repeat(pat, patlen, reps * patlen);
    cr_assert_eq(cx_themes_tokenize(b, reps * patlen, NULL, NULL), reps * 7);
    free(b);
}

Test(themes, ordinary_text_runs_in_linear_time) {
    const char pat[] = "Buffering ALL the time!! Förfärligt LÅNGSAM uppspelning, och dålig ljud "
                       "\xF0\x9F\x98\x80 don't ";
    check_linear(pat, sizeof pat - 1);
}

Test(themes, one_endless_token_runs_in_linear_time_and_is_dropped) {
    check_linear("ab", 2);
    char *b = repeat("\xC3\xA5", 2, 1 << 20);
    cr_assert_eq(cx_themes_tokenize(b, 1 << 20, NULL, NULL), 0);
    free(b);
}

Test(themes, apostrophes_and_invalid_bytes_run_in_linear_time) {
    check_linear("a's'", 4);
    check_linear("x'", 2);
    check_linear("\xC3\xFF\xF0\x9F\x98", 5);
    check_linear("\x80", 1);
}
