/*
 * themes.h — the comment tokenizer behind the "comment themes" of the voice-of-customer figures
 * (docs/voc.md): it turns a survey comment into lower-case terms worth counting, which the
 * pipeline feeds to a heavy-hitters sketch (state/sketch.h, cx_topk_*) per (segment|touchpoint,
 * detractor|promoter).
 *
 * Rules (docs/voc.md has the full list and the stop words):
 *  - input is UTF-8 decoded code point by code point; bytes that are not well-formed UTF-8
 *    (stray continuation bytes, overlongs, surrogates, truncated sequences) are separators;
 *  - letters (Latin incl. Latin-1, Latin Extended-A/B and Additional, Greek, Cyrillic, combining
 *    marks) and ASCII digits make tokens; everything else (space, punctuation, symbols, emoji,
 *    other scripts) separates;
 *  - letters are lower-cased (ASCII, Latin-1, Latin Extended-A, Latin Extended Additional, Greek,
 *    Cyrillic): "LÅNGSAM" → "långsam";
 *  - an apostrophe (U+0027 or U+2019) between letters is dropped when an English clitic follows
 *    (t, s, d, m, re, ve, ll): "don't" → "dont", "player's" → "players"; any other apostrophe
 *    separates: "l'application" → "l" (dropped) + "application";
 *  - tokens shorter than 2 code points or longer than CX_THEMES_TOKEN_MAX bytes, tokens of digits
 *    only, and stop words (English and Swedish) are dropped.
 *
 * Nothing here allocates; tokenizing is one pass, linear in the input length.
 */
#ifndef CX_THEMES_H
#define CX_THEMES_H

#include <stdbool.h>
#include <stddef.h>

#define CX_THEMES_TOKEN_MAX 48 /* bytes of UTF-8, after lower-casing */

/* Called once per emitted token. `tok` (lower-case UTF-8, not NUL-terminated, 2..48 bytes) points
 * into the tokenizer's stack buffer: borrowed for the duration of the call only; copy to keep. */
typedef void (*cx_token_cb)(void *opaque, const char *tok, size_t len);

/* Tokenizes text[0..len) (need not be NUL-terminated; NUL is a separator) and calls cb for each
 * token kept, in order. Returns the number of tokens emitted. cb may be NULL (count only); text
 * may be NULL when len is 0. */
size_t cx_themes_tokenize(const char *text, size_t len, cx_token_cb cb, void *opaque);

/* True if tok[0..len) is an English or Swedish stop word. Exact byte comparison against the
 * lower-case lists, so pass tokens as the tokenizer emits them. */
bool cx_themes_is_stopword(const char *tok, size_t len);

/* The embedded stop word lists, sorted by bytes (strcmp order), for docs and tests.
 * `lang` is "en" or "sv"; returns NULL (and *n = 0) for any other. The array is static. */
const char *const *cx_themes_stopwords(const char *lang, size_t *n);

#endif
