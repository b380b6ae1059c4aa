/* Inside the engine: a program's compiled rules, shared between requests,
 * and the step that turns an event into points and credit by them. */
#ifndef LOYAL_ENGINE_RULES_INT_H
#define LOYAL_ENGINE_RULES_INT_H

#include "engine/ledger_int.h"
#include "loyal/rules.h"

/* Every live rule of a program at one version of the program (its
 * updated_at, which every rule change moves), compiled and sorted.
 * Immutable once built; shared by reference count. */
typedef struct ly__ruleset {
    int refs;
    int64_t program_id, updated_at;
    ly_rule **rules;
    size_t n;
    int purchase_rules; /* rules on "purchase": the base rate no longer applies */
    int signup_rules, birthday_rules;
} ly__ruleset;

/* The program's rules as of prog (ly__prog_load), shared: release with
 * ly__ruleset_release. */
int ly__ruleset_get(ly_conn *c, ly_arena *a, const ly__prog *prog, ly__ruleset **out,
                    ly_error *err);
void ly__ruleset_release(ly__ruleset *rs);
/* Whether a rule on `type` exists. */
int ly__ruleset_has(const ly__ruleset *rs, const char *type);

/* Moves the program's updated_at on, so that cached settings and rules are
 * read again. */
int ly__program_touch(ly_conn *c, ly_arena *a, int64_t program_id, ly_error *err);

/* An event as the rules evaluate it. */
typedef struct ly__earn_in {
    const char *type;
    int64_t occurred_at;
    int64_t amount;
    const json_t *body;      /* the event's JSON (channel, store, items, attributes) or NULL */
    const ly_member *member; /* NULL: no member (a simulated enrolment) */
    int simulate;
} ly__earn_in;

/* What an event earned: per rule (considered ones), after caps. */
typedef struct ly__earn_rule {
    ly_rule_outcome o;
    int64_t points, credit; /* granted, after caps */
    int capped;
} ly__earn_rule;

typedef struct ly__earned {
    int64_t points, credit;
    int base; /* the program's base rate applied (no rule on purchase) */
    ly__earn_rule *rules;
    size_t n;
} ly__earned;

/* Evaluates the rules for the event, applies caps (recording their usage
 * unless simulating), and sums up. */
int ly__earn(ly_conn *c, ly_arena *a, const ly__prog *prog, const ly__ruleset *rs,
             const ly__earn_in *in, ly__earned *out, ly_error *err);
/* Records what each rule gave event event_id, once its row is written. */
int ly__earned_record(ly_conn *c, const ly__prog *prog, int64_t event_id, const ly__earned *e,
                      ly_error *err);

/* A return of part of a purchase: the share of what each rule gave that it
 * takes back, freed from the rules' caps. total_after is the purchase's
 * amount returned once this return is done. */
int ly__earn_reverse(ly_conn *c, ly_arena *a, const ly__prog *prog, const ly_event *purchase,
                     int64_t total_after, ly_error *err);

/* Grants the program's signup rules to a member just enrolled, inside the
 * enrolment's transaction. */
int ly__signup_earn(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id, int64_t at,
                    ly_error *err);

/* The applied rules of an answer: [{rule_id, version, points, credit}]. */
void ly__earned_write_applied(const ly__earned *e, ly_jw *w);
/* Every rule considered, for a simulation. */
void ly__earned_write_considered(const ly__earned *e, ly_jw *w);

#endif
