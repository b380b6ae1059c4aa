/* The rule-evaluation benchmark: a program's 20 earn rules, compiled once as
 * POST /v1/rules compiles them, evaluated with ly_rules_eval against 5-item
 * baskets on one thread for SECONDS seconds. No store, no HTTP, no JSON: the
 * part of a purchase that grows with the number of rules.
 *
 * Usage: bench_rules [SECONDS] [-v]
 *
 * The baskets take turns among eight events (weekday and weekend, morning and
 * afternoon, store, app and web, members of four tiers with and without a
 * card) read in America/New_York, so that different rules match from one
 * basket to the next as they would in a day's purchases. Before timing, each
 * event's total points and credit are checked against the figures worked out
 * by hand below (-v prints every rule's outcome). Prints on stdout
 *   baskets=N seconds=S baskets_per_s=R rules=20 items=5 rule_evals_per_s=E
 * where E = R x 20, and exits 1 when a rule does not compile or an event does
 * not give what it should. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loyal/error.h"
#include "loyal/expr.h"
#include "loyal/rules.h"
#include "loyal/timeutil.h"
#include "loyal/tz.h"

/* A realistic program: base earn, day-part and category bonuses, card
 * cashback, tier multipliers (last), windows, an exclusive promotion, and
 * rules for other events that a purchase passes over. */
static const char *const rule_src[] = {
    "{\"id\": \"base\", \"on\": \"purchase\","
    " \"effect\": {\"points_per\": {\"points\": 1, \"per_minor\": 100}}}",

    "{\"id\": \"weekend-x2\", \"on\": \"purchase\", \"priority\": 10,"
    " \"when\": \"weekday(event.occurred_at) >= 6\", \"effect\": {\"multiply\": \"2\"}}",

    "{\"id\": \"coffee-morning-x3\", \"on\": \"purchase\", \"priority\": 20,"
    " \"when\": \"hour(event.occurred_at) < 11\","
    " \"items\": \"item.category == \\\"coffee\\\"\", \"effect\": {\"multiply\": \"3\"}}",

    "{\"id\": \"card-cashback-2\", \"on\": \"purchase\","
    " \"when\": \"member.attributes.card == \\\"classic\\\"\","
    " \"effect\": {\"cashback_percent\": \"2\"}}",

    "{\"id\": \"card-cashback-5\", \"on\": \"purchase\","
    " \"when\": \"member.attributes.card == \\\"premium\\\"\","
    " \"effect\": {\"cashback_percent\": \"5\"},"
    " \"cap\": {\"credit\": 2500, \"per\": \"member\", \"period\": \"month\"}}",

    "{\"id\": \"bakery-2x-rate\", \"on\": \"purchase\", \"priority\": 5,"
    " \"items\": \"item.category == \\\"bakery\\\"\","
    " \"effect\": {\"points_per\": {\"points\": 1, \"per_minor\": 100}}}",

    "{\"id\": \"produce-fixed\", \"on\": \"purchase\","
    " \"items\": \"item.category == \\\"produce\\\" && item.amount >= 400\","
    " \"effect\": {\"points\": 25}}",

    "{\"id\": \"wine-club\", \"on\": \"purchase\","
    " \"when\": \"has_tag(member.tags, \\\"wine_club\\\")\","
    " \"items\": \"\\\"alcohol\\\" in item.tags\","
    " \"effect\": {\"points_per\": {\"points\": 3, \"per_minor\": 100, \"rounding\": "
    "\"nearest\"}}}",

    "{\"id\": \"tier-silver\", \"on\": \"purchase\", \"priority\": 100,"
    " \"when\": \"member.tier == \\\"silver\\\"\", \"effect\": {\"multiply\": \"1.25\"}}",

    "{\"id\": \"tier-gold\", \"on\": \"purchase\", \"priority\": 100,"
    " \"when\": \"member.tier == \\\"gold\\\"\", \"effect\": {\"multiply\": \"1.5\"}}",

    "{\"id\": \"tier-platinum\", \"on\": \"purchase\", \"priority\": 100,"
    " \"when\": \"member.tier == \\\"platinum\\\"\", \"effect\": {\"multiply\": \"2\"}}",

    "{\"id\": \"review\", \"on\": \"custom:review\", \"effect\": {\"points\": 50},"
    " \"cap\": {\"count\": 1, \"per\": \"member\", \"period\": \"day\"}}",

    "{\"id\": \"winter-app-x2\", \"on\": \"purchase\", \"priority\": 50, \"stack\": false,"
    " \"when\": \"event.channel == \\\"app\\\"\", \"effect\": {\"multiply\": \"2\"},"
    " \"active_from\": \"2027-01-01T00:00:00-05:00\","
    " \"active_to\": \"2027-03-31T23:59:59-04:00\"}",

    "{\"id\": \"winter-web-x1.5\", \"on\": \"purchase\", \"priority\": 40, \"stack\": false,"
    " \"when\": \"event.channel == \\\"web\\\" || event.channel == \\\"app\\\"\","
    " \"effect\": {\"multiply\": \"1.5\"},"
    " \"active_from\": \"2027-01-01T00:00:00-05:00\","
    " \"active_to\": \"2027-03-31T23:59:59-04:00\"}",

    "{\"id\": \"summer-bonus\", \"on\": \"purchase\", \"effect\": {\"points\": 100},"
    " \"active_from\": \"2027-06-01T00:00:00-04:00\","
    " \"active_to\": \"2027-08-31T23:59:59-04:00\"}",

    "{\"id\": \"big-basket\", \"on\": \"purchase\", \"when\": \"event.amount >= 5000\","
    " \"effect\": {\"points\": 200},"
    " \"cap\": {\"count\": 1, \"per\": \"member\", \"period\": \"week\"}}",

    "{\"id\": \"first-purchase\", \"on\": \"purchase\","
    " \"when\": \"member.purchase_count == 0\", \"effect\": {\"points\": 500}}",

    "{\"id\": \"lapsed-back\", \"on\": \"purchase\","
    " \"when\": \"member.days_since_last_purchase > 90 && now - member.created_at > 365d\","
    " \"effect\": {\"points\": 300}}",

    "{\"id\": \"birthday-x2\", \"on\": \"purchase\", \"priority\": 30,"
    " \"when\": \"is_birthday(member.birthdate, event.occurred_at)\","
    " \"effect\": {\"multiply\": \"2\"}}",

    "{\"id\": \"acme-partner\", \"on\": \"purchase\","
    " \"when\": \"event.store in [\\\"S-001\\\", \\\"S-002\\\", \\\"WEB\\\"]\","
    " \"items\": \"starts_with(item.sku, \\\"ACME-\\\")\","
    " \"effect\": {\"points_per\": {\"points\": 5, \"per_minor\": 100}},"
    " \"cap\": {\"points\": 100000, \"per\": \"rule\", \"period\": \"month\"}}",
};
#define NRULES (sizeof rule_src / sizeof rule_src[0])

static const char *const hot[] = {"hot", "fair_trade"};
static const char *const alcohol[] = {"alcohol", "imported"};

/* 900 + 650 + 450 + 1899 + 599 = 4498 */
static const ly_expr_item basket[] = {
    {"COF-250", "coffee", 2, 450, 900, hot, 2},   {"BAK-CRS", "bakery", 2, 325, 650, NULL, 0},
    {"PRD-APL", "produce", 6, 75, 450, NULL, 0},  {"WIN-RED", "wine", 1, 1899, 1899, alcohol, 2},
    {"ACME-CRL", "cereal", 1, 599, 599, NULL, 0},
};
#define NITEMS (sizeof basket / sizeof basket[0])
#define AMOUNT 4498

static const char *const card_name[] = {"card"};
static const char *const cards[][1] = {{"classic"}, {"premium"}, {"none"}};
static const char *const club_tags[] = {"newsletter", "wine_club"};
static const char *const plain_tags[] = {"newsletter"};

/* One purchase: local times in New York, and what the rules give in all,
 * worked out by hand. The base rule's 44 points go to the items in
 * proportion to their amounts, the units left to the largest remainders:
 * coffee 9, bakery 6, produce 4, wine 19, cereal 6. Fixed points belong to
 * the event. Then every rule in order: priority 0 (by id), bakery 5,
 * weekend 10, coffee 20, birthday 30, the exclusive web 40 and app 50,
 * tiers 100. */
static const struct variant {
    const char *at, *channel, *store, *tier, *card, *birthdate;
    int wine_club;
    int64_t purchase_count, days_since_last;
    int64_t points, credit;
} variants[] = {
    /* Wednesday morning in a partner store: acme 29 (5 per 100 of 599), base
     * 44, produce 25, bakery 6, coffee x3 +18 = 122; gold x1.5 +61 = 183;
     * 2% of 4498 = 89 */
    {"2027-01-06T09:30:00-05:00", "store", "S-001", "gold", "classic", "1990-05-17", 0, 12, 3, 183,
     89},
    /* Saturday afternoon, a wine club member: acme 29, base 44, produce 25,
     * wine 57 (3 per 100 of 1899, nearest), bakery 6 = 161; weekend +161;
     * silver x1.25 +80 = 402; 5% of 4498 = 224 */
    {"2027-01-09T14:00:00-05:00", "store", "S-002", "silver", "premium", "1985-11-30", 1, 40, 1,
     402, 224},
    /* Tuesday morning in the app: base 44, produce 25, bakery 6, coffee +18 =
     * 93; app x2 +93 (web x1.5 set aside); platinum x2 +186 = 372 */
    {"2027-01-12T08:15:00-05:00", "app", "APP", "platinum", "none", "1979-03-02", 0, 250, 2, 372,
     0},
    /* Thursday evening on the web, a first purchase: acme 29, base 44, first
     * 500, produce 25, bakery 6 = 604; web x1.5 +302 = 906 (no multiplier for
     * bronze); 89 credit */
    {"2027-01-14T19:45:00-05:00", "web", "WEB", "bronze", "classic", "", 0, 0, 0, 906, 89},
    /* Sunday morning, a birthday: 104; weekend +104; coffee +36; birthday
     * +244; gold +244 = 732 */
    {"2027-01-17T10:00:00-05:00", "store", "S-001", "gold", "none", "2001-01-17", 0, 7, 5, 732, 0},
    /* Monday noon outside the partner stores, a lapsed member back: base 44,
     * card 224 credit, lapsed 300, produce 25, wine 57, bakery 6 = 432;
     * silver +108 = 540 */
    {"2027-01-18T12:00:00-05:00", "store", "S-777", "silver", "premium", "1990-05-17", 1, 3, 120,
     540, 224},
    /* Friday early in the app: base 44, produce 25, wine 57, bakery 6, coffee
     * +18 = 150; app +150; platinum +300 = 600; 89 credit */
    {"2027-01-22T07:00:00-05:00", "app", "APP", "platinum", "classic", "1995-07-04", 1, 99, 1, 600,
     89},
    /* Saturday night on the web, a birthday: 104; weekend +104; birthday
     * +208; web +208; gold +312 = 936; 224 credit */
    {"2027-01-23T21:00:00-05:00", "web", "WEB", "gold", "premium", "1970-01-23", 0, 18, 4, 936,
     224},
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

static ly_rule_event events[NVARIANTS];

static void die(const char *what)
{
    fprintf(stderr, "bench_rules: %s\n", what);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_events(const ly_tz *tz)
{
    for (size_t v = 0; v < NVARIANTS; v++) {
        const struct variant *s = &variants[v];
        ly_rule_event *ev = &events[v];
        int64_t t;
        if (ly_time_parse(s->at, &t) != 0)
            die("bad time in the variants");
        const char *const *card = cards[0];
        for (size_t c = 0; c < sizeof cards / sizeof cards[0]; c++)
            if (strcmp(cards[c][0], s->card) == 0)
                card = cards[c];
        ev->type = "purchase";
        ev->quiet = 1; /* as events are evaluated; only simulations explain */
        ev->occurred_at = t;
        ev->amount = AMOUNT;
        ev->items = basket;
        ev->nitems = NITEMS;
        ev->ctx = (ly_expr_ctx){
            .event_type = "purchase",
            .event_currency = "USD",
            .event_channel = s->channel,
            .event_store = s->store,
            .event_amount = AMOUNT,
            .event_occurred_at = t,
            .member_tier = s->tier,
            .member_status = "active",
            .member_birthdate = s->birthdate,
            .member_created_at = t - 400 * 86400000LL,
            .member_lifetime_spend = 250000,
            .member_purchase_count = s->purchase_count,
            .member_days_since_last_purchase = s->days_since_last,
            .member_attr_names = card_name,
            .member_attr_values = card,
            .nmember_attrs = 1,
            .member_tags = s->wine_club ? club_tags : plain_tags,
            .nmember_tags = s->wine_club ? 2 : 1,
            .now = t,
            .tz = tz,
        };
    }
}

int main(int argc, char **argv)
{
    double seconds = 3;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else if ((seconds = atof(argv[i])) <= 0)
            die("usage: bench_rules [SECONDS] [-v]");
    }
    const ly_tz *tz;
    if (ly_tz_get("America/New_York", &tz) != 0)
        die("no America/New_York zone (install tzdata)");

    ly_rule *rules[NRULES];
    for (size_t i = 0; i < NRULES; i++) {
        json_error_t je;
        json_t *j = json_loads(rule_src[i], JSON_REJECT_DUPLICATES, &je);
        ly_error err = {0};
        if (!j)
            die(je.text);
        if (ly_rule_compile(j, &rules[i], NULL, &err) != 0) {
            fprintf(stderr, "bench_rules: rule %zu: %s %s: %s\n", i, err.code, err.field,
                    err.message);
            return 1;
        }
        json_decref(j);
    }
    ly_rules_sort(rules, NRULES);
    make_events(tz);

    void *scratch = malloc(ly_rules_scratch_size(NRULES, NITEMS));
    ly_rule_outcome out[NRULES];
    if (!scratch)
        die("out of memory");

    /* What each event gives, checked before anything is timed. */
    int wrong = 0;
    for (size_t v = 0; v < NVARIANTS; v++) {
        ly_error err = {0};
        if (ly_rules_eval(rules, NRULES, &events[v], scratch, out, &err) != 0) {
            fprintf(stderr, "bench_rules: event %zu: %s %s: %s\n", v, err.code, err.field,
                    err.message);
            return 1;
        }
        int64_t points = 0, credit = 0;
        for (size_t i = 0; i < NRULES; i++) {
            points += out[i].points;
            credit += out[i].credit;
            if (verbose && out[i].considered)
                fprintf(stderr, "event %zu %-18s %s points %lld credit %lld eligible %lld %s\n", v,
                        out[i].rule->id, out[i].applied ? "applied" : "-      ",
                        (long long)out[i].points, (long long)out[i].credit,
                        (long long)out[i].eligible_amount, out[i].reason);
        }
        if (verbose)
            fprintf(stderr, "event %zu: %lld points, %lld credit\n", v, (long long)points,
                    (long long)credit);
        if (points != variants[v].points || credit != variants[v].credit) {
            fprintf(stderr,
                    "bench_rules: event %zu gave %lld points and %lld credit, not %lld and %lld\n",
                    v, (long long)points, (long long)credit, (long long)variants[v].points,
                    (long long)variants[v].credit);
            wrong = 1;
        }
    }
    if (wrong)
        return 1;

    /* The timed loop: one basket after another, the clock read every 1024. */
    uint64_t baskets = 0;
    int64_t sum = 0;
    double start = now_s(), elapsed;
    do {
        for (int k = 0; k < 1024; k++) {
            const ly_rule_event *ev = &events[baskets++ % NVARIANTS];
            if (ly_rules_eval(rules, NRULES, ev, scratch, out, NULL) != 0)
                die("an evaluation failed");
            sum += out[0].points;
        }
        elapsed = now_s() - start;
    } while (elapsed < seconds);

    double per_s = (double)baskets / elapsed;
    printf("baskets=%llu seconds=%.3f baskets_per_s=%.0f rules=%zu items=%zu "
           "rule_evals_per_s=%.0f\n",
           (unsigned long long)baskets, elapsed, per_s, NRULES, NITEMS, per_s * (double)NRULES);
    fprintf(stderr,
            "bench_rules: %zu rules against a %zu-item basket: %.0f baskets/s, %.0f rule "
            "evaluations/s on one thread (checksum %lld)\n",
            NRULES, NITEMS, per_s, per_s * (double)NRULES, (long long)sum);
    for (size_t i = 0; i < NRULES; i++)
        ly_rule_free(rules[i]);
    free(scratch);
    return 0;
}
