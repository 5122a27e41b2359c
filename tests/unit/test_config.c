/*
 * test_config.c — configuration: typed parsing and bounds, the segment map, precedence of the
 * sources, error messages that name key, source and reason, kafka.* pass-through, and the
 * generated reference docs/configuration.md (rewritten by this test when CX_REGEN_DOCS=1).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static cx_config_t *cfg;
static char err[1024];
static char dir[64];

static void setup(void) {
    cfg = cx_config_new();
    cr_assert_not_null(cfg);
    err[0] = '\0';
    snprintf(dir, sizeof dir, "/tmp/cx_test_config_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void) {
    cx_config_destroy(cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Writes `text` to dir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static cx_err_t set(const char *key, const char *value) {
    return cx_config_set(cfg, key, value, "--set", err, sizeof err);
}

static const char *text(const char *key) {
    static char buf[2048];
    return cx_config_get_text(cfg, key, buf, sizeof buf);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- defaults */

Test(config, commit_interval_follows_the_guarantee_unless_set) {
    cr_expect_eq(cfg->commit_interval_ms, 0);
    cr_expect_eq(cx_config_commit_interval_ms(cfg), 5000);
    cr_assert_eq(set("processing.guarantee", "exactly_once"), CX_OK, "%s", err);
    cr_expect_eq(cx_config_commit_interval_ms(cfg), 1000);
    cr_assert_eq(set("commit.interval_ms", "250"), CX_OK, "%s", err);
    cr_expect_eq(cx_config_commit_interval_ms(cfg), 250);
    cr_assert_eq(set("processing.guarantee", "at_least_once"), CX_OK, "%s", err);
    cr_expect_eq(cx_config_commit_interval_ms(cfg), 250);
    cr_assert_eq(set("commit.interval_ms", "0"), CX_OK, "%s", err);
    cr_expect_eq(cx_config_commit_interval_ms(cfg), 5000);
    cr_expect_neq(set("commit.interval_ms", "-1"), CX_OK);
    cr_expect(strstr(err, "commit.interval_ms"), "%s", err);
}

Test(config, defaults_match_the_design) {
    cr_expect_str_eq(cfg->topic_play, "cx.play");
    cr_expect_str_eq(cfg->topic_disengagement_triggers, "cx.disengagement_triggers");
    cr_expect_str_eq(cfg->topic_partials, "cx.partials");
    cr_expect_eq(cfg->input_max_idle_ms, 100);
    cr_expect_eq(cfg->input_min_ts_ms, INT64_C(631152000000));
    cr_expect_eq(cfg->input_max_future_ms, INT64_C(86400000));
    cr_expect_eq(cfg->watermark_lateness_ms, 0);
    cr_expect_eq(cfg->n_currencies, 0);
    cr_expect_eq(cfg->guarantee, CX_GUARANTEE_AT_LEAST_ONCE);
    cr_expect_eq(cfg->retrieval_min_seconds, 120);
    cr_expect_eq(cfg->rfm_window_days, 365);
    cr_expect_eq(cfg->rfm_scoring, CX_SCORING_FIXED);
    int32_t r_days[4] = {7, 30, 90, 180};
    int64_t f_min[4] = {100, 40, 12, 4}, m_min[4] = {50000, 20000, 8000, 2000};
    cr_expect_arr_eq(cfg->rfm_r_days, r_days, sizeof r_days);
    cr_expect_arr_eq(cfg->rfm_f_min, f_min, sizeof f_min);
    cr_expect_arr_eq(cfg->rfm_m_min, m_min, sizeof m_min);
    cr_expect_eq(cfg->n_segments, 11);
    cr_expect_eq(cfg->exclusion_weeks[CX_CT_WIN_BACK], 4);
    cr_expect_eq(cfg->exclusion_weeks[CX_CT_NEWSLETTER], 0);
    cr_expect_eq(cfg->contacts_max, 8);
    cr_expect_float_eq(cfg->inactivity_k, 3.0, 1e-12);
    cr_expect_float_eq(cfg->bgnbd_alpha, 4.414, 1e-12);
    cr_expect_float_eq(cfg->gammagamma_gamma, 1544, 1e-12);
    cr_expect_eq(cfg->bgnbd_unit_days, 7);
    cr_expect_eq(cfg->dedup_per_customer, 8);
    cr_expect_str_eq(cfg->state_dir, "./cxstream-state");
    cr_expect_eq(cfg->http_port, 9464);
    cr_expect_str_eq(cfg->http_advertised, "");
    cr_expect_str_eq(cfg->bootstrap_servers, "localhost:9092");
    cr_expect(cfg->enriched_enabled);
    cr_expect_eq(cfg->log_level, CX_LOG_INFO);
    cr_expect_eq(cfg->log_format, CX_LOG_FORMAT_TEXT);
    cr_expect_eq(cfg->statistics_interval_ms, 5000);
    cr_expect_eq(cfg->replay_partitions, 1);
    cr_expect_eq(cfg->n_kafka, 0);
    cr_expect_eq(cx_config_validate(cfg, err, sizeof err), CX_OK, "%s", err);
}

Test(config, every_value_read_back_as_text_sets_the_same_value) {
    char buf[2048], again[2048];
    for (size_t i = 0; i < cx_config_key_count(); i++) {
        const char *key = cx_config_key_name(i);
        cr_assert_not_null(cx_config_get_text(cfg, key, buf, sizeof buf), "%s", key);
        cr_assert_eq(set(key, buf), CX_OK, "%s=%s: %s", key, buf, err);
        cr_assert_str_eq(cx_config_get_text(cfg, key, again, sizeof again), buf, "%s", key);
    }
    cr_expect_null(cx_config_key_name(cx_config_key_count()));
}

/* ---- integers */

Test(config, integer_bounds_are_inclusive) {
    cr_expect_eq(set("dedup.per_customer", "1"), CX_OK);
    cr_expect_eq(cfg->dedup_per_customer, 1);
    cr_expect_eq(set("dedup.per_customer", "32"), CX_OK);
    cr_expect_eq(cfg->dedup_per_customer, 32);
    cr_expect_eq(set("dedup.per_customer", "33"), CX_ERR_CONFIG);
    cr_expect_str_eq(err, "dedup.per_customer: 33 is out of range (1..32) (--set)");
    cr_expect_eq(set("dedup.per_customer", "0"), CX_ERR_CONFIG);
    cr_expect_eq(cfg->dedup_per_customer, 32, "a refused value leaves the previous one");
    cr_expect_eq(set("http.port", "0"), CX_OK);
    cr_expect_eq(set("http.port", "65536"), CX_ERR_CONFIG);
}

Test(config, non_integers_are_refused) {
    const char *bad[] = {"abc", "", "12x", "1.5", " ", "99999999999999999999", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(set("rfm.window_days", bad[i]), CX_ERR_CONFIG, "'%s'", bad[i]);
        cr_expect(strstr(err, "is not an integer") != NULL, "'%s': %s", bad[i], err);
    }
    cr_expect_eq(cfg->rfm_window_days, 365);
}

Test(config, int64_keys_take_values_beyond_32_bits) {
    cr_expect_eq(set("kpi.interval_ms", "8640000000"), CX_OK, "%s", err);
    cr_expect_eq(cfg->kpi_interval_ms, INT64_C(8640000000));
    cr_expect_eq(set("kpi.interval_ms", "999"), CX_ERR_CONFIG);
}

Test(config, timestamp_accepts_epoch_ms_and_iso8601_utc) {
    cr_expect_eq(set("input.min_ts", "2000-01-01T00:00:00Z"), CX_OK, "%s", err);
    cr_expect_eq(cfg->input_min_ts_ms, INT64_C(946684800000));
    cr_expect_eq(set("input.min_ts", "2024-02-29T12:34:56.789Z"), CX_OK, "%s", err);
    cr_expect_eq(cfg->input_min_ts_ms, INT64_C(1709210096789));
    cr_expect_eq(set("input.min_ts", "2020-03-01"), CX_OK, "%s", err);
    cr_expect_eq(cfg->input_min_ts_ms, INT64_C(1583020800000));
    cr_expect_eq(set("input.min_ts", "12345"), CX_OK);
    cr_expect_eq(cfg->input_min_ts_ms, 12345);
    cr_expect_eq(set("input.min_ts", "2023-02-29T00:00:00Z"), CX_ERR_CONFIG, "not a leap year");
    cr_expect_eq(set("input.min_ts", "2020-01-01T00:00:00"), CX_ERR_CONFIG, "no zone: not UTC");
    cr_expect_eq(set("input.min_ts", "2020-01-01T00:00:00+02:00"), CX_ERR_CONFIG);
    cr_expect_eq(set("input.min_ts", "-1"), CX_ERR_CONFIG);
    cr_expect_eq(cfg->input_min_ts_ms, 12345);
}

/* ---- doubles, booleans, enums */

Test(config, doubles_parse_and_respect_bounds) {
    cr_expect_eq(set("drop.fraction", "1"), CX_OK);
    cr_expect_float_eq(cfg->drop_fraction, 1.0, 1e-12);
    cr_expect_eq(set("drop.fraction", "0.25"), CX_OK);
    cr_expect_float_eq(cfg->drop_fraction, 0.25, 1e-12);
    cr_expect_eq(set("drop.fraction", "0"), CX_ERR_CONFIG, "exclusive lower bound");
    cr_expect(strstr(err, "out of range (> 0 and <= 1)") != NULL, "%s", err);
    cr_expect_eq(set("drop.fraction", "1.01"), CX_ERR_CONFIG);
    cr_expect_eq(set("bgnbd.r", "nan"), CX_ERR_CONFIG);
    cr_expect_eq(set("bgnbd.r", "inf"), CX_ERR_CONFIG);
    cr_expect_eq(set("bgnbd.r", "0.5x"), CX_ERR_CONFIG);
    cr_expect(strstr(err, "'0.5x' is not a number") != NULL, "%s", err);
    cr_expect_eq(set("gammagamma.q", "1"), CX_ERR_CONFIG, "q must exceed 1");
    cr_expect_eq(set("bgnbd.r", "1e-3"), CX_OK);
    cr_expect_float_eq(cfg->bgnbd_r, 0.001, 1e-15);
    cr_expect_str_eq(text("drop.fraction"), "0.25");
}

Test(config, booleans_are_true_false_1_0) {
    cr_expect_eq(set("enriched.enabled", "false"), CX_OK);
    cr_expect_not(cfg->enriched_enabled);
    cr_expect_eq(set("enriched.enabled", "1"), CX_OK);
    cr_expect(cfg->enriched_enabled);
    cr_expect_eq(set("enriched.enabled", "0"), CX_OK);
    cr_expect_not(cfg->enriched_enabled);
    cr_expect_eq(set("enriched.enabled", "TRUE"), CX_OK);
    cr_expect(cfg->enriched_enabled);
    cr_expect_eq(set("enriched.enabled", "yes"), CX_ERR_CONFIG);
    cr_expect_str_eq(err, "enriched.enabled: 'yes' is not a boolean (true, false, 1, 0) (--set)");
    cr_expect(cfg->enriched_enabled);
}

Test(config, enums_take_their_symbols_only) {
    cr_expect_eq(set("processing.guarantee", "exactly_once"), CX_OK);
    cr_expect_eq(cfg->guarantee, CX_GUARANTEE_EXACTLY_ONCE);
    cr_expect_eq(set("rfm.scoring", "quantile"), CX_OK);
    cr_expect_eq(cfg->rfm_scoring, CX_SCORING_QUANTILE);
    cr_expect_eq(set("log.level", "debug"), CX_OK);
    cr_expect_eq(cfg->log_level, CX_LOG_DEBUG);
    cr_expect_eq(set("log.level", "error"), CX_OK);
    cr_expect_eq(cfg->log_level, CX_LOG_ERROR);
    cr_expect_eq(set("log.format", "json"), CX_OK);
    cr_expect_eq(cfg->log_format, CX_LOG_FORMAT_JSON);
    cr_expect_eq(set("processing.guarantee", "exactly-once"), CX_ERR_CONFIG);
    cr_expect_str_eq(err, "processing.guarantee: 'exactly-once' is not one of at_least_once, exactly_once (--set)");
    cr_expect_eq(cfg->guarantee, CX_GUARANTEE_EXACTLY_ONCE);
}

/* ---- strings */

Test(config, strings_are_checked_by_kind) {
    cr_expect_eq(set("topic.play", "prod.cx-play_v2"), CX_OK);
    cr_expect_str_eq(cfg->topic_play, "prod.cx-play_v2");
    cr_expect_eq(set("topic.play", "bad topic"), CX_ERR_CONFIG);
    cr_expect_eq(set("topic.play", ""), CX_ERR_CONFIG);
    cr_expect_str_eq(cfg->topic_play, "prod.cx-play_v2");
    cr_expect_eq(set("state.dir", ""), CX_ERR_CONFIG);
    cr_expect_str_eq(err, "state.dir: must not be empty (--set)");
    cr_expect_eq(set("http.advertised", "cx-0.cx:9464"), CX_OK);
    cr_expect_eq(set("http.advertised", "cx-0.cx"), CX_ERR_CONFIG);
    cr_expect_eq(set("http.advertised", "[::1]:80"), CX_OK);
    cr_expect_eq(set("http.advertised", ""), CX_OK);
    cr_expect_eq(set("schema.registry.url", "http://registry:8081"), CX_OK);
    cr_expect_eq(set("schema.registry.url", "registry:8081"), CX_ERR_CONFIG);
    cr_expect_str_eq(cfg->schema_registry_url, "http://registry:8081");
}

/* ---- lists */

Test(config, currency_list_is_three_letter_codes) {
    cr_expect_eq(set("currency.allowed", " EUR, USD ,GBP"), CX_OK, "%s", err);
    cr_assert_eq(cfg->n_currencies, 3);
    cr_expect_str_eq(cfg->currencies[1], "USD");
    cr_expect(cx_config_currency_allowed(cfg, "GBP"));
    cr_expect_not(cx_config_currency_allowed(cfg, "CHF"));
    cr_expect_str_eq(text("currency.allowed"), "EUR,USD,GBP");
    cr_expect_eq(set("currency.allowed", "EUR,usd"), CX_ERR_CONFIG);
    cr_expect(strstr(err, "'usd' is not a currency code") != NULL, "%s", err);
    cr_expect_eq(set("currency.allowed", "EUR,,USD"), CX_ERR_CONFIG);
    cr_expect_eq(set("currency.allowed", ",,,,,,,,"), CX_ERR_CONFIG);
    cr_expect_eq(cfg->n_currencies, 3, "a refused list leaves the previous one");
    cr_expect_eq(set("currency.allowed", ""), CX_OK);
    cr_expect_eq(cfg->n_currencies, 0);
    cr_expect(cx_config_currency_allowed(cfg, "CHF"), "an empty list allows every currency");
}

Test(config, score_thresholds_must_be_four_and_ordered) {
    cr_expect_eq(set("rfm.r_days", "1, 2, 3, 4"), CX_OK, "%s", err);
    cr_expect_eq(cfg->rfm_r_days[3], 4);
    cr_expect_eq(set("rfm.r_days", "7,30,30,180"), CX_ERR_CONFIG);
    cr_expect(strstr(err, "not strictly ascending") != NULL, "%s", err);
    cr_expect_eq(set("rfm.r_days", "7,30,90"), CX_ERR_CONFIG);
    cr_expect_eq(set("rfm.r_days", "7,30,90,180,365"), CX_ERR_CONFIG);
    cr_expect_eq(set("rfm.f_min", "10,5,2,1"), CX_OK);
    cr_expect_eq(cfg->rfm_f_min[0], 10);
    cr_expect_eq(set("rfm.f_min", "1,2,3,4"), CX_ERR_CONFIG);
    cr_expect(strstr(err, "not strictly descending") != NULL, "%s", err);
    cr_expect_eq(set("rfm.m_min", "9000000000,20000,8000,x"), CX_ERR_CONFIG);
    cr_expect_eq(set("rfm.m_min", "9000000000,20000,8000,0"), CX_OK);
    cr_expect_eq(cfg->rfm_m_min[0], INT64_C(9000000000));
    cr_expect_eq(set("rfm.m_min", "3,2,1,-1"), CX_ERR_CONFIG);
}

/* ---- segment map */

Test(config, default_map_classifies_as_design_section_6) {
    struct {
        int r, f, m;
        const char *name;
    } cases[] = {
        {5, 5, 5, "Champions"},      {2, 4, 4, "Cannot Lose Them"},
        {1, 3, 1, "At Risk"},        {5, 1, 1, "New"},
        {4, 1, 3, "Promising"},      {3, 1, 1, "About To Sleep"},
        {2, 2, 2, "Hibernating"},    {1, 1, 5, "Lost"},
        {3, 4, 1, "Loyal"},          {4, 2, 1, "Potential Loyalist"},
        {3, 3, 3, "Need Attention"}, {4, 4, 4, "Champions"},
        {5, 4, 3, "Loyal"},          {1, 5, 5, "Cannot Lose Them"},
        {2, 5, 3, "At Risk"},        {5, 3, 5, "Potential Loyalist"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int s = cx_config_segment_of(cfg, cases[i].r, cases[i].f, cases[i].m);
        cr_assert_geq(s, 0);
        cr_expect_str_eq(cfg->segments[s].name, cases[i].name, "(%d,%d,%d)", cases[i].r, cases[i].f, cases[i].m);
    }
    cr_expect_eq(cx_config_segment_of(cfg, 0, 3, 3), -1);
    cr_expect_eq(cx_config_segment_of(cfg, 3, 6, 3), -1);
}

Test(config, segment_map_is_parsed_first_match_wins) {
    cr_expect_eq(set("rfm.segments", " VIP : M=5 , R>=2 ; Mid:F=2-4;Rest: "), CX_OK, "%s", err);
    cr_assert_eq(cfg->n_segments, 3);
    cr_expect_str_eq(cfg->segments[0].name, "VIP");
    cr_expect_eq(cfg->segments[0].rmin, 2);
    cr_expect_eq(cfg->segments[0].rmax, 5);
    cr_expect_eq(cfg->segments[0].mmin, 5);
    cr_expect_eq(cfg->segments[1].fmin, 2);
    cr_expect_eq(cfg->segments[1].fmax, 4);
    cr_expect_eq(cx_config_segment_of(cfg, 3, 3, 5), 0);
    cr_expect_eq(cx_config_segment_of(cfg, 1, 3, 5), 1);
    cr_expect_eq(cx_config_segment_of(cfg, 1, 5, 5), 2);
    cr_expect_str_eq(text("rfm.segments"), "VIP:R>=2,M=5;Mid:F=2-4;Rest:");
}

Test(config, segment_map_not_covering_all_125_is_refused) {
    cr_expect_eq(set("rfm.segments", "Top:R>=4;Low:R<=2"), CX_ERR_CONFIG);
    cr_expect(strstr(err, "no rule covers R=3 F=1 M=1") != NULL, "%s", err);
    cr_expect_eq(set("rfm.segments", "A:R=1-5,F>=2;B:F=1,M<=4"), CX_ERR_CONFIG);
    cr_expect(strstr(err, "no rule covers R=1 F=1 M=5") != NULL, "%s", err);
    cr_expect_eq(cfg->n_segments, 11, "the default map stays");
}

Test(config, segment_map_syntax_errors_say_which_rule) {
    cr_expect_eq(set("rfm.segments", "All:;Bad:X>=2"), CX_ERR_CONFIG);
    cr_expect(strstr(err, "rule 2 'Bad'") != NULL, "%s", err);
    cr_expect_eq(set("rfm.segments", "All:R>=6"), CX_ERR_CONFIG);
    cr_expect_eq(set("rfm.segments", "All:R=3-2"), CX_ERR_CONFIG);
    cr_expect_eq(set("rfm.segments", "All:R>=4,R<=3"), CX_ERR_CONFIG);
    cr_expect(strstr(err, "contradict") != NULL, "%s", err);
    cr_expect_eq(set("rfm.segments", "NoColon"), CX_ERR_CONFIG);
    cr_expect_eq(set("rfm.segments", ":R>=1"), CX_ERR_CONFIG);
    cr_expect_eq(set("rfm.segments", "A:;A:"), CX_ERR_CONFIG, "duplicate names");
    cr_expect_eq(set("rfm.segments", ""), CX_ERR_CONFIG);
}

Test(config, segment_names_up_to_47_bytes_and_at_most_16_rules) {
    char map[1024];
    snprintf(map, sizeof map, "%s:", "12345678901234567890123456789012345678901234567");
    cr_expect_eq(set("rfm.segments", map), CX_OK, "%s", err);
    snprintf(map, sizeof map, "%s:", "123456789012345678901234567890123456789012345678");
    cr_expect_eq(set("rfm.segments", map), CX_ERR_CONFIG);
    size_t len = 0;
    for (int i = 0; i < 16; i++)
        len += (size_t)snprintf(map + len, sizeof map - len, "S%d:;", i);
    cr_expect_eq(set("rfm.segments", map), CX_OK, "16 rules and a trailing ';': %s", err);
    cr_expect_eq(cfg->n_segments, 16);
    snprintf(map + len, sizeof map - len, "S16:");
    cr_expect_eq(set("rfm.segments", map), CX_ERR_CONFIG);
    cr_expect(strstr(err, "more than 16 rules") != NULL, "%s", err);
}

/* ---- unknown keys, kafka.* */

Test(config, unknown_key_is_refused_naming_key_and_source) {
    cr_expect_eq(cx_config_set(cfg, "rfm.windowdays", "30", "--set", err, sizeof err), CX_ERR_CONFIG);
    cr_expect(strncmp(err, "rfm.windowdays: unknown key", 27) == 0, "%s", err);
    cr_expect(ends_with(err, "(--set)"), "%s", err);
    cr_expect_eq(cx_config_set_kv(cfg, "novalue", "--set", err, sizeof err), CX_ERR_CONFIG);
    cr_expect_str_eq(err, "'novalue' is not key=value (--set)");
}

Test(config, kafka_keys_pass_through_in_order_with_prefix_stripped) {
    cr_expect_eq(cx_config_set_kv(cfg, "kafka.security.protocol = SASL_SSL", "--set", err, sizeof err), CX_OK);
    cr_expect_eq(set("kafka.sasl.password", "hunter2"), CX_OK);
    cr_expect_eq(set("kafka.x.not.a.real.property", "whatever"), CX_OK, "names are librdkafka's to check");
    cr_expect_eq(set("kafka.security.protocol", "SSL"), CX_OK);
    cr_assert_eq(cfg->n_kafka, 3);
    cr_expect_str_eq(cfg->kafka[0].key, "security.protocol");
    cr_expect_str_eq(cfg->kafka[0].value, "SSL", "a later set replaces in place");
    cr_expect_str_eq(cfg->kafka[1].key, "sasl.password");
    cr_expect_str_eq(cfg->kafka[2].key, "x.not.a.real.property");
    cr_expect_str_eq(text("kafka.security.protocol"), "SSL");
    cr_expect_str_eq(text("kafka.sasl.password"), "***");
    cr_expect_str_eq(cx_config_kafka_value(cfg, "sasl.password"), "hunter2");
    cr_expect_null(text("kafka.client.id"));
    cr_expect_eq(set("kafka.", "x"), CX_ERR_CONFIG);
}

Test(config, kafka_bootstrap_servers_wins_over_bootstrap_servers) {
    cr_expect_str_eq(cx_config_bootstrap_servers(cfg), "localhost:9092");
    cr_expect_eq(set("bootstrap.servers", "a:9092"), CX_OK);
    cr_expect_str_eq(cx_config_bootstrap_servers(cfg), "a:9092");
    cr_expect_eq(set("kafka.bootstrap.servers", "b:9092"), CX_OK);
    cr_expect_str_eq(cx_config_bootstrap_servers(cfg), "b:9092");
}

/* ---- file */

Test(config, file_errors_name_file_and_line) {
    char body[512] = "";
    for (int i = 1; i < 12; i++)
        strcat(body, i % 2 ? "# comment\n" : "\n");
    strcat(body, "rfm.window_days = abc\n");
    const char *path = write_file("cx.properties", body);
    cr_expect_eq(cx_config_load_file(cfg, path, err, sizeof err), CX_ERR_CONFIG);
    char want[512];
    snprintf(want, sizeof want, "rfm.window_days: 'abc' is not an integer (file %s:12)", path);
    cr_expect_str_eq(err, want);
}

Test(config, file_syntax_comments_whitespace_continuations_crlf) {
    const char *path = write_file("ok.properties", "\xEF\xBB\xBF# comment\n"
                                                   "! also a comment \\\n"
                                                   "\n"
                                                   "   rfm.window_days   =   180   \n"
                                                   "topic.play=cx.play.v2\r\n"
                                                   "rfm.segments = Top:R>=4, \\\n"
                                                   "      F>=4 ; \\\n"
                                                   "   Rest:\n"
                                                   "currency.allowed=\n"
                                                   "kafka.client.id=a=b\n"
                                                   "rfm.window_days=200\n"
                                                   "log.level=warn");
    cr_assert_eq(cx_config_load_file(cfg, path, err, sizeof err), CX_OK, "%s", err);
    cr_expect_eq(cfg->rfm_window_days, 200, "a repeated key takes the later value");
    cr_expect_str_eq(cfg->topic_play, "cx.play.v2");
    cr_expect_eq(cfg->n_segments, 2);
    cr_expect_eq(cfg->segments[0].fmin, 4);
    cr_expect_str_eq(cfg->segments[1].name, "Rest");
    cr_expect_str_eq(cx_config_kafka_value(cfg, "client.id"), "a=b");
    cr_expect_eq(cfg->log_level, CX_LOG_WARN, "last line without newline");
}

Test(config, continued_line_error_names_its_first_line) {
    const char *path = write_file("c.properties", "a.b=1\\\n  2\n");
    cr_expect_eq(cx_config_load_file(cfg, path, err, sizeof err), CX_ERR_CONFIG);
    cr_expect(ends_with(err, "c.properties:1)"), "%s", err);
    path = write_file("d.properties", "\n\nrfm.window_days=1\\\n 2\\\n 3\nfoo\n");
    cr_expect_eq(cx_config_load_file(cfg, path, err, sizeof err), CX_ERR_CONFIG);
    cr_expect_eq(cfg->rfm_window_days, 123, "three physical lines make one value");
    cr_expect(ends_with(err, "d.properties:6)"), "line numbers count physical lines: %s", err);
}

Test(config, line_without_equals_is_refused) {
    const char *path = write_file("e.properties", "rfm.window_days=30\njust words\n");
    cr_expect_eq(cx_config_load_file(cfg, path, err, sizeof err), CX_ERR_CONFIG);
    cr_expect(strstr(err, "'just words' is not key=value") != NULL, "%s", err);
    cr_expect(ends_with(err, "e.properties:2)"), "%s", err);
}

Test(config, missing_file_is_a_config_error) {
    char path[300];
    snprintf(path, sizeof path, "%s/absent.properties", dir);
    cr_expect_eq(cx_config_load_file(cfg, path, err, sizeof err), CX_ERR_CONFIG);
    cr_expect(strstr(err, "absent.properties") != NULL, "%s", err);
}

/* ---- environment and precedence */

Test(config, environment_maps_keys_and_kafka_names) {
    char *env[] = {"PATH=/bin",
                   "CXSTREAM=/usr/bin/cxstream",
                   "CXSTREAM_RFM_WINDOW_DAYS=30",
                   "CXSTREAM_TOPIC_EMAIL_SEND=mail",
                   "CXSTREAM_EXCLUSION_WEEKS_WIN_BACK=6",
                   "CXSTREAM_KAFKA_SECURITY_PROTOCOL=ssl",
                   "CXSTREAM_KAFKA_SSL_CA_LOCATION=/ca.pem",
                   NULL};
    cr_assert_eq(cx_config_load_env(cfg, env, err, sizeof err), CX_OK, "%s", err);
    cr_expect_eq(cfg->rfm_window_days, 30);
    cr_expect_str_eq(cfg->topic_email_send, "mail");
    cr_expect_eq(cfg->exclusion_weeks[CX_CT_WIN_BACK], 6);
    cr_assert_eq(cfg->n_kafka, 2);
    cr_expect_str_eq(cfg->kafka[0].key, "security.protocol");
    cr_expect_str_eq(cfg->kafka[1].key, "ssl.ca.location");
    cr_expect_str_eq(cfg->kafka[1].value, "/ca.pem");
}

Test(config, environment_variable_of_unknown_key_is_refused) {
    char *env[] = {"CXSTREAM_RFM_WINDOW=30", NULL};
    cr_expect_eq(cx_config_load_env(cfg, env, err, sizeof err), CX_ERR_CONFIG);
    cr_expect(strncmp(err, "CXSTREAM_RFM_WINDOW: no configuration key", 41) == 0, "%s", err);
}

Test(config, environment_bad_value_names_the_variable) {
    char *env[] = {"CXSTREAM_HTTP_PORT=http", NULL};
    cr_expect_eq(cx_config_load_env(cfg, env, err, sizeof err), CX_ERR_CONFIG);
    cr_expect_str_eq(err, "http.port: 'http' is not an integer (env CXSTREAM_HTTP_PORT)");
}

Test(config, process_environment_is_used_when_envp_is_null) {
    cr_assert_eq(setenv("CXSTREAM_NPS_WINDOW_DAYS", "45", 1), 0);
    cx_err_t e = cx_config_load_env(cfg, NULL, err, sizeof err);
    unsetenv("CXSTREAM_NPS_WINDOW_DAYS");
    cr_expect_eq(e, CX_OK, "%s", err);
    cr_expect_eq(cfg->nps_window_days, 45);
}

Test(config, precedence_is_defaults_file_env_set) {
    const char *path = write_file("p.properties", "rfm.window_days=100\nnps.window_days=100\ncampaign.wait_days=100\n"
                                                  "kafka.client.id=file\n");
    char *env[] = {"CXSTREAM_NPS_WINDOW_DAYS=200", "CXSTREAM_CAMPAIGN_WAIT_DAYS=200", "CXSTREAM_KAFKA_CLIENT_ID=env",
                   NULL};
    cr_assert_eq(cx_config_load_file(cfg, path, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_config_load_env(cfg, env, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(cx_config_set_kv(cfg, "campaign.wait_days=300", "--set", err, sizeof err), CX_OK, "%s", err);
    cr_expect_eq(cfg->clv_horizon_days, 365, "default");
    cr_expect_eq(cfg->rfm_window_days, 100, "file over default");
    cr_expect_eq(cfg->nps_window_days, 200, "env over file");
    cr_expect_eq(cfg->campaign_wait_days, 300, "--set over env");
    cr_expect_str_eq(cx_config_kafka_value(cfg, "client.id"), "env");
}

/* ---- cross-key checks and text */

Test(config, validate_refuses_two_keys_with_the_same_topic) {
    cr_expect_eq(set("topic.dlq", "cx.play"), CX_OK);
    cr_expect_eq(cx_config_validate(cfg, err, sizeof err), CX_ERR_CONFIG);
    cr_expect_str_eq(err, "topic.play and topic.dlq: both are 'cx.play'; every topic must be distinct");
}

Test(config, get_text_reports_effective_values_and_null_for_unknown) {
    cr_expect_str_eq(text("rfm.window_days"), "365");
    cr_expect_str_eq(text("input.min_ts"), "631152000000");
    cr_expect_str_eq(text("bgnbd.r"), "0.243");
    cr_expect_str_eq(text("rfm.r_days"), "7,30,90,180");
    cr_expect_str_eq(text("processing.guarantee"), "at_least_once");
    cr_expect_str_eq(text("enriched.enabled"), "true");
    cr_expect_str_eq(text("rfm.segments"),
                     "Champions:R>=4,F>=4,M>=4;Cannot Lose Them:R<=2,F>=4,M>=4;At Risk:R<=2,F>=3;"
                     "Loyal:R>=3,F>=4;Potential Loyalist:R>=4,F=2-3;New:R=5,F=1;Promising:R=4,F=1;"
                     "Need Attention:R=3,F=2-3;About To Sleep:R=3,F=1;Hibernating:R=2,F<=2;Lost:R=1,F<=2");
    cr_expect_null(text("no.such.key"));
    char tiny[4];
    cr_expect_str_eq(cx_config_get_text(cfg, "topic.play", tiny, sizeof tiny), "cx.", "truncated, terminated");
}

/* ---- the reference document */

Test(config, docs_configuration_md_equals_generated_reference) {
    char *gen = NULL;
    size_t gen_len = 0;
    FILE *mem = open_memstream(&gen, &gen_len);
    cr_assert_not_null(mem);
    cr_assert_eq(cx_config_write_reference(mem), CX_OK);
    fclose(mem);
    const char *src = getenv("CX_SOURCE_DIR") ? getenv("CX_SOURCE_DIR") : CX_SOURCE_DIR;
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/configuration.md", src);
    const char *regen = getenv("CX_REGEN_DOCS");
    if (regen && strcmp(regen, "1") == 0) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "cannot write %s", path);
        fwrite(gen, 1, gen_len, f);
        cr_assert_eq(fclose(f), 0);
    }
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s missing: run tools/gen_config_doc.sh", path);
    char *doc = malloc(gen_len + 2);
    size_t got = fread(doc, 1, gen_len + 1, f);
    fclose(f);
    bool same = got == gen_len && memcmp(doc, gen, gen_len) == 0;
    free(doc);
    free(gen);
    cr_expect(same, "%s differs from cx_config_write_reference(): run tools/gen_config_doc.sh", path);
    for (size_t i = 0; i < cx_config_key_count(); i++)
        cr_expect_not_null(cx_config_key_name(i));
}
