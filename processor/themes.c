/*
 * themes.c — the comment tokenizer (themes.h). One forward pass over the bytes: decode a code
 * point (strictly: ill-formed bytes are consumed one at a time and act as separators), classify
 * it, lower-case it into a 48-byte stack buffer, and at each separator decide whether the token is
 * worth emitting. A token longer than the buffer keeps being scanned but is no longer written,
 * and the only look-ahead (the clitic after an apostrophe) reads at most a few bytes, so the work
 * is linear in the input whatever it holds.
 */
#include "themes.h"

#include <stdint.h>
#include <string.h>

/* Stop words, sorted by bytes (UTF-8 byte order is code point order) for binary search; the
 * unit tests check the order and that docs/voc.md lists the same words. Contractions appear
 * without their apostrophe, as the tokenizer emits them ("don't" → "dont"). */
static const char *const stop_en[] = {
    "a",          "about",      "above",   "after",   "again",   "against",   "all",      "also",    "am",
    "an",         "and",        "any",     "are",     "arent",   "as",        "at",       "be",      "because",
    "been",       "before",     "being",   "below",   "between", "both",      "but",      "by",      "can",
    "cant",       "could",      "couldnt", "did",     "didnt",   "do",        "does",     "doesnt",  "doing",
    "dont",       "down",       "during",  "each",    "even",    "ever",      "few",      "for",     "from",
    "further",    "get",        "gets",    "got",     "had",     "hadnt",     "has",      "hasnt",   "have",
    "havent",     "having",     "he",      "her",     "here",    "heres",     "hers",     "herself", "hes",
    "him",        "himself",    "his",     "how",     "hows",    "i",         "id",       "if",      "ill",
    "im",         "in",         "into",    "is",      "isnt",    "it",        "its",      "itself",  "ive",
    "just",       "lets",       "me",      "more",    "most",    "much",      "my",       "myself",  "no",
    "nor",        "not",        "now",     "of",      "off",     "oh",        "on",       "once",    "only",
    "or",         "other",      "ought",   "our",     "ours",    "ourselves", "out",      "over",    "own",
    "quite",      "really",     "same",    "she",     "shes",    "should",    "shouldnt", "so",      "some",
    "still",      "such",       "than",    "that",    "thats",   "the",       "their",    "theirs",  "them",
    "themselves", "then",       "there",   "theres",  "these",   "they",      "theyd",    "theyll",  "theyre",
    "theyve",     "this",       "those",   "through", "to",      "too",       "under",    "until",   "up",
    "upon",       "us",         "very",    "was",     "wasnt",   "we",        "well",     "were",    "werent",
    "weve",       "what",       "whats",   "when",    "whens",   "where",     "wheres",   "which",   "while",
    "who",        "whom",       "whos",    "why",     "whys",    "will",      "with",     "within",  "wont",
    "would",      "wouldnt",    "yet",     "you",     "youd",    "youll",     "your",     "youre",   "yours",
    "yourself",   "yourselves", "youve",
};

static const char *const stop_sv[] = {
    "alla",   "allt",   "att",   "av",    "bara",   "blev",  "bli",    "blir",   "blivit", "de",     "dem",
    "den",    "denna",  "deras", "dess",  "dessa",  "det",   "detta",  "dig",    "din",    "dina",   "ditt",
    "dock",   "du",     "där",   "då",    "efter",  "ej",    "eller",  "en",     "er",     "era",    "ert",
    "ett",    "fanns",  "fick",  "finns", "från",   "får",   "för",    "genom",  "gick",   "gjorde", "går",
    "gör",    "ha",     "hade",  "han",   "hans",   "har",   "henne",  "hennes", "hon",    "honom",  "hos",
    "hur",    "här",    "i",     "icke",  "ingen",  "inom",  "inte",   "ja",     "jag",    "jo",     "ju",
    "kan",    "kommer", "kunde", "lite",  "man",    "med",   "mellan", "men",    "mer",    "mest",   "mig",
    "min",    "mina",   "mitt",  "mot",   "mycket", "nej",   "ni",     "nog",    "nu",     "när",    "någon",
    "något",  "några",  "och",   "också", "om",     "oss",   "på",     "samma",  "sedan",  "sen",    "sig",
    "sin",    "sina",   "sitta", "själv", "ska",    "skall", "skulle", "som",    "så",     "sådan",  "sådana",
    "sådant", "till",   "under", "upp",   "ut",     "utan",  "vad",    "var",    "vara",   "varför", "varit",
    "varje",  "vars",   "vart",  "vem",   "vi",     "vid",   "vilka",  "vilkas", "vilken", "vilket", "väl",
    "vår",    "våra",   "vårt",  "än",    "är",     "även",  "åt",     "över",
};

#define N_EN   (sizeof stop_en / sizeof stop_en[0])
#define N_SV   (sizeof stop_sv / sizeof stop_sv[0])

#define CP_BAD UINT32_C(0xFFFFFFFF)

enum { CL_SEP = 0, CL_LETTER, CL_DIGIT, CL_APOS };

/* Decodes one well-formed UTF-8 sequence at s (len >= 1). On ill-formed input returns CP_BAD and
 * consumes one byte, so the next byte is examined afresh (a stray continuation byte is then bad
 * too); this never reads past s + len. */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *adv) {
    unsigned c = s[0];
    size_t need;
    uint32_t cp;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
    *adv = 1;
    if (c < 0x80) return c;
    if (c < 0xC2) return CP_BAD; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) {
        need = 1;
        cp = c & 0x1F;
    } else if (c < 0xF0) {
        need = 2;
        cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c < 0xF5) {
        need = 3;
        cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return CP_BAD;
    }
    if (len <= need) return CP_BAD; /* truncated at the end of the text */
    for (size_t i = 1; i <= need; i++) {
        unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : ((b & 0xC0) != 0x80)) return CP_BAD;
        cp = (cp << 6) | (b & 0x3F);
    }
    *adv = need + 1;
    return cp;
}

static int classify(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CL_LETTER;
        if (cp >= '0' && cp <= '9') return CL_DIGIT;
        return cp == '\'' ? CL_APOS : CL_SEP;
    }
    if (cp == 0x2019) return CL_APOS; /* right single quotation mark */
    if (cp >= 0x00C0 && cp <= 0x024F) return (cp == 0xD7 || cp == 0xF7) ? CL_SEP : CL_LETTER;
    if (cp >= 0x0300 && cp <= 0x036F) return CL_LETTER; /* combining marks (NFD text) */
    if (cp == 0x0386 || (cp >= 0x0388 && cp <= 0x03CE && cp != 0x0387 && cp != 0x038B && cp != 0x038D && cp != 0x03A2))
        return CL_LETTER; /* Greek */
    if ((cp >= 0x0400 && cp <= 0x0481) || (cp >= 0x048A && cp <= 0x052F)) return CL_LETTER;
    if (cp >= 0x1E00 && cp <= 0x1EFF) return CL_LETTER; /* Latin Extended Additional */
    return CL_SEP;
}

/* Simple (one-to-one) lower-casing of the letters classify() accepts. */
static uint32_t fold(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    if (cp < 0x100) return (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) ? cp + 32 : cp;
    if (cp < 0x180) {                 /* Latin Extended-A: case pairs, with a few unpaired letters */
        if (cp == 0x130) return 'i';  /* İ */
        if (cp == 0x178) return 0xFF; /* Ÿ → ÿ */
        if ((cp >= 0x100 && cp <= 0x12F) || (cp >= 0x132 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177)) return cp | 1;
        if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return (cp & 1) ? cp + 1 : cp;
        return cp;
    }
    if (cp >= 0x370 && cp < 0x400) { /* Greek */
        if (cp == 0x386) return 0x3AC;
        if (cp >= 0x388 && cp <= 0x38A) return cp + 37;
        if (cp == 0x38C) return 0x3CC;
        if (cp == 0x38E || cp == 0x38F) return cp + 63;
        if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) return cp + 32;
        return cp;
    }
    if (cp >= 0x400 && cp < 0x530) { /* Cyrillic */
        if (cp <= 0x40F) return cp + 80;
        if (cp <= 0x42F) return cp + 32;
        if ((cp >= 0x460 && cp <= 0x481) || (cp >= 0x48A && cp <= 0x4BF) || (cp >= 0x4D0 && cp <= 0x52F)) return cp | 1;
        if (cp == 0x4C0) return 0x4CF;
        if (cp >= 0x4C1 && cp <= 0x4CE) return (cp & 1) ? cp + 1 : cp;
        return cp;
    }
    if (cp >= 0x1E00 && cp <= 0x1EFF) { /* Latin Extended Additional */
        if (cp == 0x1E9E) return 0xDF;  /* ẞ → ß */
        if (cp <= 0x1E95 || cp >= 0x1EA0) return cp | 1;
        return cp;
    }
    return cp;
}

static size_t utf8_put(uint32_t cp, unsigned char out[4]) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* After an apostrophe that follows a letter: true if the text continues with an English clitic
 * (t, s, d, m, re, ve, ll) that ends the word, so "don't" joins as "dont". Reads at most 3 ASCII
 * bytes and one code point. */
static bool clitic_follows(const unsigned char *s, size_t len) {
    char c[2];
    size_t k = 0;
    while (k < len && k < 3 && (s[k] | 0x20) >= 'a' && (s[k] | 0x20) <= 'z') {
        if (k < 2) c[k] = (char)(s[k] | 0x20);
        k++;
    }
    if (k == 0 || k > 2) return false;
    if (k < len) {
        size_t adv;
        int cl = classify(utf8_next(s + k, len - k, &adv));
        if (cl == CL_LETTER || cl == CL_DIGIT) return false;
    }
    if (k == 1) return c[0] == 't' || c[0] == 's' || c[0] == 'd' || c[0] == 'm';
    return (c[0] == 'r' && c[1] == 'e') || (c[0] == 'v' && c[1] == 'e') || (c[0] == 'l' && c[1] == 'l');
}

typedef struct token {
    unsigned char buf[CX_THEMES_TOKEN_MAX];
    size_t len;    /* bytes written to buf */
    size_t ncp;    /* code points seen, including any past the buffer */
    bool overflow; /* longer than CX_THEMES_TOKEN_MAX bytes: will be dropped */
    bool digits_only;
    bool last_letter; /* the last code point added was a letter (for the apostrophe rule) */
} token_t;

static void token_reset(token_t *t) {
    t->len = 0;
    t->ncp = 0;
    t->overflow = false;
    t->digits_only = true;
    t->last_letter = false;
}

static void token_add(token_t *t, uint32_t cp, int cl) {
    unsigned char enc[4];
    size_t n = utf8_put(cp, enc);
    t->ncp++;
    t->last_letter = (cl == CL_LETTER);
    if (cl != CL_DIGIT) t->digits_only = false;
    if (t->overflow) return;
    if (t->len + n > sizeof t->buf) {
        t->overflow = true;
        return;
    }
    memcpy(t->buf + t->len, enc, n);
    t->len += n;
}

static size_t token_flush(token_t *t, cx_token_cb cb, void *opaque) {
    size_t emitted = 0;
    if (t->ncp >= 2 && !t->overflow && !t->digits_only && !cx_themes_is_stopword((const char *)t->buf, t->len)) {
        if (cb) cb(opaque, (const char *)t->buf, t->len);
        emitted = 1;
    }
    token_reset(t);
    return emitted;
}

size_t cx_themes_tokenize(const char *text, size_t len, cx_token_cb cb, void *opaque) {
    if (!text || len == 0) return 0;
    const unsigned char *s = (const unsigned char *)text;
    token_t t;
    size_t emitted = 0, i = 0;
    token_reset(&t);
    while (i < len) {
        size_t adv;
        uint32_t cp = utf8_next(s + i, len - i, &adv);
        int cl = cp == CP_BAD ? CL_SEP : classify(cp);
        if (cl == CL_LETTER || cl == CL_DIGIT) {
            token_add(&t, fold(cp), cl);
        } else if (cl == CL_APOS && t.last_letter && clitic_follows(s + i + adv, len - i - adv)) {
            /* "don't": the apostrophe is dropped and the word goes on */
        } else if (t.ncp > 0) {
            emitted += token_flush(&t, cb, opaque);
        }
        i += adv;
    }
    if (t.ncp > 0) emitted += token_flush(&t, cb, opaque);
    return emitted;
}

static bool in_sorted(const char *const *words, size_t n, const char *tok, size_t len) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *w = words[mid];
        size_t wlen = strlen(w);
        int c = memcmp(w, tok, wlen < len ? wlen : len);
        if (c == 0) c = (wlen > len) - (wlen < len);
        if (c == 0) return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool cx_themes_is_stopword(const char *tok, size_t len) {
    if (!tok || len == 0) return false;
    return in_sorted(stop_en, N_EN, tok, len) || in_sorted(stop_sv, N_SV, tok, len);
}

const char *const *cx_themes_stopwords(const char *lang, size_t *n) {
    if (lang && strcmp(lang, "en") == 0) {
        if (n) *n = N_EN;
        return stop_en;
    }
    if (lang && strcmp(lang, "sv") == 0) {
        if (n) *n = N_SV;
        return stop_sv;
    }
    if (n) *n = 0;
    return NULL;
}
