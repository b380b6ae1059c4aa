/* Tests for src/core/rules.c: checking and compiling a rule's JSON (every
 * field, its error code and the field it names), decimals, evaluating sets of
 * rules against events (each effect, items filters, exact spreading of points
 * over items, exclusive rules, windows, run-time errors), cap periods in UTC
 * and across clock changes, and caps, table by table. Rule JSON in the tables
 * is written with ' for " (\\' for a quote inside a string). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loyal/error.h"
#include "loyal/expr.h"
#include "loyal/ledger.h"
#include "loyal/rules.h"
#include "loyal/timeutil.h"
#include "loyal/tz.h"

#define MAX53      LY_LEDGER_MAX
#define S53        "9007199254740992"
#define S53P1      "9007199254740993"
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int64_t at(const char *rfc3339)
{
    int64_t ms;
    if (ly_time_parse(rfc3339, &ms) != 0)
        fail_msg("bad time in test table: %s", rfc3339);
    return ms;
}

/* ---- rule JSON ---- */

/* src with ' turned into ", parsed. When src is not a JSON value by itself it
 * is a list of members, laid over base. */
static json_t *rule_json(const char *src, const char *base)
{
    char *s = malloc(strlen(src) + 3);
    assert_non_null(s);
    strcpy(s, src);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t je;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    int members = !j && base;
    if (members) {
        sprintf(s, "{%s}", src);
        for (char *p = s; *p; p++)
            if (*p == '\'')
                *p = '"';
        j = json_loads(s, JSON_REJECT_DUPLICATES, &je);
    }
    if (!j)
        fail_msg("bad JSON in test table: %s (%s)", s, je.text);
    free(s);
    if (members) {
        json_t *b = rule_json(base, NULL);
        json_object_update(b, j);
        json_decref(j);
        j = b;
    }
    return j;
}

static const char *const compile_base = "{'id':'r','on':'purchase','effect':{'points':1}}";

static ly_rule *compile_ok(const char *src, const char *base)
{
    json_t *j = rule_json(src, base);
    ly_rule *r = NULL;
    ly_error err = {0};
    int rc = ly_rule_compile(j, &r, NULL, &err);
    if (rc != 0 || !r)
        fail_msg("compile(%s) = %d: %s %s %s", src, rc, err.code, err.field, err.message);
    json_decref(j);
    return r;
}

/* ---- compile: errors ---- */

static const struct cerr {
    const char *src;
    int rc;
    const char *code, *field;
    const char *msg; /* the message's beginning; NULL: not checked */
} cerrs[] = {
    /* the shape of the body */
    {"[]", LY_EINVAL, "invalid_type", "", "a rule is a JSON object"},
    {"'rule'", LY_EINVAL, "invalid_type", "", NULL},
    {"null", LY_EINVAL, "invalid_type", "", NULL},
    {"{}", LY_EINVAL, "missing_field", "id", NULL},
    {"{'on':'purchase','effect':{'points':1}}", LY_EINVAL, "missing_field", "id", NULL},
    {"{'id':'r','effect':{'points':1}}", LY_EINVAL, "missing_field", "on", NULL},
    {"{'id':'r','on':'purchase'}", LY_EINVAL, "missing_field", "effect", NULL},
    {"'bonus':1", LY_EINVAL, "unknown_field", "bonus", NULL},
    {"'Id':'r'", LY_EINVAL, "unknown_field", "Id", NULL},
    {"'cap_points':5", LY_EINVAL, "unknown_field", "cap_points", NULL},
    /* id */
    {"'id':1", LY_EINVAL, "invalid_type", "id", NULL},
    {"'id':null", LY_EINVAL, "invalid_type", "id", NULL},
    {"'id':''", LY_EINVAL, "invalid_value", "id", "id is 1 to 64"},
    {"'id':'a b'", LY_EINVAL, "invalid_value", "id", NULL},
    {"'id':'a/b'", LY_EINVAL, "invalid_value", "id", NULL},
    {"'id':'caf\xc3\xa9'", LY_EINVAL, "invalid_value", "id", NULL},
    {"'id':'r\\n'", LY_EINVAL, "invalid_value", "id", NULL},
    {"'id':'a*'", LY_EINVAL, "invalid_value", "id", NULL},
    {"'id':'x1234567890123456789012345678901234567890123456789012345678901234'", LY_EINVAL,
     "too_long", "id", NULL},
    /* name, description */
    {"'name':5", LY_EINVAL, "invalid_type", "name", NULL},
    {"'description':[]", LY_EINVAL, "invalid_type", "description", NULL},
    /* on */
    {"'on':1", LY_EINVAL, "invalid_type", "on", NULL},
    {"'on':null", LY_EINVAL, "invalid_type", "on", NULL},
    {"'on':''", LY_EINVAL, "invalid_value", "on", "on must be purchase, return, signup"},
    {"'on':'purchases'", LY_EINVAL, "invalid_value", "on", NULL},
    {"'on':'Purchase'", LY_EINVAL, "invalid_value", "on", NULL},
    {"'on':'refund'", LY_EINVAL, "invalid_value", "on", NULL},
    {"'on':'custom:'", LY_EINVAL, "invalid_value", "on", NULL},
    {"'on':'custom'", LY_EINVAL, "invalid_value", "on", NULL},
    {"'on':'custom:a b'", LY_EINVAL, "invalid_value", "on", NULL},
    {"'on':'custom:a.b'", LY_EINVAL, "invalid_value", "on", NULL},
    {"'on':'custom:a:b'", LY_EINVAL, "invalid_value", "on", NULL},
    {"'on':' purchase'", LY_EINVAL, "invalid_value", "on", NULL},
    {"'on':'custom:123456789012345678901234567890123456789012345678901234567890123456'", LY_EINVAL,
     "too_long", "on", NULL},
    /* when, items: types */
    {"'when':1", LY_EINVAL, "invalid_type", "when", NULL},
    {"'when':true", LY_EINVAL, "invalid_type", "when", NULL},
    {"'items':['coffee']", LY_EINVAL, "invalid_type", "items", NULL},
    /* effect: shape */
    {"'effect':null", LY_EINVAL, "invalid_type", "effect", NULL},
    {"'effect':[]", LY_EINVAL, "invalid_type", "effect", NULL},
    {"'effect':'points'", LY_EINVAL, "invalid_type", "effect", NULL},
    {"'effect':{}", LY_EINVAL, "invalid_value", "effect", "effect has exactly one of"},
    {"'effect':{'points':1,'multiply':'2'}", LY_EINVAL, "invalid_value", "effect", NULL},
    {"'effect':{'points_per':{'points':1},'points':5}", LY_EINVAL, "invalid_value", "effect", NULL},
    {"'effect':{'cashback_percent':'2','grant_reward':'x'}", LY_EINVAL, "invalid_value", "effect",
     NULL},
    {"'effect':{'bonus':1}", LY_EINVAL, "unknown_field", "effect.bonus", NULL},
    {"'effect':{'points':1,'bonus':1}", LY_EINVAL, "unknown_field", "effect.bonus", NULL},
    {"'effect':{'Points':1}", LY_EINVAL, "unknown_field", "effect.Points", NULL},
    /* points_per */
    {"'effect':{'points_per':1}", LY_EINVAL, "invalid_type", "effect.points_per", NULL},
    {"'effect':{'points_per':null}", LY_EINVAL, "invalid_type", "effect.points_per", NULL},
    {"'effect':{'points_per':{}}", LY_EINVAL, "missing_field", "effect.points_per.points", NULL},
    {"'effect':{'points_per':{'per_minor':100}}", LY_EINVAL, "missing_field",
     "effect.points_per.points", NULL},
    {"'effect':{'points_per':{'points':0}}", LY_EINVAL, "invalid_value", "effect.points_per.points",
     "effect.points_per.points must be from 1 to 2^53"},
    {"'effect':{'points_per':{'points':-1}}", LY_EINVAL, "invalid_value",
     "effect.points_per.points", NULL},
    {"'effect':{'points_per':{'points':" S53P1 "}}", LY_EINVAL, "invalid_value",
     "effect.points_per.points", NULL},
    {"'effect':{'points_per':{'points':'1'}}", LY_EINVAL, "invalid_type",
     "effect.points_per.points", NULL},
    {"'effect':{'points_per':{'points':1.5}}", LY_EINVAL, "invalid_type",
     "effect.points_per.points", NULL},
    {"'effect':{'points_per':{'points':1.0}}", LY_EINVAL, "invalid_type",
     "effect.points_per.points", NULL},
    {"'effect':{'points_per':{'points':1,'per_minor':0}}", LY_EINVAL, "invalid_value",
     "effect.points_per.per_minor", "effect.points_per.per_minor must be from 1 to 2^53"},
    {"'effect':{'points_per':{'points':1,'per_minor':-100}}", LY_EINVAL, "invalid_value",
     "effect.points_per.per_minor", NULL},
    {"'effect':{'points_per':{'points':1,'per_minor':" S53P1 "}}", LY_EINVAL, "invalid_value",
     "effect.points_per.per_minor", NULL},
    {"'effect':{'points_per':{'points':1,'per_minor':'100'}}", LY_EINVAL, "invalid_type",
     "effect.points_per.per_minor", NULL},
    {"'effect':{'points_per':{'points':1,'per_minor':null}}", LY_EINVAL, "invalid_type",
     "effect.points_per.per_minor", NULL},
    {"'effect':{'points_per':{'points':1,'rounding':'floor'}}", LY_EINVAL, "invalid_value",
     "effect.points_per.rounding", "effect.points_per.rounding must be down, nearest or up"},
    {"'effect':{'points_per':{'points':1,'rounding':'Down'}}", LY_EINVAL, "invalid_value",
     "effect.points_per.rounding", NULL},
    {"'effect':{'points_per':{'points':1,'rounding':''}}", LY_EINVAL, "invalid_value",
     "effect.points_per.rounding", NULL},
    {"'effect':{'points_per':{'points':1,'rounding':'half_up'}}", LY_EINVAL, "invalid_value",
     "effect.points_per.rounding", NULL},
    {"'effect':{'points_per':{'points':1,'rounding':'nearest_even_always'}}", LY_EINVAL, "too_long",
     "effect.points_per.rounding", NULL},
    {"'effect':{'points_per':{'points':1,'rounding':1}}", LY_EINVAL, "invalid_type",
     "effect.points_per.rounding", NULL},
    {"'effect':{'points_per':{'points':1,'per':100}}", LY_EINVAL, "unknown_field",
     "effect.points_per.per", NULL},
    /* points */
    {"'effect':{'points':0}", LY_EINVAL, "invalid_value", "effect.points",
     "effect.points must be from 1 to 2^53"},
    {"'effect':{'points':-5}", LY_EINVAL, "invalid_value", "effect.points", NULL},
    {"'effect':{'points':" S53P1 "}", LY_EINVAL, "invalid_value", "effect.points", NULL},
    {"'effect':{'points':'5'}", LY_EINVAL, "invalid_type", "effect.points", NULL},
    {"'effect':{'points':5.5}", LY_EINVAL, "invalid_type", "effect.points", NULL},
    {"'effect':{'points':null}", LY_EINVAL, "invalid_type", "effect.points", NULL},
    {"'effect':{'points':true}", LY_EINVAL, "invalid_type", "effect.points", NULL},
    /* multiply: "1" to "1000", at most 4 decimals, a string or an integer */
    {"'effect':{'multiply':'0.5'}", LY_EINVAL, "invalid_value", "effect.multiply",
     "effect.multiply must be from \"1\" to \"1000\""},
    {"'effect':{'multiply':'0.9999'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'0'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':0}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'1000.0001'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'1001'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':1001}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'0.00001'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'1.00001'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'1.50000'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'-2'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':-2}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'+2'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':''}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'two'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'2x'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'1,5'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'2e0'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':' 2'}", LY_EINVAL, "invalid_value", "effect.multiply", NULL},
    {"'effect':{'multiply':'99999999999999999999'}", LY_EINVAL, "invalid_value", "effect.multiply",
     NULL},
    {"'effect':{'multiply':9223372036854775807}", LY_EINVAL, "invalid_value", "effect.multiply",
     NULL},
    {"'effect':{'multiply':1.5}", LY_EINVAL, "invalid_type", "effect.multiply",
     "effect.multiply must be a decimal number as a string"},
    {"'effect':{'multiply':2.0}", LY_EINVAL, "invalid_type", "effect.multiply", NULL},
    {"'effect':{'multiply':true}", LY_EINVAL, "invalid_type", "effect.multiply", NULL},
    {"'effect':{'multiply':['2']}", LY_EINVAL, "invalid_type", "effect.multiply", NULL},
    {"'effect':{'multiply':null}", LY_EINVAL, "invalid_type", "effect.multiply", NULL},
    /* cashback_percent: above "0" and at most "100" */
    {"'effect':{'cashback_percent':'0'}", LY_EINVAL, "invalid_value", "effect.cashback_percent",
     "effect.cashback_percent must be above \"0\""},
    {"'effect':{'cashback_percent':'0.0000'}", LY_EINVAL, "invalid_value",
     "effect.cashback_percent", NULL},
    {"'effect':{'cashback_percent':0}", LY_EINVAL, "invalid_value", "effect.cashback_percent",
     NULL},
    {"'effect':{'cashback_percent':'0.00001'}", LY_EINVAL, "invalid_value",
     "effect.cashback_percent", NULL},
    {"'effect':{'cashback_percent':'100.0001'}", LY_EINVAL, "invalid_value",
     "effect.cashback_percent", NULL},
    {"'effect':{'cashback_percent':101}", LY_EINVAL, "invalid_value", "effect.cashback_percent",
     NULL},
    {"'effect':{'cashback_percent':-5}", LY_EINVAL, "invalid_value", "effect.cashback_percent",
     NULL},
    {"'effect':{'cashback_percent':'-5'}", LY_EINVAL, "invalid_value", "effect.cashback_percent",
     NULL},
    {"'effect':{'cashback_percent':'5%'}", LY_EINVAL, "invalid_value", "effect.cashback_percent",
     NULL},
    {"'effect':{'cashback_percent':'.5'}", LY_EINVAL, "invalid_value", "effect.cashback_percent",
     NULL},
    {"'effect':{'cashback_percent':'5.'}", LY_EINVAL, "invalid_value", "effect.cashback_percent",
     NULL},
    {"'effect':{'cashback_percent':0.5}", LY_EINVAL, "invalid_type", "effect.cashback_percent",
     NULL},
    {"'effect':{'cashback_percent':{}}", LY_EINVAL, "invalid_type", "effect.cashback_percent",
     NULL},
    /* grant_reward */
    {"'effect':{'grant_reward':''}", LY_EINVAL, "invalid_value", "effect.grant_reward",
     "effect.grant_reward names a reward"},
    {"'effect':{'grant_reward':5}", LY_EINVAL, "invalid_type", "effect.grant_reward", NULL},
    {"'effect':{'grant_reward':null}", LY_EINVAL, "invalid_type", "effect.grant_reward", NULL},
    {"'effect':{'grant_reward':'x1234567890123456789012345678901234567890123456789012345678901234'"
     "}",
     LY_EINVAL, "too_long", "effect.grant_reward", NULL},
    /* cap, the object form */
    {"'cap':500", LY_EINVAL, "invalid_type", "cap", "cap must be an object"},
    {"'cap':'day'", LY_EINVAL, "invalid_type", "cap", NULL},
    {"'cap':true", LY_EINVAL, "invalid_type", "cap", NULL},
    {"'cap':{}", LY_EINVAL, "missing_field", "cap", "cap limits points, credit or count"},
    {"'cap':{'per':'member','period':'day'}", LY_EINVAL, "missing_field", "cap", NULL},
    {"'cap':{'points':0}", LY_EINVAL, "invalid_value", "cap.points",
     "cap.points must be from 1 to 2^53"},
    {"'cap':{'points':-1}", LY_EINVAL, "invalid_value", "cap.points", NULL},
    {"'cap':{'points':" S53P1 "}", LY_EINVAL, "invalid_value", "cap.points", NULL},
    {"'cap':{'points':'500'}", LY_EINVAL, "invalid_type", "cap.points", NULL},
    {"'cap':{'points':null}", LY_EINVAL, "invalid_type", "cap.points", NULL},
    {"'cap':{'count':0}", LY_EINVAL, "invalid_value", "cap.count", NULL},
    {"'cap':{'count':-3}", LY_EINVAL, "invalid_value", "cap.count", NULL},
    {"'cap':{'count':1.5}", LY_EINVAL, "invalid_type", "cap.count", NULL},
    {"'effect':{'cashback_percent':'2'},'cap':{'credit':0}", LY_EINVAL, "invalid_value",
     "cap.credit", NULL},
    {"'cap':{'points':5,'per':'store'}", LY_EINVAL, "invalid_value", "cap.per",
     "cap.per must be \"member\" or \"rule\""},
    {"'cap':{'points':5,'per':'Member'}", LY_EINVAL, "invalid_value", "cap.per", NULL},
    {"'cap':{'points':5,'per':''}", LY_EINVAL, "invalid_value", "cap.per", NULL},
    {"'cap':{'points':5,'per':1}", LY_EINVAL, "invalid_type", "cap.per", NULL},
    {"'cap':{'points':5,'per':'member-and-rule-too'}", LY_EINVAL, "too_long", "cap.per", NULL},
    {"'cap':{'points':5,'period':'hour'}", LY_EINVAL, "invalid_value", "cap.period",
     "cap.period must be day, week, month, year or lifetime"},
    {"'cap':{'points':5,'period':'Day'}", LY_EINVAL, "invalid_value", "cap.period", NULL},
    {"'cap':{'points':5,'period':'days'}", LY_EINVAL, "invalid_value", "cap.period", NULL},
    {"'cap':{'points':5,'period':'quarter'}", LY_EINVAL, "invalid_value", "cap.period", NULL},
    {"'cap':{'points':5,'period':''}", LY_EINVAL, "invalid_value", "cap.period", NULL},
    {"'cap':{'points':5,'period':7}", LY_EINVAL, "invalid_type", "cap.period", NULL},
    {"'cap':{'points':5,'period':null}", LY_EINVAL, "invalid_type", "cap.period", NULL},
    {"'cap':{'points':5,'max':1}", LY_EINVAL, "unknown_field", "cap.max", NULL},
    /* which kinds a cap may limit */
    {"'effect':{'cashback_percent':'2'},'cap':{'points':5}", LY_EINVAL, "invalid_value", "cap",
     "a cashback rule gives credit: cap its credit, not points"},
    {"'effect':{'cashback_percent':'2'},'cap':{'points':5,'credit':5}", LY_EINVAL, "invalid_value",
     "cap", NULL},
    {"'effect':{'points':5},'cap':{'credit':100}", LY_EINVAL, "invalid_value", "cap",
     "only a cashback rule gives credit: cap its points"},
    {"'effect':{'points_per':{'points':1}},'cap':{'credit':100}", LY_EINVAL, "invalid_value", "cap",
     NULL},
    {"'effect':{'multiply':'2'},'cap':{'credit':100,'count':1}", LY_EINVAL, "invalid_value", "cap",
     NULL},
    {"'effect':{'grant_reward':'mug'},'cap':{'credit':1}", LY_EINVAL, "invalid_value", "cap", NULL},
    /* cap, the array form */
    {"'cap':[{'count':1},{'count':2},{'count':3},{'count':4},{'count':5}]", LY_EINVAL,
     "invalid_value", "cap", "a rule has at most 4 caps"},
    {"'cap':[5]", LY_EINVAL, "invalid_type", "cap[0]", "cap[0] must be an object"},
    {"'cap':[null]", LY_EINVAL, "invalid_type", "cap[0]", NULL},
    {"'cap':[{}]", LY_EINVAL, "missing_field", "cap[0]", NULL},
    {"'cap':[{'points':5},{'points':0}]", LY_EINVAL, "invalid_value", "cap[1].points",
     "cap[1].points must be from 1 to 2^53"},
    {"'cap':[{'points':5},{'count':1,'per':'x'}]", LY_EINVAL, "invalid_value", "cap[1].per", NULL},
    {"'cap':[{'points':5},{'count':1},{'count':2,'period':'hour'}]", LY_EINVAL, "invalid_value",
     "cap[2].period", NULL},
    {"'cap':[{'points':5},{'count':1},{'count':2},{'count':3,'bad':1}]", LY_EINVAL, "unknown_field",
     "cap[3].bad", NULL},
    {"'effect':{'cashback_percent':'5'},'cap':[{'credit':500},{'points':5}]", LY_EINVAL,
     "invalid_value", "cap[1]", NULL},
    {"'cap':[{'credit':500}]", LY_EINVAL, "invalid_value", "cap[0]", NULL},
    {"'cap':[[]]", LY_EINVAL, "invalid_type", "cap[0]", NULL},
    /* active_from, active_to */
    {"'active_from':'2027-01-01'", LY_EINVAL, "invalid_value", "active_from",
     "active_from must be an RFC 3339 time"},
    {"'active_from':'2027-01-01 00:00:00Z'", LY_EINVAL, "invalid_value", "active_from", NULL},
    {"'active_from':'2027-13-01T00:00:00Z'", LY_EINVAL, "invalid_value", "active_from", NULL},
    {"'active_from':'2027-02-30T00:00:00Z'", LY_EINVAL, "invalid_value", "active_from", NULL},
    {"'active_from':'2027-01-01T00:00:00'", LY_EINVAL, "invalid_value", "active_from", NULL},
    {"'active_from':'tomorrow'", LY_EINVAL, "invalid_value", "active_from", NULL},
    {"'active_from':''", LY_EINVAL, "invalid_value", "active_from", NULL},
    {"'active_from':1798761600000", LY_EINVAL, "invalid_type", "active_from", NULL},
    {"'active_to':'2027-03-31T24:00:00Z'", LY_EINVAL, "invalid_value", "active_to",
     "active_to must be an RFC 3339 time"},
    {"'active_to':'2027-12-31T23:59:60Z'", LY_EINVAL, "invalid_value", "active_to", NULL},
    {"'active_to':false", LY_EINVAL, "invalid_type", "active_to", NULL},
    {"'active_from':'2027-02-01T00:00:00Z','active_to':'2027-01-31T23:59:59Z'", LY_EINVAL,
     "invalid_value", "active_to", "active_to must not be before active_from"},
    {"'active_from':'2027-02-01T00:00:00.001Z','active_to':'2027-02-01T00:00:00Z'", LY_EINVAL,
     "invalid_value", "active_to", NULL},
    {"'active_from':'2027-02-01T00:00:00-01:00','active_to':'2027-02-01T00:30:00Z'", LY_EINVAL,
     "invalid_value", "active_to", NULL},
    /* priority */
    {"'priority':1000001", LY_EINVAL, "invalid_value", "priority",
     "priority must be from -1000000 to 1000000"},
    {"'priority':-1000001", LY_EINVAL, "invalid_value", "priority", NULL},
    {"'priority':9223372036854775807", LY_EINVAL, "invalid_value", "priority", NULL},
    {"'priority':-9223372036854775808", LY_EINVAL, "invalid_value", "priority", NULL},
    {"'priority':'1'", LY_EINVAL, "invalid_type", "priority", NULL},
    {"'priority':1.0", LY_EINVAL, "invalid_type", "priority", NULL},
    {"'priority':null", LY_EINVAL, "invalid_type", "priority", NULL},
    /* stack, enabled */
    {"'stack':'false'", LY_EINVAL, "invalid_type", "stack", NULL},
    {"'stack':0", LY_EINVAL, "invalid_type", "stack", NULL},
    {"'stack':null", LY_EINVAL, "invalid_type", "stack", NULL},
    {"'enabled':1", LY_EINVAL, "invalid_type", "enabled", NULL},
    {"'enabled':'yes'", LY_EINVAL, "invalid_type", "enabled", NULL},
    {"'enabled':null", LY_EINVAL, "invalid_type", "enabled", NULL},
    /* expressions: refused with the compiler's code and "field:line:column: " */
    {"'when':'event.amount >'", LY_EREFUSED, "expression_error", "when", "when:1:15: "},
    {"'when':''", LY_EREFUSED, "expression_error", "when", "when:1:1: "},
    {"'when':'   '", LY_EREFUSED, "expression_error", "when", "when:1:4: "},
    {"'when':'(event.amount > 1'", LY_EREFUSED, "expression_error", "when", "when:1:18: "},
    {"'when':'event.channel == \\'store'", LY_EREFUSED, "expression_error", "when",
     "when:1:18: unterminated string"},
    {"'when':'1 < event.amount < 3'", LY_EREFUSED, "expression_error", "when",
     "when:1:18: comparisons do not chain"},
    {"'when':'event.amount > 1.5'", LY_EREFUSED, "expression_error", "when", "when:1:"},
    {"'when':'event.amount > 0 &&\\n  event.amout > 1'", LY_EREFUSED, "unknown_name", "when",
     "when:2:3: unknown name \\\"event.amout\\\""},
    {"'when':'event.amout > 1'", LY_EREFUSED, "unknown_name", "when",
     "when:1:1: unknown name \\\"event.amout\\\""},
    {"'when':'foo(now)'", LY_EREFUSED, "unknown_name", "when",
     "when:1:1: unknown function \\\"foo\\\""},
    {"'when':'item.category == \\'coffee\\''", LY_EREFUSED, "unknown_name", "when",
     "when:1:1: \\\"item.category\\\" cannot be used here"},
    {"'when':'event.amount > 0 && item.amount > 100'", LY_EREFUSED, "unknown_name", "when",
     "when:1:21: \\\"item.amount\\\" cannot be used here"},
    {"'when':'\\'coffee\\' in item.tags'", LY_EREFUSED, "unknown_name", "when",
     "when:1:13: \\\"item.tags\\\" cannot be used here"},
    {"'when':'event.amount == \\'100\\''", LY_EREFUSED, "type_error", "when",
     "when:1:14: cannot compare integer with string"},
    {"'when':'weekday(event.channel) > 5'", LY_EREFUSED, "type_error", "when",
     "when:1:9: argument 1 of weekday must be a time, found a string"},
    {"'when':'event.amount / 0 > 1'", LY_EREFUSED, "type_error", "when", "when:1:"},
    /* a `when` or `items` that is not a condition */
    {"'when':'event.amount'", LY_EREFUSED, "type_error", "when",
     "when:1:1: when must be a condition (true or false), found an integer"},
    {"'when':'event.channel'", LY_EREFUSED, "type_error", "when",
     "when:1:1: when must be a condition (true or false), found a string"},
    {"'when':'now'", LY_EREFUSED, "type_error", "when", "when:1:1: when must be a condition"},
    {"'when':'30d'", LY_EREFUSED, "type_error", "when", "when:1:1: when must be a condition"},
    {"'when':'member.tags'", LY_EREFUSED, "type_error", "when",
     "when:1:1: when must be a condition"},
    {"'when':'[1, 2]'", LY_EREFUSED, "type_error", "when", "when:1:1: when must be a condition"},
    {"'items':'item.amount'", LY_EREFUSED, "type_error", "items",
     "items:1:1: items must be a condition (true or false), found an integer"},
    {"'items':'item.category'", LY_EREFUSED, "type_error", "items",
     "items:1:1: items must be a condition (true or false), found a string"},
    {"'items':'item.categroy == \\'coffee\\''", LY_EREFUSED, "unknown_name", "items",
     "items:1:1: unknown name \\\"item.categroy\\\""},
    {"'items':'item.category == '", LY_EREFUSED, "expression_error", "items", "items:1:"},
    {"'items':'item.quantity >= \\'2\\''", LY_EREFUSED, "type_error", "items", "items:1:"},
    {"'items':'# a comment\\nitem.amount > 0 &&'", LY_EREFUSED, "expression_error", "items",
     "items:2:"},
    /* a valid `when` does not excuse a bad `items` */
    {"'when':'event.amount > 0','items':'item.sku'", LY_EREFUSED, "type_error", "items",
     "items:1:1: "},
};

static void test_compile_errors(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(cerrs); k++) {
        const struct cerr *c = &cerrs[k];
        json_t *j = rule_json(c->src, compile_base);
        ly_rule *r = (ly_rule *)&r;       /* must be reset to NULL */
        json_t *canon = (json_t *)&canon; /* must be reset to NULL */
        ly_error err;
        memset(&err, 0, sizeof err);
        int rc = ly_rule_compile(j, &r, &canon, &err);
        /* The table's messages are written with \" for a quote. */
        char want_msg[256] = "";
        if (c->msg) {
            size_t o = 0;
            for (const char *p = c->msg; *p && o + 1 < sizeof want_msg; p++)
                if (!(p[0] == '\\' && p[1] == '"'))
                    want_msg[o++] = *p;
            want_msg[o] = '\0';
        }
        if (rc != c->rc || strcmp(err.code, c->code) != 0 || strcmp(err.field, c->field) != 0 ||
            (c->msg && strncmp(err.message, want_msg, strlen(want_msg)) != 0))
            fail_msg("case %zu %s: got %d %s [%s] \"%s\", want %d %s [%s] \"%s...\"", k, c->src, rc,
                     err.code, err.field, err.message, c->rc, c->code, c->field,
                     c->msg ? want_msg : "");
        if (err.rc != rc)
            fail_msg("case %zu %s: err.rc %d, returned %d", k, c->src, err.rc, rc);
        if (r != NULL || canon != NULL)
            fail_msg("case %zu %s: out or canon set on an error", k, c->src);
        json_decref(j);
    }
}

/* ---- compile: what a rule holds ---- */

static const struct ceff {
    const char *src;
    enum ly_rule_effect effect;
    int64_t points, per_minor;
    enum ly_rounding rounding;
    int64_t factor;
    const char *reward;
} ceffs[] = {
    {"'effect':{'points_per':{'points':1}}", LY_EFFECT_POINTS_PER, 1, 100, LY_ROUND_DOWN, 0, ""},
    {"'effect':{'points_per':{'points':3,'per_minor':1000}}", LY_EFFECT_POINTS_PER, 3, 1000,
     LY_ROUND_DOWN, 0, ""},
    {"'effect':{'points_per':{'points':1,'rounding':'down'}}", LY_EFFECT_POINTS_PER, 1, 100,
     LY_ROUND_DOWN, 0, ""},
    {"'effect':{'points_per':{'points':1,'rounding':'nearest'}}", LY_EFFECT_POINTS_PER, 1, 100,
     LY_ROUND_NEAREST, 0, ""},
    {"'effect':{'points_per':{'points':1,'rounding':'up'}}", LY_EFFECT_POINTS_PER, 1, 100,
     LY_ROUND_UP, 0, ""},
    {"'effect':{'points_per':{'rounding':'up','per_minor':1,'points':" S53 "}}",
     LY_EFFECT_POINTS_PER, MAX53, 1, LY_ROUND_UP, 0, ""},
    {"'effect':{'points_per':{'points':1,'per_minor':" S53 "}}", LY_EFFECT_POINTS_PER, 1, MAX53,
     LY_ROUND_DOWN, 0, ""},
    {"'effect':{'points':1}", LY_EFFECT_POINTS, 1, 0, LY_ROUND_DOWN, 0, ""},
    {"'effect':{'points':50}", LY_EFFECT_POINTS, 50, 0, LY_ROUND_DOWN, 0, ""},
    {"'effect':{'points':" S53 "}", LY_EFFECT_POINTS, MAX53, 0, LY_ROUND_DOWN, 0, ""},
    {"'effect':{'multiply':'2'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 20000, ""},
    {"'effect':{'multiply':2}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 20000, ""},
    {"'effect':{'multiply':'1.5'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 15000, ""},
    {"'effect':{'multiply':'1'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 10000, ""},
    {"'effect':{'multiply':1}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 10000, ""},
    {"'effect':{'multiply':'1.0001'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 10001, ""},
    {"'effect':{'multiply':'1.25'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 12500, ""},
    {"'effect':{'multiply':'2.50'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 25000, ""},
    {"'effect':{'multiply':'002'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 20000, ""},
    {"'effect':{'multiply':'1000'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 10000000, ""},
    {"'effect':{'multiply':'1000.0000'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 10000000, ""},
    {"'effect':{'multiply':1000}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 10000000, ""},
    {"'effect':{'multiply':'999.9999'}", LY_EFFECT_MULTIPLY, 0, 0, LY_ROUND_DOWN, 9999999, ""},
    {"'effect':{'cashback_percent':'2'}", LY_EFFECT_CASHBACK, 0, 0, LY_ROUND_DOWN, 20000, ""},
    {"'effect':{'cashback_percent':2}", LY_EFFECT_CASHBACK, 0, 0, LY_ROUND_DOWN, 20000, ""},
    {"'effect':{'cashback_percent':'5'}", LY_EFFECT_CASHBACK, 0, 0, LY_ROUND_DOWN, 50000, ""},
    {"'effect':{'cashback_percent':'0.5'}", LY_EFFECT_CASHBACK, 0, 0, LY_ROUND_DOWN, 5000, ""},
    {"'effect':{'cashback_percent':'0.0001'}", LY_EFFECT_CASHBACK, 0, 0, LY_ROUND_DOWN, 1, ""},
    {"'effect':{'cashback_percent':'100'}", LY_EFFECT_CASHBACK, 0, 0, LY_ROUND_DOWN, 1000000, ""},
    {"'effect':{'cashback_percent':100}", LY_EFFECT_CASHBACK, 0, 0, LY_ROUND_DOWN, 1000000, ""},
    {"'effect':{'cashback_percent':'12.3456'}", LY_EFFECT_CASHBACK, 0, 0, LY_ROUND_DOWN, 123456,
     ""},
    {"'effect':{'grant_reward':'free-coffee'}", LY_EFFECT_REWARD, 0, 0, LY_ROUND_DOWN, 0,
     "free-coffee"},
    {"'effect':{'grant_reward':'x123456789012345678901234567890123456789012345678901234567890123'}",
     LY_EFFECT_REWARD, 0, 0, LY_ROUND_DOWN, 0,
     "x123456789012345678901234567890123456789012345678901234567890123"},
};

static void test_compile_effects(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(ceffs); k++) {
        const struct ceff *c = &ceffs[k];
        ly_rule *r = compile_ok(c->src, compile_base);
        if (r->effect != c->effect || r->points != c->points || r->per_minor != c->per_minor ||
            r->rounding != c->rounding || r->factor != c->factor || strcmp(r->reward, c->reward))
            fail_msg("case %zu %s: effect %d points %lld per_minor %lld rounding %d factor %lld "
                     "reward %s",
                     k, c->src, r->effect, (long long)r->points, (long long)r->per_minor,
                     r->rounding, (long long)r->factor, r->reward);
        ly_rule_free(r);
    }
}

/* Caps, written "per/period:points,credit,count" and joined with ";". */
static void describe_caps(const ly_rule *r, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->ncaps; i++) {
        const ly_rule_cap *c = &r->caps[i];
        o += (size_t)snprintf(buf + o, size - o, "%s%s/%s:%lld,%lld,%lld", i ? ";" : "",
                              c->per_rule ? "rule" : "member", ly_period_name(c->period),
                              (long long)c->points, (long long)c->credit, (long long)c->count);
    }
}

static const struct ccap {
    const char *src, *caps;
} ccaps[] = {
    {"'cap':null", ""},
    {"'cap':[]", ""},
    {"'cap':{'points':500}", "member/lifetime:500,0,0"},
    {"'cap':{'points':500,'per':'member','period':'day'}", "member/day:500,0,0"},
    {"'cap':{'points':500,'per':'rule','period':'day'}", "rule/day:500,0,0"},
    {"'cap':{'count':3,'per':'member','period':'month'}", "member/month:0,0,3"},
    {"'cap':{'count':1,'period':'week'}", "member/week:0,0,1"},
    {"'cap':{'points':1,'period':'year'}", "member/year:1,0,0"},
    {"'cap':{'points':" S53 ",'period':'lifetime'}", "member/lifetime:9007199254740992,0,0"},
    {"'cap':{'points':100,'count':2,'per':'rule'}", "rule/lifetime:100,0,2"},
    {"'cap':{'count':" S53 "}", "member/lifetime:0,0,9007199254740992"},
    {"'effect':{'cashback_percent':'5'},'cap':{'credit':500,'period':'month'}",
     "member/month:0,500,0"},
    {"'effect':{'cashback_percent':'5'},'cap':{'credit':500,'count':4,'per':'rule'}",
     "rule/lifetime:0,500,4"},
    {"'effect':{'cashback_percent':'5'},'cap':{'count':1}", "member/lifetime:0,0,1"},
    {"'effect':{'multiply':'2'},'cap':{'points':100,'period':'day'}", "member/day:100,0,0"},
    {"'effect':{'grant_reward':'mug'},'cap':{'count':1,'period':'year'}", "member/year:0,0,1"},
    {"'effect':{'points_per':{'points':1}},'cap':[{'points':500,'period':'day'}]",
     "member/day:500,0,0"},
    {"'cap':[{'points':500,'period':'day'},{'points':100000,'per':'rule','period':'month'}]",
     "member/day:500,0,0;rule/month:100000,0,0"},
    {"'cap':[{'count':1,'period':'day'},{'count':3,'period':'week'},{'points':50,'period':'month'},"
     "{'points':9000,'per':'rule'}]",
     "member/day:0,0,1;member/week:0,0,3;member/month:50,0,0;rule/lifetime:9000,0,0"},
    {"'effect':{'cashback_percent':'1'},'cap':[{'credit':1000,'period':'month'},{'credit':1,"
     "'per':'rule','period':'year'}]",
     "member/month:0,1000,0;rule/year:0,1,0"},
};

static void test_compile_caps(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(ccaps); k++) {
        ly_rule *r = compile_ok(ccaps[k].src, compile_base);
        char got[256];
        describe_caps(r, got, sizeof got);
        if (strcmp(got, ccaps[k].caps) != 0)
            fail_msg("case %zu %s: caps %s, want %s", k, ccaps[k].src, got, ccaps[k].caps);
        ly_rule_free(r);
    }
}

static const struct cmisc {
    const char *src;
    const char *from, *to; /* NULL: open */
    int64_t priority;
    int stack, enabled, has_when, has_items;
    const char *id, *on;
} cmiscs[] = {
    {"'priority':0", NULL, NULL, 0, 1, 1, 0, 0, "r", "purchase"},
    {"'name':null,'description':null,'when':null,'items':null,'cap':null,'active_from':null,"
     "'active_to':null",
     NULL, NULL, 0, 1, 1, 0, 0, "r", "purchase"},
    {"'priority':1000000", NULL, NULL, 1000000, 1, 1, 0, 0, "r", "purchase"},
    {"'priority':-1000000", NULL, NULL, -1000000, 1, 1, 0, 0, "r", "purchase"},
    {"'priority':10,'stack':false", NULL, NULL, 10, 0, 1, 0, 0, "r", "purchase"},
    {"'stack':true,'enabled':false", NULL, NULL, 0, 1, 0, 0, 0, "r", "purchase"},
    {"'enabled':true", NULL, NULL, 0, 1, 1, 0, 0, "r", "purchase"},
    {"'active_from':'2027-01-01T00:00:00Z'", "2027-01-01T00:00:00Z", NULL, 0, 1, 1, 0, 0, "r",
     "purchase"},
    {"'active_to':'2027-03-31T23:59:59Z'", NULL, "2027-03-31T23:59:59Z", 0, 1, 1, 0, 0, "r",
     "purchase"},
    {"'active_from':'2027-01-01T00:00:00Z','active_to':'2027-03-31T23:59:59Z'",
     "2027-01-01T00:00:00Z", "2027-03-31T23:59:59Z", 0, 1, 1, 0, 0, "r", "purchase"},
    {"'active_from':'2027-01-01T00:00:00Z','active_to':'2027-01-01T00:00:00Z'",
     "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 0, 1, 1, 0, 0, "r", "purchase"},
    {"'active_from':'2027-01-01T00:00:00+02:00','active_to':'2026-12-31T22:00:00Z'",
     "2026-12-31T22:00:00Z", "2026-12-31T22:00:00Z", 0, 1, 1, 0, 0, "r", "purchase"},
    {"'active_from':'2027-01-01t00:00:00.123456z'", "2027-01-01T00:00:00.123Z", NULL, 0, 1, 1, 0, 0,
     "r", "purchase"},
    {"'active_to':'1969-07-20T20:17:00Z'", NULL, "1969-07-20T20:17:00Z", 0, 1, 1, 0, 0, "r",
     "purchase"},
    {"'when':'event.amount > 0'", NULL, NULL, 0, 1, 1, 1, 0, "r", "purchase"},
    {"'items':'item.category == \\'coffee\\''", NULL, NULL, 0, 1, 1, 0, 1, "r", "purchase"},
    {"'when':'true','items':'true'", NULL, NULL, 0, 1, 1, 1, 1, "r", "purchase"},
    {"'when':'event.channel == \\'store\\' # in person\\n  && member.tier != \\'\\''", NULL, NULL,
     0, 1, 1, 1, 0, "r", "purchase"},
    {"'items':'event.channel == \\'web\\''", NULL, NULL, 0, 1, 1, 0, 1, "r", "purchase"},
    {"'id':'A.b:c-d_1','on':'return'", NULL, NULL, 0, 1, 1, 0, 0, "A.b:c-d_1", "return"},
    {"'id':'x123456789012345678901234567890123456789012345678901234567890123','on':'signup'", NULL,
     NULL, 0, 1, 1, 0, 0, "x123456789012345678901234567890123456789012345678901234567890123",
     "signup"},
    {"'on':'birthday'", NULL, NULL, 0, 1, 1, 0, 0, "r", "birthday"},
    {"'on':'custom:review'", NULL, NULL, 0, 1, 1, 0, 0, "r", "custom:review"},
    {"'on':'custom:App_Open-2'", NULL, NULL, 0, 1, 1, 0, 0, "r", "custom:App_Open-2"},
    {"'on':'custom:1234567890123456789012345678901234567890123456789012345678901234'", NULL, NULL,
     0, 1, 1, 0, 0, "r", "custom:1234567890123456789012345678901234567890123456789012345678901234"},
    {"'name':'Weekend coffee','description':'Twice the points on weekends'", NULL, NULL, 0, 1, 1, 0,
     0, "r", "purchase"},
};

static void test_compile_fields(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(cmiscs); k++) {
        const struct cmisc *c = &cmiscs[k];
        ly_rule *r = compile_ok(c->src, compile_base);
        int64_t from = c->from ? at(c->from) : INT64_MIN, to = c->to ? at(c->to) : INT64_MAX;
        if (r->active_from != from || r->active_to != to || r->priority != c->priority ||
            r->stack != c->stack || r->enabled != c->enabled || (r->when != NULL) != c->has_when ||
            (r->items != NULL) != c->has_items || strcmp(r->id, c->id) || strcmp(r->on, c->on))
            fail_msg("case %zu %s: from %lld to %lld priority %lld stack %d enabled %d when %p "
                     "items %p id %s on %s",
                     k, c->src, (long long)r->active_from, (long long)r->active_to,
                     (long long)r->priority, r->stack, r->enabled, (void *)r->when,
                     (void *)r->items, r->id, r->on);
        assert_int_equal(r->row_id, 0);
        assert_int_equal(r->version, 0);
        ly_rule_free(r);
    }
}

/* The rule as it is kept: what was given, with the defaults filled in. */
static const struct ccanon {
    const char *src, *canon;
} ccanons[] = {
    {"{'id':'r','on':'purchase','effect':{'points':1}}",
     "{'id':'r','on':'purchase','effect':{'points':1},'priority':0,'stack':true,'enabled':true}"},
    {"{'id':'r','on':'purchase','effect':{'points':1},'priority':-3,'stack':false,'enabled':false}",
     "{'id':'r','on':'purchase','effect':{'points':1},'priority':-3,'stack':false,"
     "'enabled':false}"},
    {"{'id':'base','name':'Base','on':'purchase','when':'event.amount > 0',"
     "'effect':{'points_per':{'points':1,'per_minor':100,'rounding':'nearest'}},'cap':{'points':"
     "500,'per':'member','period':'day'},'active_from':'2027-01-01T00:00:00Z','priority':5}",
     "{'id':'base','name':'Base','on':'purchase','when':'event.amount > 0',"
     "'effect':{'points_per':{'points':1,'per_minor':100,'rounding':'nearest'}},'cap':{'points':"
     "500,'per':'member','period':'day'},'active_from':'2027-01-01T00:00:00.000Z','priority':5,"
     "'stack':true,'enabled':true}"},
    /* Times are kept in UTC with milliseconds, whatever offset they came with. */
    {"{'id':'t','on':'purchase','effect':{'points':1},'active_from':'2027-01-01T00:00:00+05:00',"
     "'active_to':'2027-03-31t23:59:59.123456z'}",
     "{'id':'t','on':'purchase','effect':{'points':1},'active_from':'2026-12-31T19:00:00.000Z',"
     "'active_to':'2027-03-31T23:59:59.123Z','priority':0,'stack':true,'enabled':true}"},
    {"{'id':'d','on':'purchase','effect':{'points_per':{'points':2}},"
     "'cap':[{'count':3},{'points':9,'per':'rule'}],'when':null}",
     "{'id':'d','on':'purchase','effect':{'points_per':{'points':2,'per_minor':100,"
     "'rounding':'down'}},'cap':[{'count':3,'per':'member','period':'lifetime'},"
     "{'points':9,'per':'rule','period':'lifetime'}],'priority':0,'stack':true,'enabled':true}"},
    {"{'id':'m','on':'purchase','effect':{'multiply':'1.50'},'enabled':true}",
     "{'id':'m','on':'purchase','effect':{'multiply':'1.50'},'enabled':true,'priority':0,"
     "'stack':true}"},
};

static void test_compile_canon(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(ccanons); k++) {
        json_t *j = rule_json(ccanons[k].src, NULL), *want = rule_json(ccanons[k].canon, NULL);
        json_t *before = json_deep_copy(j), *canon = NULL;
        ly_rule *r = NULL;
        ly_error err = {0};
        assert_int_equal(ly_rule_compile(j, &r, &canon, &err), 0);
        assert_non_null(r);
        if (!json_equal(canon, want)) {
            char *got = json_dumps(canon, JSON_SORT_KEYS);
            fail_msg("case %zu: canon %s", k, got);
        }
        /* The body is left as it was. */
        assert_true(json_equal(j, before));
        json_decref(canon);
        json_decref(j);
        json_decref(before);
        json_decref(want);
        ly_rule_free(r);
    }
    /* canon may be NULL; ly_rule_free(NULL) is harmless. */
    ly_rule *r = compile_ok("{'id':'r','on':'purchase','effect':{'points':1}}", NULL);
    ly_rule_free(r);
    ly_rule_free(NULL);
}

static void test_compile_long_expression(void **state)
{
    (void)state;
    /* Over the compiler's source limit: invalid, not an expression error. */
    size_t n = LY_EXPR_MAX_SOURCE + 1;
    char *src = malloc(n + 1);
    assert_non_null(src);
    memset(src, ' ', n);
    memcpy(src, "true", 4);
    src[n] = '\0';
    for (int field = 0; field < 2; field++) {
        json_t *j = rule_json(compile_base, NULL);
        json_object_set_new(j, field ? "items" : "when", json_string(src));
        ly_rule *r = NULL;
        ly_error err = {0};
        assert_int_equal(ly_rule_compile(j, &r, NULL, &err), LY_EINVAL);
        assert_string_equal(err.code, "invalid_value");
        assert_string_equal(err.field, field ? "items" : "when");
        assert_null(r);
        json_decref(j);
    }
    /* At the limit: accepted. */
    src[LY_EXPR_MAX_SOURCE] = '\0';
    json_t *j = rule_json(compile_base, NULL);
    json_object_set_new(j, "when", json_string(src));
    ly_rule *r = NULL;
    ly_error err = {0};
    assert_int_equal(ly_rule_compile(j, &r, NULL, &err), 0);
    assert_non_null(r->when);
    ly_rule_free(r);
    json_decref(j);
    free(src);
}

/* ---- decimals ---- */

static const struct dcase {
    const char *s;
    int rc;
    int64_t v;
} dcases[] = {
    {"0", 0, 0},
    {"1", 0, 10000},
    {"2", 0, 20000},
    {"10", 0, 100000},
    {"1.5", 0, 15000},
    {"0.5", 0, 5000},
    {"0.25", 0, 2500},
    {"0.0001", 0, 1},
    {"0.001", 0, 10},
    {"0.01", 0, 100},
    {"0.1", 0, 1000},
    {"1.2345", 0, 12345},
    {"1.0", 0, 10000},
    {"1.0000", 0, 10000},
    {"0.0000", 0, 0},
    {"01.50", 0, 15000},
    {"0000000000000000000000000001", 0, 10000},
    {"1000", 0, 10000000},
    {"100.0001", 0, 1000001},
    {"9999.9999", 0, 99999999},
    {"922337203685469", 0, 9223372036854690000},
    {"922337203685469.9999", 0, 9223372036854699999},
    {"0.00001", LY_EINVAL, 0},
    {"1.23456", LY_EINVAL, 0},
    {"1.00000", LY_EINVAL, 0},
    {"99999999999999999999", LY_EINVAL, 0},
    {"9223372036854775807", LY_EINVAL, 0},
    {"922337203685477", LY_EINVAL, 0},
    {"", LY_EINVAL, 0},
    {".", LY_EINVAL, 0},
    {".5", LY_EINVAL, 0},
    {"1.", LY_EINVAL, 0},
    {"1..5", LY_EINVAL, 0},
    {"1.5.", LY_EINVAL, 0},
    {"1.5.5", LY_EINVAL, 0},
    {"-1", LY_EINVAL, 0},
    {"-0", LY_EINVAL, 0},
    {"+1", LY_EINVAL, 0},
    {"1e3", LY_EINVAL, 0},
    {"1E3", LY_EINVAL, 0},
    {"0x10", LY_EINVAL, 0},
    {"1,5", LY_EINVAL, 0},
    {" 1", LY_EINVAL, 0},
    {"1 ", LY_EINVAL, 0},
    {"1\n", LY_EINVAL, 0},
    {"1.5 ", LY_EINVAL, 0},
    {"1_000", LY_EINVAL, 0},
    {"1%", LY_EINVAL, 0},
    {"NaN", LY_EINVAL, 0},
    {"inf", LY_EINVAL, 0},
    {"\xd9\xa1", LY_EINVAL, 0}, /* an Arabic-Indic digit one */
};

static void test_decimal_parse(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(dcases); k++) {
        int64_t v = -42;
        int rc = ly_decimal_parse(dcases[k].s, &v);
        if (rc != dcases[k].rc || (rc == 0 && v != dcases[k].v) || (rc != 0 && v != -42))
            fail_msg("case %zu \"%s\": %d %lld, want %d %lld", k, dcases[k].s, rc, (long long)v,
                     dcases[k].rc, (long long)dcases[k].v);
    }
    int64_t v;
    assert_int_equal(ly_decimal_parse(NULL, &v), LY_EINVAL);
}

/* ---- sorting ---- */

static void test_sort(void **state)
{
    (void)state;
    static const char *const srcs[] = {
        "{'id':'b','on':'purchase','effect':{'points':1},'priority':10}",
        "{'id':'z','on':'purchase','effect':{'points':1},'priority':-5}",
        "{'id':'a','on':'purchase','effect':{'points':1},'priority':10}",
        "{'id':'m','on':'purchase','effect':{'points':1}}",
        "{'id':'B','on':'purchase','effect':{'points':1},'priority':10}",
        "{'id':'top','on':'purchase','effect':{'points':1},'priority':1000000}",
        "{'id':'a-1','on':'purchase','effect':{'points':1},'priority':10}",
    };
    static const char *const want[] = {"z", "m", "B", "a", "a-1", "b", "top"};
    ly_rule *rules[N_ELEMS(srcs)];
    for (size_t i = 0; i < N_ELEMS(srcs); i++)
        rules[i] = compile_ok(srcs[i], NULL);
    ly_rules_sort(rules, N_ELEMS(srcs));
    for (size_t i = 0; i < N_ELEMS(srcs); i++)
        assert_string_equal(rules[i]->id, want[i]);
    ly_rules_sort(rules, 0);
    ly_rules_sort(rules, 1);
    ly_rules_sort(NULL, 0);
    for (size_t i = 0; i < N_ELEMS(srcs); i++)
        ly_rule_free(rules[i]);
}

/* ---- evaluation ---- */

static const char *const hot_tags[] = {"hot"};
static const char *const alcohol_tags[] = {"alcohol", "18+"};

enum { B_NONE, B_CAFE, B_GROCERY, B_FREE, B_BIG, NBASKETS };

/* cafe: 2900 in all; grocery: 3695; free: items worth nothing. */
static const struct basket {
    ly_expr_item items[6];
    size_t n;
} baskets[NBASKETS] = {
    [B_NONE] = {{{0}}, 0},
    [B_CAFE] = {{
                    {"COF-12", "coffee", 3, 450, 1350, hot_tags, 1},
                    {"PST-1", "pastry", 1, 300, 300, NULL, 0},
                    {"BNS-1", "beans", 1, 1250, 1250, NULL, 0},
                },
                3},
    [B_GROCERY] = {{
                       {"MLK-2", "dairy", 2, 199, 398, NULL, 0},
                       {"BRD-1", "bakery", 1, 349, 349, NULL, 0},
                       {"APL-6", "produce", 6, 75, 450, NULL, 0},
                       {"COF-1", "coffee", 1, 899, 899, hot_tags, 1},
                       {"WIN-1", "wine", 1, 1599, 1599, alcohol_tags, 2},
                   },
                   5},
    [B_FREE] = {{
                    {"GIFT-1", "promo", 1, 0, 0, NULL, 0},
                    {"GIFT-2", "promo", 1, 0, 0, NULL, 0},
                },
                2},
    /* Amounts whose sum does not fit in 63 bits. */
    [B_BIG] = {{
                   {"A", "big", 1, INT64_MAX, INT64_MAX, NULL, 0},
                   {"B", "big", 1, INT64_MAX, INT64_MAX, NULL, 0},
                   {"C", "big", 1, INT64_MAX, INT64_MAX, NULL, 0},
               },
               3},
};

struct evspec {
    const char *type;    /* NULL: purchase */
    const char *at;      /* NULL: Wednesday 2027-01-06T09:30:00Z */
    int64_t amount;      /* 0: the basket's total */
    int basket;          /* B_* */
    const char *channel; /* NULL: store */
    const char *tier;    /* NULL: silver */
    const char *card;    /* member.attributes.card; NULL: none */
};

#define WED "2027-01-06T09:30:00Z"
#define SAT "2027-01-09T14:30:00Z"

struct want {
    const char *id;
    int considered, matched, applied;
    int64_t eligible, points, credit;
    const char *reason; /* NULL: not checked; ending in '*': a prefix */
};

/* Outcomes written {id, considered, matched, applied, eligible, points, credit, reason}. */
#define APPLIED(id, elig, pts, cr)                                                                 \
    {                                                                                              \
        id, 1, 1, 1, elig, pts, cr, ""                                                             \
    }
#define NOT(id, why)                                                                               \
    {                                                                                              \
        id, 1, 0, 0, 0, 0, 0, why                                                                  \
    }
#define IGNORED(id)                                                                                \
    {                                                                                              \
        id, 0, 0, 0, 0, 0, 0, ""                                                                   \
    }

static const struct scase {
    const char *name;
    const char *rules[10]; /* members laid over {'on':'purchase'} */
    struct evspec ev;
    struct want want[10];
    int rc;                  /* 0, or the error */
    const char *field, *msg; /* of the error; msg is a prefix */
} scases[] = {
    /* each effect on the whole event */
    {"points_per",
     {"'id':'base','effect':{'points_per':{'points':1}}"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"points_per, 3 per 1000",
     {"'id':'base','effect':{'points_per':{'points':3,'per_minor':1000}}"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 8, 0)},
     0,
     NULL,
     NULL},
    {"points_per, the event's amount rather than its items'",
     {"'id':'base','effect':{'points_per':{'points':1}}"},
     {.basket = B_CAFE, .amount = 2500},
     {APPLIED("base", 2500, 25, 0)},
     0,
     NULL,
     NULL},
    {"points_per, no items",
     {"'id':'base','effect':{'points_per':{'points':1}}"},
     {.amount = 12345},
     {APPLIED("base", 12345, 123, 0)},
     0,
     NULL,
     NULL},
    {"fixed points",
     {"'id':'bonus','effect':{'points':50}"},
     {.basket = B_CAFE},
     {APPLIED("bonus", 2900, 50, 0)},
     0,
     NULL,
     NULL},
    {"fixed points, no amount",
     {"'id':'bonus','on':'signup','effect':{'points':100}"},
     {.type = "signup"},
     {APPLIED("bonus", 0, 100, 0)},
     0,
     NULL,
     NULL},
    {"grant_reward gives no points",
     {"'id':'mug','effect':{'grant_reward':'mug'}",
      "'id':'base','effect':{'points_per':{'points':1}}"},
     {.basket = B_CAFE},
     {APPLIED("mug", 2900, 0, 0), APPLIED("base", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"cashback 2%",
     {"'id':'cb','effect':{'cashback_percent':'2'}"},
     {.basket = B_CAFE},
     {APPLIED("cb", 2900, 0, 58)},
     0,
     NULL,
     NULL},
    {"cashback 5%",
     {"'id':'cb','effect':{'cashback_percent':5}"},
     {.basket = B_CAFE},
     {APPLIED("cb", 2900, 0, 145)},
     0,
     NULL,
     NULL},
    {"cashback 0.5% rounds down",
     {"'id':'cb','effect':{'cashback_percent':'0.5'}"},
     {.basket = B_CAFE},
     {APPLIED("cb", 2900, 0, 14)},
     0,
     NULL,
     NULL},
    {"cashback 2% of 2999 rounds down",
     {"'id':'cb','effect':{'cashback_percent':'2'}"},
     {.amount = 2999},
     {APPLIED("cb", 2999, 0, 59)},
     0,
     NULL,
     NULL},
    {"cashback below one unit gives nothing",
     {"'id':'cb','effect':{'cashback_percent':'0.0001'}"},
     {.amount = 9999},
     {APPLIED("cb", 9999, 0, 0)},
     0,
     NULL,
     NULL},
    {"cashback 0.0001% of a million",
     {"'id':'cb','effect':{'cashback_percent':'0.0001'}"},
     {.amount = 1000000},
     {APPLIED("cb", 1000000, 0, 1)},
     0,
     NULL,
     NULL},
    {"cashback 100%",
     {"'id':'cb','effect':{'cashback_percent':'100'}"},
     {.basket = B_GROCERY},
     {APPLIED("cb", 3695, 0, 3695)},
     0,
     NULL,
     NULL},
    {"cashback does not feed multipliers",
     {"'id':'cb','effect':{'cashback_percent':'5'}",
      "'id':'x2','effect':{'multiply':'2'},'priority':1"},
     {.basket = B_CAFE},
     {APPLIED("cb", 2900, 0, 145), APPLIED("x2", 2900, 0, 0)},
     0,
     NULL,
     NULL},
    {"two cashback rules add up",
     {"'id':'cb2','effect':{'cashback_percent':'2'}",
      "'id':'cb5','effect':{'cashback_percent':'5'},'when':'member.attributes.card == \\'yes\\''"},
     {.basket = B_CAFE, .card = "yes"},
     {APPLIED("cb2", 2900, 0, 58), APPLIED("cb5", 2900, 0, 145)},
     0,
     NULL,
     NULL},
    {"cashback for card holders only",
     {"'id':'cb5','effect':{'cashback_percent':'5'},'when':'member.attributes.card == \\'yes\\''"},
     {.basket = B_CAFE},
     {NOT("cb5", "false: member.attributes.card == \"yes\"")},
     0,
     NULL,
     NULL},

    /* the items filter */
    {"items filter: points_per on coffee",
     {"'id':'cof','effect':{'points_per':{'points':1}},'items':'item.category == \\'coffee\\''"},
     {.basket = B_CAFE},
     {APPLIED("cof", 1350, 13, 0)},
     0,
     NULL,
     NULL},
    {"items filter: two categories",
     {"'id':'two','effect':{'points_per':{'points':1}},"
      "'items':'item.category in [\\'coffee\\', \\'beans\\']'"},
     {.basket = B_CAFE},
     {APPLIED("two", 2600, 26, 0)},
     0,
     NULL,
     NULL},
    {"items filter: by tag",
     {"'id':'hot','effect':{'points':5},'items':'\\'hot\\' in item.tags'"},
     {.basket = B_GROCERY},
     {APPLIED("hot", 899, 5, 0)},
     0,
     NULL,
     NULL},
    {"items filter: by quantity and price",
     {"'id':'bulk','effect':{'cashback_percent':'10'},"
      "'items':'item.quantity >= 2 && item.unit_price < 200'"},
     {.basket = B_GROCERY},
     {APPLIED("bulk", 848, 0, 84)},
     0,
     NULL,
     NULL},
    {"items filter: cashback on coffee",
     {"'id':'cb','effect':{'cashback_percent':'5'},'items':'item.category == \\'coffee\\''"},
     {.basket = B_CAFE},
     {APPLIED("cb", 1350, 0, 67)},
     0,
     NULL,
     NULL},
    {"items filter: fixed points once however many items pass",
     {"'id':'any','effect':{'points':7},'items':'item.amount > 0'"},
     {.basket = B_GROCERY},
     {APPLIED("any", 3695, 7, 0)},
     0,
     NULL,
     NULL},
    {"items filter selects nothing",
     {"'id':'tea','effect':{'points_per':{'points':1}},'items':'item.category == \\'tea\\''"},
     {.basket = B_CAFE},
     {NOT("tea", "no item passes items")},
     0,
     NULL,
     NULL},
    {"items filter, the event has no items",
     {"'id':'cof','effect':{'points_per':{'points':1}},'items':'item.category == \\'coffee\\''"},
     {.amount = 2900},
     {NOT("cof", "the event has no items")},
     0,
     NULL,
     NULL},
    {"items filter reading no item name: all",
     {"'id':'web','effect':{'points_per':{'points':1}},'items':'event.channel == \\'store\\''"},
     {.basket = B_CAFE, .amount = 5000},
     {APPLIED("web", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"items filter reading no item name: none",
     {"'id':'web','effect':{'points_per':{'points':1}},'items':'event.channel == \\'web\\''"},
     {.basket = B_CAFE},
     {NOT("web", "no item passes items")},
     0,
     NULL,
     NULL},
    {"items filter on items worth nothing",
     {"'id':'promo','effect':{'points_per':{'points':1,'rounding':'up'}},"
      "'items':'item.category == \\'promo\\''"},
     {.basket = B_FREE, .amount = 1000},
     {APPLIED("promo", 0, 0, 0)},
     0,
     NULL,
     NULL},
    {"items filter with when: when first",
     {"'id':'cof','effect':{'points':5},'when':'event.channel == \\'web\\'',"
      "'items':'item.category == \\'coffee\\''"},
     {.basket = B_CAFE},
     {NOT("cof", "false: event.channel == \"web\"")},
     0,
     NULL,
     NULL},

    /* on, enabled, windows, when */
    {"on: another event type",
     {"'id':'ret','on':'return','effect':{'points':5}", "'id':'base','effect':{'points':1}"},
     {.basket = B_CAFE},
     {IGNORED("ret"), APPLIED("base", 2900, 1, 0)},
     0,
     NULL,
     NULL},
    {"on: a custom event",
     {"'id':'review','on':'custom:review','effect':{'points':20},'cap':{'count':1}",
      "'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'other','on':'custom:reviews','effect':{'points':1}"},
     {.type = "custom:review"},
     {APPLIED("review", 0, 20, 0), IGNORED("base"), IGNORED("other")},
     0,
     NULL,
     NULL},
    {"on: signup and birthday",
     {"'id':'welcome','on':'signup','effect':{'points':100}",
      "'id':'bday','on':'birthday','effect':{'grant_reward':'cake'}"},
     {.type = "birthday"},
     {IGNORED("welcome"), APPLIED("bday", 0, 0, 0)},
     0,
     NULL,
     NULL},
    {"disabled",
     {"'id':'off','effect':{'points':5},'enabled':false", "'id':'on','effect':{'points':1}"},
     {.basket = B_CAFE},
     {NOT("off", "disabled"), APPLIED("on", 2900, 1, 0)},
     0,
     NULL,
     NULL},
    {"disabled and out of its window: disabled",
     {"'id':'off','effect':{'points':5},'enabled':false,'active_to':'2020-01-01T00:00:00Z'"},
     {.basket = B_CAFE},
     {NOT("off", "disabled")},
     0,
     NULL,
     NULL},
    {"not yet active",
     {"'id':'feb','effect':{'points':5},'active_from':'2027-02-01T00:00:00Z'"},
     {.basket = B_CAFE},
     {NOT("feb", "not active before 2027-02-01T00:00:00.000Z")},
     0,
     NULL,
     NULL},
    {"no longer active",
     {"'id':'dec','effect':{'points':5},'active_to':'2026-12-31T23:59:59Z'"},
     {.basket = B_CAFE},
     {NOT("dec", "ended at 2026-12-31T23:59:59.000Z")},
     0,
     NULL,
     NULL},
    {"no longer active, window given with an offset",
     {"'id':'dec','effect':{'points':5},'active_from':'2026-12-01T00:00:00-05:00',"
      "'active_to':'2027-01-06T04:29:59.999-05:00'"},
     {.basket = B_CAFE},
     {NOT("dec", "ended at 2027-01-06T09:29:59.999Z")},
     0,
     NULL,
     NULL},
    {"active: the first instant",
     {"'id':'w','effect':{'points':5},'active_from':'" WED "'"},
     {.basket = B_CAFE},
     {APPLIED("w", 2900, 5, 0)},
     0,
     NULL,
     NULL},
    {"active: the last instant",
     {"'id':'w','effect':{'points':5},'active_to':'" WED "'"},
     {.basket = B_CAFE},
     {APPLIED("w", 2900, 5, 0)},
     0,
     NULL,
     NULL},
    {"active: a window of one instant",
     {"'id':'w','effect':{'points':5},'active_from':'" WED "','active_to':'" WED "'"},
     {.basket = B_CAFE},
     {APPLIED("w", 2900, 5, 0)},
     0,
     NULL,
     NULL},
    {"not active: a millisecond early",
     {"'id':'w','effect':{'points':5},'active_from':'2027-01-06T09:30:00.001Z'"},
     {.basket = B_CAFE},
     {NOT("w", "not active before 2027-01-06T09:30:00.001Z")},
     0,
     NULL,
     NULL},
    {"weekend rule on a Wednesday",
     {"'id':'wknd','effect':{'multiply':'2'},"
      "'when':'weekday(event.occurred_at) >= 6 && event.channel == \\'store\\''"},
     {.basket = B_CAFE},
     {NOT("wknd", "false: weekday(event.occurred_at) >= 6")},
     0,
     NULL,
     NULL},
    {"weekend rule on a Saturday on the web",
     {"'id':'wknd','effect':{'multiply':'2'},"
      "'when':'weekday(event.occurred_at) >= 6 && event.channel == \\'store\\''"},
     {.basket = B_CAFE, .at = SAT, .channel = "web"},
     {NOT("wknd", "false: event.channel == \"store\"")},
     0,
     NULL,
     NULL},
    {"weekend rule on a Saturday in the store",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'wknd','effect':{'multiply':'2'},'priority':10,"
      "'when':'weekday(event.occurred_at) >= 6 && event.channel == \\'store\\''"},
     {.basket = B_CAFE, .at = SAT},
     {APPLIED("base", 2900, 29, 0), APPLIED("wknd", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"when with ||: the whole condition is the reason",
     {"'id':'vip','effect':{'points':10},'when':'member.tier == \\'gold\\' || event.amount > "
      "10000'"},
     {.basket = B_CAFE},
     {NOT("vip", "false: member.tier == \"gold\" || event.amount > 10000")},
     0,
     NULL,
     NULL},
    {"when false literal",
     {"'id':'never','effect':{'points':10},'when':'false'"},
     {.basket = B_CAFE},
     {NOT("never", "false: false")},
     0,
     NULL,
     NULL},
    {"when: the third condition fails",
     {"'id':'c3','effect':{'points':10},"
      "'when':'event.amount > 0 && event.currency == \\'USD\\' && member.tier == \\'gold\\''"},
     {.basket = B_CAFE},
     {NOT("c3", "false: member.tier == \"gold\"")},
     0,
     NULL,
     NULL},
    {"when: a long condition is cut",
     {"'id':'long','effect':{'points':10},'when':'member.tier == "
      "\\'a-very-long-tier-name-that-nobody-has-abcdefghijklmnopqrstuvwxyz-"
      "abcdefghijklmnopqrstuvwxyz"
      "-abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwxyz\\''"},
     {.basket = B_CAFE},
     {NOT("long", "false: member.tier == \"a-very-long-tier-name-that-nobody-has-*")},
     0,
     NULL,
     NULL},
    {"tier bonus, silver member",
     {"'id':'tier','effect':{'multiply':'1.5'},'priority':100,"
      "'when':'member.tier in [\\'gold\\', \\'platinum\\']'"},
     {.basket = B_CAFE},
     {NOT("tier", "false: member.tier in [\"gold\", \"platinum\"]")},
     0,
     NULL,
     NULL},
    {"tier bonus, gold member",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'tier','effect':{'multiply':'1.5'},'priority':100,"
      "'when':'member.tier in [\\'gold\\', \\'platinum\\']'"},
     {.basket = B_CAFE, .tier = "gold"},
     {APPLIED("base", 2900, 29, 0), APPLIED("tier", 2900, 14, 0)},
     0,
     NULL,
     NULL},

    /* multipliers: order, rounding, compounding, filters */
    {"multiply the whole event",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'x2','effect':{'multiply':'2'},'priority':10"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("x2", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"multiply by 1 adds nothing",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'x1','effect':{'multiply':1},'priority':10"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("x1", 2900, 0, 0)},
     0,
     NULL,
     NULL},
    {"multiply with a lower priority sees nothing",
     {"'id':'base','effect':{'points_per':{'points':1}},'priority':10",
      "'id':'x2','effect':{'multiply':'2'},'priority':5"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("x2", 2900, 0, 0)},
     0,
     NULL,
     NULL},
    {"same priority: by id, a-double first",
     {"'id':'b-base','effect':{'points_per':{'points':1}}",
      "'id':'a-double','effect':{'multiply':'2'}"},
     {.basket = B_CAFE},
     {APPLIED("b-base", 2900, 29, 0), APPLIED("a-double", 2900, 0, 0)},
     0,
     NULL,
     NULL},
    {"same priority: by id, z-double last",
     {"'id':'b-base','effect':{'points_per':{'points':1}}",
      "'id':'z-double','effect':{'multiply':'2'}"},
     {.basket = B_CAFE},
     {APPLIED("b-base", 2900, 29, 0), APPLIED("z-double", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"negative priority runs first",
     {"'id':'base','effect':{'points_per':{'points':1}},'priority':-1",
      "'id':'x2','effect':{'multiply':'2'}"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("x2", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"two multipliers compound",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'x2','effect':{'multiply':'2'},'priority':10",
      "'id':'x3','effect':{'multiply':'3'},'priority':20"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("x2", 2900, 29, 0), APPLIED("x3", 2900, 116, 0)},
     0,
     NULL,
     NULL},
    {"1.5 on 5 fixed points rounds down",
     {"'id':'five','effect':{'points':5}", "'id':'x1.5','effect':{'multiply':'1.5'},'priority':1"},
     {.basket = B_CAFE},
     {APPLIED("five", 2900, 5, 0), APPLIED("x1.5", 2900, 2, 0)},
     0,
     NULL,
     NULL},
    {"1.5 on 29 rounds down",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'x1.5','effect':{'multiply':'1.5'},'priority':1"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("x1.5", 2900, 14, 0)},
     0,
     NULL,
     NULL},
    {"1.0001 on 9999 rounds down to nothing",
     {"'id':'fixed','effect':{'points':9999}",
      "'id':'tiny','effect':{'multiply':'1.0001'},'priority':1"},
     {.basket = B_CAFE},
     {APPLIED("fixed", 2900, 9999, 0), APPLIED("tiny", 2900, 0, 0)},
     0,
     NULL,
     NULL},
    {"1.0001 on 10000",
     {"'id':'fixed','effect':{'points':10000}",
      "'id':'tiny','effect':{'multiply':'1.0001'},'priority':1"},
     {.basket = B_CAFE},
     {APPLIED("fixed", 2900, 10000, 0), APPLIED("tiny", 2900, 1, 0)},
     0,
     NULL,
     NULL},
    {"multiply 1000",
     {"'id':'fixed','effect':{'points':7}", "'id':'big','effect':{'multiply':'1000'},'priority':1"},
     {.basket = B_CAFE},
     {APPLIED("fixed", 2900, 7, 0), APPLIED("big", 2900, 6993, 0)},
     0,
     NULL,
     NULL},
    {"multiply coffee: its share of 29, the tie going to the first item",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'cof','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'coffee\\''"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("cof", 1350, 14, 0)},
     0,
     NULL,
     NULL},
    {"multiply beans: the other half of the tie",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'bns','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'beans\\''"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("bns", 1250, 12, 0)},
     0,
     NULL,
     NULL},
    {"multiply pastry",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'pst','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'pastry\\''"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("pst", 300, 3, 0)},
     0,
     NULL,
     NULL},
    {"multiply every item: all of the points, no more",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'all','effect':{'multiply':'2'},'priority':10,'items':'item.amount >= 0'"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("all", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"coffee-morning x3 with an items filter",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'morning','effect':{'multiply':'3'},'priority':10,"
      "'items':'item.category == \\'coffee\\' && hour(event.occurred_at) < 11'"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("morning", 1350, 28, 0)},
     0,
     NULL,
     NULL},
    {"coffee-morning x3 in the afternoon",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'morning','effect':{'multiply':'3'},'priority':10,"
      "'items':'item.category == \\'coffee\\' && hour(event.occurred_at) < 11'"},
     {.basket = B_CAFE, .at = SAT},
     {APPLIED("base", 2900, 29, 0), NOT("morning", "no item passes items")},
     0,
     NULL,
     NULL},
    {"two multipliers on coffee compound",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'cof2','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'coffee\\''",
      "'id':'cof15','effect':{'multiply':'1.5'},'priority':20,"
      "'items':'item.category == \\'coffee\\''"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("cof2", 1350, 14, 0), APPLIED("cof15", 1350, 14, 0)},
     0,
     NULL,
     NULL},
    {"a coffee multiplier, then one on everything",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'cof','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'coffee\\''",
      "'id':'all','effect':{'multiply':'2'},'priority':20"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("cof", 1350, 14, 0), APPLIED("all", 2900, 43, 0)},
     0,
     NULL,
     NULL},
    /* 29 -> x1.5 on everything gives 14, spread 7/1/6 over 14/3/12: coffee 21 */
    {"spreading is exact: x1.5 on everything, then coffee",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'all','effect':{'multiply':'1.5'},'priority':10",
      "'id':'cof','effect':{'multiply':'2'},'priority':20,'items':'item.category == \\'coffee\\''"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("all", 2900, 14, 0), APPLIED("cof", 1350, 21, 0)},
     0,
     NULL,
     NULL},
    {"spreading is exact: x1.5 on everything, then beans",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'all','effect':{'multiply':'1.5'},'priority':10",
      "'id':'bns','effect':{'multiply':'2'},'priority':20,'items':'item.category == \\'beans\\''"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("all", 2900, 14, 0), APPLIED("bns", 1250, 18, 0)},
     0,
     NULL,
     NULL},
    {"spreading is exact: x1.5 on everything, then pastry",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'all','effect':{'multiply':'1.5'},'priority':10",
      "'id':'pst','effect':{'multiply':'2'},'priority':20,'items':'item.category == \\'pastry\\''"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("all", 2900, 14, 0), APPLIED("pst", 300, 4, 0)},
     0,
     NULL,
     NULL},
    /* grocery: 36 points over 398/349/450/899/1599 -> 4/3/4/9/16 */
    {"grocery: coffee's share of 36",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'cof','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'coffee\\''"},
     {.basket = B_GROCERY},
     {APPLIED("base", 3695, 36, 0), APPLIED("cof", 899, 9, 0)},
     0,
     NULL,
     NULL},
    {"grocery: wine's share of 36",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'wine','effect':{'multiply':'2'},'priority':10,'items':'\\'alcohol\\' in item.tags'"},
     {.basket = B_GROCERY},
     {APPLIED("base", 3695, 36, 0), APPLIED("wine", 1599, 16, 0)},
     0,
     NULL,
     NULL},
    {"grocery: dairy and bakery",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'db','effect':{'multiply':'2'},'priority':10,"
      "'items':'item.category == \\'dairy\\' || item.category == \\'bakery\\''"},
     {.basket = B_GROCERY},
     {APPLIED("base", 3695, 36, 0), APPLIED("db", 747, 7, 0)},
     0,
     NULL,
     NULL},
    {"grocery: produce",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'veg','effect':{'multiply':'2'},'priority':10,'items':'item.category == "
      "\\'produce\\''"},
     {.basket = B_GROCERY},
     {APPLIED("base", 3695, 36, 0), APPLIED("veg", 450, 4, 0)},
     0,
     NULL,
     NULL},
    {"grocery: all but wine",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'dry','effect':{'multiply':'2'},'priority':10,'items':'!(\\'alcohol\\' in item.tags)'"},
     {.basket = B_GROCERY},
     {APPLIED("base", 3695, 36, 0), APPLIED("dry", 2096, 20, 0)},
     0,
     NULL,
     NULL},
    {"grocery: points_per on coffee then the coffee multiplier",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'cofpp','effect':{'points_per':{'points':1,'per_minor':10}},'priority':1,"
      "'items':'item.category == \\'coffee\\''",
      "'id':'cof','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'coffee\\''"},
     {.basket = B_GROCERY},
     {APPLIED("base", 3695, 36, 0), APPLIED("cofpp", 899, 89, 0), APPLIED("cof", 899, 98, 0)},
     0,
     NULL,
     NULL},
    {"fixed points belong to the event, not to an item",
     {"'id':'base','effect':{'points_per':{'points':1}}", "'id':'bonus','effect':{'points':50}",
      "'id':'cof','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'coffee\\''",
      "'id':'all','effect':{'multiply':'2'},'priority':20"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0), APPLIED("bonus", 2900, 50, 0), APPLIED("cof", 1350, 14, 0),
      APPLIED("all", 2900, 93, 0)},
     0,
     NULL,
     NULL},
    {"fixed points with an items filter belong to the event too",
     {"'id':'cofbonus','effect':{'points':10},'items':'item.category == \\'coffee\\''",
      "'id':'cof','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'coffee\\''"},
     {.basket = B_CAFE},
     {APPLIED("cofbonus", 1350, 10, 0), APPLIED("cof", 1350, 0, 0)},
     0,
     NULL,
     NULL},
    {"multiply with an items filter, the event has no items",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'cof','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'coffee\\''"},
     {.amount = 2900},
     {APPLIED("base", 2900, 29, 0), NOT("cof", "the event has no items")},
     0,
     NULL,
     NULL},
    {"multiply without a filter, the event has no items",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'x3','effect':{'multiply':'3'},'priority':10"},
     {.amount = 2900},
     {APPLIED("base", 2900, 29, 0), APPLIED("x3", 2900, 58, 0)},
     0,
     NULL,
     NULL},
    {"items worth nothing: points go to the event",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'promo','effect':{'multiply':'2'},'priority':10,'items':'item.category == \\'promo\\''",
      "'id':'all','effect':{'multiply':'2'},'priority':20"},
     {.basket = B_FREE, .amount = 1000},
     {APPLIED("base", 1000, 10, 0), APPLIED("promo", 0, 0, 0), APPLIED("all", 1000, 10, 0)},
     0,
     NULL,
     NULL},

    /* exclusive rules */
    {"exclusive: the highest priority wins, stackable rules still apply",
     {"'id':'A','effect':{'points':100},'priority':10,'stack':false",
      "'id':'B','effect':{'points':200},'priority':20,'stack':false",
      "'id':'base','effect':{'points_per':{'points':1}}"},
     {.basket = B_CAFE},
     {{"A", 1, 1, 0, 2900, 0, 0, "exclusive: rule B (priority 20) applies instead"},
      APPLIED("B", 2900, 200, 0),
      APPLIED("base", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"exclusive: the winner does not match, the next one wins",
     {"'id':'A','effect':{'points':100},'priority':10,'stack':false",
      "'id':'B','effect':{'points':200},'priority':20,'stack':false,'when':'event.amount > 5000'",
      "'id':'base','effect':{'points_per':{'points':1}}"},
     {.basket = B_CAFE},
     {APPLIED("A", 2900, 100, 0), NOT("B", "false: event.amount > 5000"),
      APPLIED("base", 2900, 29, 0)},
     0,
     NULL,
     NULL},
    {"exclusive: a disabled rule does not win",
     {"'id':'A','effect':{'points':100},'priority':10,'stack':false",
      "'id':'B','effect':{'points':200},'priority':20,'stack':false,'enabled':false"},
     {.basket = B_CAFE},
     {APPLIED("A", 2900, 100, 0), NOT("B", "disabled")},
     0,
     NULL,
     NULL},
    {"exclusive: a rule of another event type does not win",
     {"'id':'A','effect':{'points':100},'priority':10,'stack':false",
      "'id':'B','on':'return','effect':{'points':200},'priority':20,'stack':false"},
     {.basket = B_CAFE},
     {APPLIED("A", 2900, 100, 0), IGNORED("B")},
     0,
     NULL,
     NULL},
    {"exclusive: a rule whose items filter selects nothing does not win",
     {"'id':'A','effect':{'points':100},'priority':10,'stack':false",
      "'id':'B','effect':{'points':200},'priority':20,'stack':false,"
      "'items':'item.category == \\'tea\\''"},
     {.basket = B_CAFE},
     {APPLIED("A", 2900, 100, 0), NOT("B", "no item passes items")},
     0,
     NULL,
     NULL},
    {"exclusive: equal priorities, the first by id wins",
     {"'id':'ex-b','effect':{'points':200},'priority':5,'stack':false",
      "'id':'ex-a','effect':{'points':100},'priority':5,'stack':false"},
     {.basket = B_CAFE},
     {APPLIED("ex-a", 2900, 100, 0),
      {"ex-b", 1, 1, 0, 2900, 0, 0, "exclusive: rule ex-a (priority 5) applies instead"}},
     0,
     NULL,
     NULL},
    {"exclusive: three, negative priorities",
     {"'id':'p1','effect':{'points':1},'priority':-30,'stack':false",
      "'id':'p2','effect':{'points':2},'priority':-10,'stack':false",
      "'id':'p3','effect':{'points':3},'priority':-20,'stack':false"},
     {.basket = B_CAFE},
     {{"p1", 1, 1, 0, 2900, 0, 0, "exclusive: rule p2 (priority -10) applies instead"},
      APPLIED("p2", 2900, 2, 0),
      {"p3", 1, 1, 0, 2900, 0, 0, "exclusive: rule p2 (priority -10) applies instead"}},
     0,
     NULL,
     NULL},
    {"exclusive promotion multiplies what ran before it",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'promo','effect':{'multiply':'3'},'priority':50,'stack':false",
      "'id':'promo-old','effect':{'multiply':'2'},'priority':40,'stack':false"},
     {.basket = B_CAFE},
     {APPLIED("base", 2900, 29, 0),
      APPLIED("promo", 2900, 58, 0),
      {"promo-old", 1, 1, 0, 2900, 0, 0, "exclusive: rule promo (priority 50) applies instead"}},
     0,
     NULL,
     NULL},
    {"exclusive: one alone applies",
     {"'id':'solo','effect':{'cashback_percent':'5'},'stack':false"},
     {.basket = B_CAFE},
     {APPLIED("solo", 2900, 0, 145)},
     0,
     NULL,
     NULL},
    {"exclusive below a stackable multiplier",
     {"'id':'ex','effect':{'points':40},'priority':1,'stack':false",
      "'id':'x2','effect':{'multiply':'2'},'priority':2"},
     {.basket = B_CAFE},
     {APPLIED("ex", 2900, 40, 0), APPLIED("x2", 2900, 40, 0)},
     0,
     NULL,
     NULL},

    /* run-time errors and 2^53 */
    {"division by zero in when",
     {"'id':'base','effect':{'points':1}",
      "'id':'div','effect':{'points':1},'when':'100 / event.amount > 1'"},
     {.basket = B_NONE},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.div",
     "rule div: when:1:5: "},
    {"overflow in when",
     {"'id':'ovf','effect':{'points':1},'when':'event.amount * 9223372036854775807 > 0'"},
     {.basket = B_CAFE},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.ovf",
     "rule ovf: when:1:14: "},
    {"overflow in items",
     {"'id':'base','effect':{'points':1}",
      "'id':'ovf','effect':{'points':1},'items':'item.quantity * 4611686018427387904 > 0'"},
     {.basket = B_CAFE},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.ovf",
     "rule ovf: items:1:15: "},
    {"a failing rule that is not considered is not run",
     {"'id':'ovf','on':'return','effect':{'points':1},'when':'1 / (event.amount - 2900) > 0'",
      "'id':'base','effect':{'points':1}"},
     {.basket = B_CAFE},
     {IGNORED("ovf"), APPLIED("base", 2900, 1, 0)},
     0,
     NULL,
     NULL},
    {"a disabled failing rule is not run",
     {"'id':'ovf','effect':{'points':1},'enabled':false,'when':'1 / (event.amount - 2900) > 0'"},
     {.basket = B_CAFE},
     {NOT("ovf", "disabled")},
     0,
     NULL,
     NULL},
    {"short-circuit keeps a rule from failing",
     {"'id':'safe','effect':{'points':1},"
      "'when':'event.amount > 5000 && 1 / (event.amount - 2900) > 0'"},
     {.basket = B_CAFE},
     {NOT("safe", "false: event.amount > 5000")},
     0,
     NULL,
     NULL},
    {"2^53 points from one rule",
     {"'id':'max','effect':{'points':" S53 "}"},
     {.basket = B_CAFE},
     {APPLIED("max", 2900, MAX53, 0)},
     0,
     NULL,
     NULL},
    {"2^53 points from two rules",
     {"'id':'h1','effect':{'points':4503599627370496}",
      "'id':'h2','effect':{'points':4503599627370496}"},
     {.basket = B_CAFE},
     {APPLIED("h1", 2900, MAX53 / 2, 0), APPLIED("h2", 2900, MAX53 / 2, 0)},
     0,
     NULL,
     NULL},
    {"above 2^53 from two rules",
     {"'id':'h1','effect':{'points':" S53 "}", "'id':'h2','effect':{'points':1}"},
     {.basket = B_CAFE},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.h2",
     "rule h2: the points or credit it gives would exceed 2^53"},
    {"points_per up to 2^53",
     {"'id':'pp','effect':{'points_per':{'points':2,'per_minor':1}}"},
     {.amount = 4503599627370496},
     {APPLIED("pp", 4503599627370496, MAX53, 0)},
     0,
     NULL,
     NULL},
    {"points_per above 2^53",
     {"'id':'pp','effect':{'points_per':{'points':2,'per_minor':1}}"},
     {.amount = 4503599627370497},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.pp",
     "rule pp: the points or credit it gives would exceed 2^53"},
    {"cashback up to 2^53",
     {"'id':'cb','effect':{'cashback_percent':'100'}"},
     {.amount = MAX53},
     {APPLIED("cb", MAX53, 0, MAX53)},
     0,
     NULL,
     NULL},
    {"cashback above 2^53",
     {"'id':'cb','effect':{'cashback_percent':'100'}"},
     {.amount = MAX53 + 1},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.cb",
     "rule cb: "},
    {"two cashback rules above 2^53",
     {"'id':'cb1','effect':{'cashback_percent':'50'}",
      "'id':'cb2','effect':{'cashback_percent':'50.0001'}"},
     {.amount = MAX53},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.cb2",
     "rule cb2: "},
    {"multiply up to 2^53",
     {"'id':'f','effect':{'points':4503599627370496}",
      "'id':'x2','effect':{'multiply':'2'},'priority':1"},
     {.basket = B_CAFE},
     {APPLIED("f", 2900, MAX53 / 2, 0), APPLIED("x2", 2900, MAX53 / 2, 0)},
     0,
     NULL,
     NULL},
    {"multiply above 2^53 in total",
     {"'id':'f','effect':{'points':4503599627370497}",
      "'id':'x2','effect':{'multiply':'2'},'priority':1"},
     {.basket = B_CAFE},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.x2",
     "rule x2: "},
    {"multiply above 2^53 by itself",
     {"'id':'f','effect':{'points':17592186044416}",
      "'id':'x1000','effect':{'multiply':'1000'},'priority':1"},
     {.basket = B_CAFE},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.x1000",
     "rule x1000: "},
    {"items whose amounts add up beyond 63 bits: every point still goes to an item",
     {"'id':'base','effect':{'points_per':{'points':1,'per_minor':1}}",
      "'id':'x2','effect':{'multiply':'2'},'priority':1"},
     {.basket = B_BIG, .amount = 2},
     {APPLIED("base", 2, 2, 0), APPLIED("x2", 2, 2, 0)},
     0,
     NULL,
     NULL},
    {"eligible amount of an items filter overflows",
     {"'id':'big','effect':{'points':1},'items':'item.category == \\'big\\''"},
     {.basket = B_BIG, .amount = 1},
     {{NULL, 0, 0, 0, 0, 0, 0, NULL}},
     LY_EREFUSED,
     "rules.big",
     "rule big: "},

    /* a realistic program */
    {"a program: web purchase by a gold card holder on a Saturday",
     {"'id':'base','effect':{'points_per':{'points':1}}",
      "'id':'weekend','effect':{'multiply':'2'},'priority':10,"
      "'when':'weekday(event.occurred_at) >= 6'",
      "'id':'coffee','effect':{'multiply':'3'},'priority':20,'items':'item.category == "
      "\\'coffee\\''",
      "'id':'card2','effect':{'cashback_percent':'2'},'when':'member.attributes.card == \\'yes\\''",
      "'id':'wine-none','effect':{'points':1},'items':'item.category == \\'spirits\\''",
      "'id':'gold','effect':{'multiply':'1.25'},'priority':100,'when':'member.tier == \\'gold\\''",
      "'id':'review','on':'custom:review','effect':{'points':20},'cap':{'count':1}",
      "'id':'old','effect':{'points':500},'active_to':'2026-12-31T23:59:59Z'",
      "'id':'promo','effect':{'points':300},'priority':90,'stack':false,"
      "'when':'event.channel == \\'web\\''"},
     {.basket = B_GROCERY, .at = SAT, .channel = "web", .tier = "gold", .card = "yes"},
     /* 36 -> x2 on everything 72 (coffee 18) -> coffee x3 +36 -> 108; +300 -> 408; x1.25 +102 */
     {APPLIED("base", 3695, 36, 0), APPLIED("weekend", 3695, 36, 0), APPLIED("coffee", 899, 36, 0),
      APPLIED("card2", 3695, 0, 73), NOT("wine-none", "no item passes items"),
      APPLIED("gold", 3695, 102, 0), IGNORED("review"),
      NOT("old", "ended at 2026-12-31T23:59:59.000Z"), APPLIED("promo", 3695, 300, 0)},
     0,
     NULL,
     NULL},
};

static ly_expr_ctx event_ctx(const struct evspec *s, const ly_rule_event *ev)
{
    static const char *const card_name[] = {"card"};
    static const char *card_value[1];
    card_value[0] = s->card;
    ly_expr_ctx c = {
        .event_type = ev->type,
        .event_currency = "USD",
        .event_channel = s->channel ? s->channel : "store",
        .event_store = "S-001",
        .event_amount = ev->amount,
        .event_occurred_at = ev->occurred_at,
        .member_tier = s->tier ? s->tier : "silver",
        .member_status = "active",
        .member_birthdate = "1990-05-17",
        .member_created_at = at("2025-06-15T10:00:00Z"),
        .member_lifetime_spend = 120000,
        .member_purchase_count = 12,
        .member_days_since_last_purchase = 3,
        .member_attr_names = card_name,
        .member_attr_values = card_value,
        .nmember_attrs = s->card ? 1 : 0,
        .now = ev->occurred_at,
    };
    return c;
}

static ly_rule_event make_event(const struct evspec *s)
{
    const struct basket *b = &baskets[s->basket];
    ly_rule_event ev = {
        .type = s->type ? s->type : "purchase",
        .occurred_at = at(s->at ? s->at : WED),
        .items = b->n ? b->items : NULL,
        .nitems = b->n,
    };
    ev.amount = s->amount;
    if (!ev.amount)
        for (size_t k = 0; k < b->n; k++)
            ev.amount += b->items[k].amount;
    ev.ctx = event_ctx(s, &ev);
    return ev;
}

static int reason_matches(const char *got, const char *want)
{
    size_t n = strlen(want);
    if (n && want[n - 1] == '*')
        return strncmp(got, want, n - 1) == 0;
    return strcmp(got, want) == 0;
}

/* Evaluates the rules in a scratch area of exactly the size asked for, filled
 * with garbage first; each rule is compiled from members laid over
 * {'on':'purchase'}. */
static int run_rules(const char *const *srcs, size_t n, const ly_rule_event *ev, ly_rule **rules,
                     ly_rule_outcome *out, ly_error *err)
{
    for (size_t i = 0; i < n; i++)
        rules[i] = compile_ok(srcs[i], "{'on':'purchase'}");
    ly_rules_sort(rules, n);
    size_t size = ly_rules_scratch_size(n, ev->nitems);
    void *scratch = malloc(size);
    assert_non_null(scratch);
    memset(scratch, 0xa5, size);
    int rc = ly_rules_eval(rules, n, ev, scratch, out, err);
    free(scratch);
    return rc;
}

static void test_eval_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(scases); k++) {
        const struct scase *c = &scases[k];
        size_t n = 0;
        while (n < N_ELEMS(c->rules) && c->rules[n])
            n++;
        ly_rule_event ev = make_event(&c->ev);
        ly_rule *rules[N_ELEMS(c->rules)];
        ly_rule_outcome out[N_ELEMS(c->rules)];
        ly_error err;
        memset(&err, 0, sizeof err);
        int rc = run_rules(c->rules, n, &ev, rules, out, &err);
        if (rc != c->rc)
            fail_msg("%s: rc %d (%s %s %s), want %d", c->name, rc, err.code, err.field, err.message,
                     c->rc);
        if (rc != 0) {
            if (strcmp(err.code, "rule_error") != 0 || strcmp(err.field, c->field) != 0 ||
                strncmp(err.message, c->msg, strlen(c->msg)) != 0)
                fail_msg("%s: error %s [%s] \"%s\", want rule_error [%s] \"%s...\"", c->name,
                         err.code, err.field, err.message, c->field, c->msg);
        } else {
            size_t nwant = 0;
            for (; nwant < N_ELEMS(c->want) && c->want[nwant].id; nwant++) {
                const struct want *w = &c->want[nwant];
                const ly_rule_outcome *o = NULL;
                for (size_t i = 0; i < n; i++)
                    if (strcmp(out[i].rule->id, w->id) == 0)
                        o = &out[i];
                if (!o)
                    fail_msg("%s: no outcome for %s", c->name, w->id);
                if (o->considered != w->considered || o->matched != w->matched ||
                    o->applied != w->applied || o->eligible_amount != w->eligible ||
                    o->points != w->points || o->credit != w->credit ||
                    (w->reason && !reason_matches(o->reason, w->reason)))
                    fail_msg("%s: rule %s: considered %d matched %d applied %d eligible %lld "
                             "points %lld credit %lld reason \"%s\"; want %d %d %d %lld %lld "
                             "%lld \"%s\"",
                             c->name, w->id, o->considered, o->matched, o->applied,
                             (long long)o->eligible_amount, (long long)o->points,
                             (long long)o->credit, o->reason, w->considered, w->matched, w->applied,
                             (long long)w->eligible, (long long)w->points, (long long)w->credit,
                             w->reason ? w->reason : "");
                if (strlen(o->reason) >= sizeof o->reason)
                    fail_msg("%s: reason not terminated", c->name);
            }
            if (nwant != n)
                fail_msg("%s: %zu rules, %zu outcomes checked", c->name, n, nwant);
            /* Outcomes come in evaluation order, each naming its rule. */
            for (size_t i = 0; i < n; i++)
                assert_ptr_equal(out[i].rule, rules[i]);
        }
        for (size_t i = 0; i < n; i++)
            ly_rule_free(rules[i]);
    }
}

/* points_per alone: every rounding mode on a range of amounts. */
static const struct rcase {
    int64_t points, per_minor, amount;
    int64_t down, nearest, up; /* -1: refused */
} rcases[] = {
    {1, 100, 2900, 29, 29, 29},
    {1, 100, 2950, 29, 30, 30},
    {1, 100, 2949, 29, 29, 30},
    {1, 100, 2951, 29, 30, 30},
    {1, 100, 2999, 29, 30, 30},
    {1, 100, 3000, 30, 30, 30},
    {1, 100, 1, 0, 0, 1},
    {1, 100, 49, 0, 0, 1},
    {1, 100, 50, 0, 1, 1},
    {1, 100, 99, 0, 1, 1},
    {1, 100, 100, 1, 1, 1},
    {1, 100, 101, 1, 1, 2},
    {3, 1000, 2900, 8, 9, 9},
    {3, 1000, 2833, 8, 8, 9},
    {3, 1000, 2834, 8, 9, 9},
    {2, 3, 10, 6, 7, 7},
    {2, 3, 9, 6, 6, 6},
    {2, 3, 8, 5, 5, 6},
    {5, 1, 12345, 61725, 61725, 61725},
    {10, 100, 155, 15, 16, 16},
    {1, 1000, 499, 0, 0, 1},
    {1, 1000, 500, 0, 1, 1},
    {7, 20, 3, 1, 1, 2},
    {1, 2, 1, 0, 1, 1},
    {1, MAX53, MAX53, 1, 1, 1},
    {1, MAX53, MAX53 / 2, 0, 1, 1},
    {1, MAX53, MAX53 / 2 - 1, 0, 0, 1},
    {MAX53, MAX53, MAX53, MAX53, MAX53, MAX53},
    {MAX53, 100, 100, MAX53, MAX53, MAX53},
    {MAX53, 100, 101, -1, -1, -1},
    {MAX53, 100, 1, 90071992547409, 90071992547410, 90071992547410},
    {2, 1, MAX53 / 2, MAX53, MAX53, MAX53},
    {2, 1, MAX53 / 2 + 1, -1, -1, -1},
    {1, 1, MAX53, MAX53, MAX53, MAX53},
    {1, 1, MAX53 + 1, -1, -1, -1},
    {1, 100, INT64_MAX, -1, -1, -1},
    {1, 100, MAX53 * 100 + 49, MAX53, MAX53, -1},
    {1, 100, MAX53 * 100 + 50, MAX53, -1, -1},
};

static void test_eval_rounding(void **state)
{
    (void)state;
    static const char *const modes[] = {"down", "nearest", "up"};
    for (size_t k = 0; k < N_ELEMS(rcases); k++) {
        const struct rcase *c = &rcases[k];
        const int64_t want[] = {c->down, c->nearest, c->up};
        for (int m = 0; m < 3; m++) {
            char src[256];
            snprintf(src, sizeof src,
                     "'id':'pp','effect':{'points_per':{'points':%lld,'per_minor':%lld,"
                     "'rounding':'%s'}}",
                     (long long)c->points, (long long)c->per_minor, modes[m]);
            const char *srcs[] = {src};
            struct evspec s = {.amount = c->amount};
            /* Spread over one item too: the item gets every point. */
            ly_expr_item it = {"X", "x", 1, c->amount, c->amount, NULL, 0};
            for (int with_item = 0; with_item < 2; with_item++) {
                ly_rule_event ev = make_event(&s);
                if (with_item) {
                    ev.items = &it;
                    ev.nitems = 1;
                }
                ly_rule *r;
                ly_rule_outcome o;
                ly_error err = {0};
                int rc = run_rules(srcs, 1, &ev, &r, &o, &err);
                if (want[m] < 0) {
                    if (rc != LY_EREFUSED || strcmp(err.field, "rules.pp") != 0)
                        fail_msg("case %zu %s: rc %d, want refused", k, modes[m], rc);
                } else if (rc != 0 || o.points != want[m] || o.eligible_amount != c->amount) {
                    fail_msg("case %zu %lld per %lld on %lld %s: rc %d points %lld, want %lld", k,
                             (long long)c->points, (long long)c->per_minor, (long long)c->amount,
                             modes[m], rc, (long long)o.points, (long long)want[m]);
                }
                ly_rule_free(r);
            }
        }
    }
}

/* Cashback rounds down, whatever the percentage. */
static const struct cbcase {
    const char *percent;
    int64_t amount, credit;
} cbcases[] = {
    {"2", 2900, 58},
    {"2", 2949, 58},
    {"2", 2950, 59},
    {"2", 49, 0},
    {"2", 50, 1},
    {"5", 2900, 145},
    {"5", 19, 0},
    {"5", 20, 1},
    {"5", 39, 1},
    {"0.5", 2900, 14},
    {"0.5", 199, 0},
    {"0.5", 200, 1},
    {"1.5", 1000, 15},
    {"1.5", 999, 14},
    {"12.3456", 10000, 1234},
    {"12.3456", 1000000, 123456},
    {"99.9999", 1000000, 999999},
    {"100", 1, 1},
    {"33.3333", 3, 0},
    {"33.3334", 3, 1},
    {"0.0001", 1000000, 1},
    {"0.0001", 999999, 0},
    {"10", 0, 0},
    {"50", MAX53, MAX53 / 2},
};

static void test_eval_cashback(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(cbcases); k++) {
        char src[128];
        snprintf(src, sizeof src, "'id':'cb','effect':{'cashback_percent':'%s'}",
                 cbcases[k].percent);
        const char *srcs[] = {src};
        struct evspec s = {.amount = cbcases[k].amount, .type = "purchase"};
        ly_rule_event ev = make_event(&s);
        ev.amount = cbcases[k].amount; /* 0 is 0 here */
        ly_rule *r;
        ly_rule_outcome o;
        ly_error err = {0};
        int rc = run_rules(srcs, 1, &ev, &r, &o, &err);
        if (rc != 0 || o.credit != cbcases[k].credit || o.points != 0)
            fail_msg("case %zu: %s%% of %lld: rc %d credit %lld, want %lld", k, cbcases[k].percent,
                     (long long)cbcases[k].amount, rc, (long long)o.credit,
                     (long long)cbcases[k].credit);
        ly_rule_free(r);
    }
}

/* A basket of many items and a chain of multipliers with filters: the item
 * multipliers' bases always add up to what the rules gave so far. */
static void test_eval_spreading(void **state)
{
    (void)state;
    enum { NI = 7 };
    static const char *const cats[NI] = {"a", "b", "c", "a", "b", "c", "a"};
    static const int64_t amounts[NI] = {101, 333, 7, 999, 1, 250, 4321};
    ly_expr_item items[NI];
    int64_t total = 0;
    for (int k = 0; k < NI; k++) {
        items[k] = (ly_expr_item){"SKU", cats[k], 1, amounts[k], amounts[k], NULL, 0};
        total += amounts[k];
    }
    /* Rules: base points, then per category x1.7, x2.3 and x1.1, then each
     * category once more by x2 (so that its points are measured), then every
     * category together by x2. */
    const char *srcs[] = {
        "'id':'00-base','effect':{'points_per':{'points':7,'per_minor':100,'rounding':'up'}}",
        "'id':'10-a','priority':10,'effect':{'multiply':'1.7'},'items':'item.category == \\'a\\''",
        "'id':'11-b','priority':10,'effect':{'multiply':'2.3'},'items':'item.category == \\'b\\''",
        "'id':'12-all','priority':11,'effect':{'multiply':'1.1'}",
        "'id':'20-a','priority':20,'effect':{'multiply':'2'},'items':'item.category == \\'a\\''",
        "'id':'21-b','priority':20,'effect':{'multiply':'2'},'items':'item.category == \\'b\\''",
        "'id':'22-c','priority':20,'effect':{'multiply':'2'},'items':'item.category == \\'c\\''",
        "'id':'30-all','priority':30,'effect':{'multiply':'2'},'items':'item.amount >= 0'",
    };
    enum { NR = N_ELEMS(srcs) };
    struct evspec s = {.amount = total};
    ly_rule_event ev = make_event(&s);
    ev.items = items;
    ev.nitems = NI;
    ly_rule *rules[NR];
    ly_rule_outcome out[NR];
    ly_error err = {0};
    assert_int_equal(run_rules(srcs, NR, &ev, rules, out, &err), 0);
    int64_t so_far = 0;
    for (int i = 0; i < 4; i++)
        so_far += out[i].points;
    /* x2 on each category gives that category's points; together, all of them. */
    int64_t by_cat = out[4].points + out[5].points + out[6].points;
    assert_int_equal(by_cat, so_far);
    assert_int_equal(out[7].points, 2 * so_far);
    assert_int_equal(out[0].points, (total * 7 + 99) / 100);
    for (int i = 0; i < NR; i++) {
        assert_true(out[i].applied);
        ly_rule_free(rules[i]);
    }
}

static void test_eval_arguments(void **state)
{
    (void)state;
    ly_rule *r = compile_ok("{'id':'r','on':'purchase','effect':{'points':5}}", NULL);
    ly_rule *rules[] = {r};
    ly_rule_outcome out[1];
    int64_t scratch[16];
    struct evspec s = {.basket = B_CAFE};
    ly_rule_event ev = make_event(&s);
    ly_error err = {0};
    assert_true(ly_rules_scratch_size(1, 3) <= sizeof scratch);
    assert_int_equal(ly_rules_eval(rules, 1, NULL, scratch, out, &err), LY_EINVAL);
    assert_int_equal(ly_rules_eval(rules, 1, &ev, NULL, out, &err), LY_EINVAL);
    assert_int_equal(ly_rules_eval(NULL, 1, &ev, scratch, out, &err), LY_EINVAL);
    assert_int_equal(ly_rules_eval(rules, 1, &ev, scratch, NULL, &err), LY_EINVAL);
    ly_rule_event bad = ev;
    bad.items = NULL;
    assert_int_equal(ly_rules_eval(rules, 1, &bad, scratch, out, &err), LY_EINVAL);
    /* No rules at all, and no error structure. */
    assert_int_equal(ly_rules_eval(NULL, 0, &ev, scratch, NULL, NULL), 0);
    assert_int_equal(ly_rules_eval(rules, 1, &ev, scratch, out, NULL), 0);
    assert_int_equal(out[0].points, 5);
    assert_int_equal(ly_rules_eval(rules, 1, NULL, scratch, out, NULL), LY_EINVAL);
    /* The scratch size grows with rules and items. */
    assert_true(ly_rules_scratch_size(0, 0) > 0);
    assert_true(ly_rules_scratch_size(2, 5) > ly_rules_scratch_size(1, 5));
    assert_true(ly_rules_scratch_size(1, 6) > ly_rules_scratch_size(1, 5));
    assert_true(ly_rules_scratch_size(20, 1000) >= 3 * 1001 * sizeof(int64_t) + 20 * 1000);
    /* The same rules and scratch again give the same outcome. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ly_rules_eval(rules, 1, &ev, scratch, out, &err), 0);
        assert_int_equal(out[0].points, 5);
        assert_true(out[0].applied);
    }
    ly_rule_free(r);
}

/* Evaluation reads the event's time from the event, the names from ctx. */
static void test_eval_zone(void **state)
{
    (void)state;
    const ly_tz *ny;
    assert_int_equal(ly_tz_get("America/New_York", &ny), 0);
    const char *srcs[] = {
        "'id':'sat','effect':{'points':5},'when':'weekday(event.occurred_at) == 6'"};
    /* Saturday 02:00 UTC is still Friday in New York. */
    struct evspec s = {.basket = B_CAFE, .at = "2027-01-09T02:00:00Z"};
    ly_rule_event ev = make_event(&s);
    ly_rule *r;
    ly_rule_outcome o;
    ly_error err = {0};
    assert_int_equal(run_rules(srcs, 1, &ev, &r, &o, &err), 0);
    assert_true(o.applied);
    ly_rule_free(r);
    ev.ctx.tz = ny;
    assert_int_equal(run_rules(srcs, 1, &ev, &r, &o, &err), 0);
    assert_false(o.matched);
    assert_string_equal(o.reason, "false: weekday(event.occurred_at) == 6");
    ly_rule_free(r);
}

/* ---- cap periods ---- */

static const struct pcase {
    enum ly_period p;
    const char *zone; /* NULL: UTC */
    const char *t, *start;
} pcases[] = {
    /* UTC */
    {LY_PERIOD_DAY, NULL, "2027-01-06T09:30:00Z", "2027-01-06T00:00:00Z"},
    {LY_PERIOD_DAY, NULL, "2027-01-06T00:00:00Z", "2027-01-06T00:00:00Z"},
    {LY_PERIOD_DAY, NULL, "2027-01-06T23:59:59.999Z", "2027-01-06T00:00:00Z"},
    {LY_PERIOD_DAY, NULL, "1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"},
    {LY_PERIOD_DAY, NULL, "1969-12-31T12:00:00Z", "1969-12-31T00:00:00Z"},
    {LY_PERIOD_DAY, NULL, "2028-02-29T12:00:00Z", "2028-02-29T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "2027-01-06T09:30:00Z", "2027-01-04T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "2027-01-04T00:00:00Z", "2027-01-04T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "2027-01-03T23:59:59.999Z", "2026-12-28T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "2027-01-10T23:59:59Z", "2027-01-04T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "2027-01-01T12:00:00Z", "2026-12-28T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "2026-01-01T00:00:00Z", "2025-12-29T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "2025-12-31T18:00:00Z", "2025-12-29T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "2028-01-01T00:00:00Z", "2027-12-27T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "2028-03-01T00:00:00Z", "2028-02-28T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "1970-01-01T00:00:00Z", "1969-12-29T00:00:00Z"},
    {LY_PERIOD_WEEK, NULL, "1969-12-31T12:00:00Z", "1969-12-29T00:00:00Z"},
    {LY_PERIOD_MONTH, NULL, "2027-01-31T23:59:59.999Z", "2027-01-01T00:00:00Z"},
    {LY_PERIOD_MONTH, NULL, "2027-02-01T00:00:00Z", "2027-02-01T00:00:00Z"},
    {LY_PERIOD_MONTH, NULL, "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z"},
    {LY_PERIOD_MONTH, NULL, "2027-12-31T23:59:59Z", "2027-12-01T00:00:00Z"},
    {LY_PERIOD_MONTH, NULL, "1969-12-31T23:59:59Z", "1969-12-01T00:00:00Z"},
    {LY_PERIOD_YEAR, NULL, "2027-06-15T12:00:00Z", "2027-01-01T00:00:00Z"},
    {LY_PERIOD_YEAR, NULL, "2027-12-31T23:59:59.999Z", "2027-01-01T00:00:00Z"},
    {LY_PERIOD_YEAR, NULL, "2028-01-01T00:00:00Z", "2028-01-01T00:00:00Z"},
    {LY_PERIOD_YEAR, NULL, "1969-06-01T00:00:00Z", "1969-01-01T00:00:00Z"},
    {LY_PERIOD_LIFETIME, NULL, "2027-06-15T12:00:00Z", NULL},
    {LY_PERIOD_LIFETIME, NULL, "1960-06-15T12:00:00Z", NULL},
    /* New York, spring forward: 2027-03-14 02:00 EST -> 03:00 EDT */
    {LY_PERIOD_DAY, "America/New_York", "2027-03-14T12:00:00-04:00", "2027-03-14T00:00:00-05:00"},
    {LY_PERIOD_DAY, "America/New_York", "2027-03-14T01:59:59-05:00", "2027-03-14T00:00:00-05:00"},
    {LY_PERIOD_DAY, "America/New_York", "2027-03-14T03:00:00-04:00", "2027-03-14T00:00:00-05:00"},
    {LY_PERIOD_DAY, "America/New_York", "2027-03-14T23:59:59-04:00", "2027-03-14T00:00:00-05:00"},
    {LY_PERIOD_DAY, "America/New_York", "2027-03-15T00:30:00-04:00", "2027-03-15T00:00:00-04:00"},
    {LY_PERIOD_DAY, "America/New_York", "2027-03-13T23:30:00-05:00", "2027-03-13T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2027-03-14T12:00:00-04:00", "2027-03-08T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2027-03-15T10:00:00-04:00", "2027-03-15T00:00:00-04:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2027-03-21T23:59:59-04:00", "2027-03-15T00:00:00-04:00"},
    {LY_PERIOD_MONTH, "America/New_York", "2027-03-31T12:00:00-04:00", "2027-03-01T00:00:00-05:00"},
    {LY_PERIOD_MONTH, "America/New_York", "2027-04-01T00:00:00-04:00", "2027-04-01T00:00:00-04:00"},
    {LY_PERIOD_MONTH, "America/New_York", "2027-04-01T03:59:59Z", "2027-03-01T00:00:00-05:00"},
    /* New York, fall back: 2027-11-07 02:00 EDT -> 01:00 EST */
    {LY_PERIOD_DAY, "America/New_York", "2027-11-07T01:30:00-04:00", "2027-11-07T00:00:00-04:00"},
    {LY_PERIOD_DAY, "America/New_York", "2027-11-07T01:30:00-05:00", "2027-11-07T00:00:00-04:00"},
    {LY_PERIOD_DAY, "America/New_York", "2027-11-07T23:00:00-05:00", "2027-11-07T00:00:00-04:00"},
    {LY_PERIOD_DAY, "America/New_York", "2027-11-08T00:00:00-05:00", "2027-11-08T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2027-11-07T12:00:00-05:00", "2027-11-01T00:00:00-04:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2027-11-10T12:00:00-05:00", "2027-11-08T00:00:00-05:00"},
    {LY_PERIOD_MONTH, "America/New_York", "2027-11-20T12:00:00-05:00", "2027-11-01T00:00:00-04:00"},
    {LY_PERIOD_MONTH, "America/New_York", "2027-12-01T04:59:59Z", "2027-11-01T00:00:00-04:00"},
    {LY_PERIOD_MONTH, "America/New_York", "2027-12-01T05:00:00Z", "2027-12-01T00:00:00-05:00"},
    {LY_PERIOD_YEAR, "America/New_York", "2027-07-04T12:00:00-04:00", "2027-01-01T00:00:00-05:00"},
    /* New York, the year's end: still the old year for five hours of UTC */
    {LY_PERIOD_DAY, "America/New_York", "2027-01-01T03:00:00Z", "2026-12-31T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2027-01-01T03:00:00Z", "2026-12-28T00:00:00-05:00"},
    {LY_PERIOD_MONTH, "America/New_York", "2027-01-01T03:00:00Z", "2026-12-01T00:00:00-05:00"},
    {LY_PERIOD_YEAR, "America/New_York", "2027-01-01T03:00:00Z", "2026-01-01T00:00:00-05:00"},
    {LY_PERIOD_YEAR, "America/New_York", "2027-01-01T04:59:59.999Z", "2026-01-01T00:00:00-05:00"},
    {LY_PERIOD_YEAR, "America/New_York", "2027-01-01T05:00:00Z", "2027-01-01T00:00:00-05:00"},
    {LY_PERIOD_DAY, "America/New_York", "2027-01-01T05:00:00Z", "2027-01-01T00:00:00-05:00"},
    /* the Monday of an ISO week across the year boundary, in New York */
    {LY_PERIOD_WEEK, "America/New_York", "2027-01-01T05:00:00Z", "2026-12-28T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2027-01-03T23:59:59-05:00", "2026-12-28T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2027-01-04T04:59:59Z", "2026-12-28T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2027-01-04T05:00:00Z", "2027-01-04T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2026-01-01T12:00:00-05:00", "2025-12-29T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2030-12-31T12:00:00-05:00", "2030-12-30T00:00:00-05:00"},
    {LY_PERIOD_WEEK, "America/New_York", "2031-01-05T22:00:00-05:00", "2030-12-30T00:00:00-05:00"},
    {LY_PERIOD_LIFETIME, "America/New_York", "2027-01-01T03:00:00Z", NULL},
    /* a zone whose clocks skipped midnight: the day starts at 01:00 */
    {LY_PERIOD_DAY, "America/Sao_Paulo", "2018-11-04T12:00:00-02:00", "2018-11-04T01:00:00-02:00"},
    {LY_PERIOD_DAY, "America/Sao_Paulo", "2018-11-03T23:00:00-03:00", "2018-11-03T00:00:00-03:00"},
    /* half-hour offsets, and the first zone into the new year */
    {LY_PERIOD_DAY, "Asia/Kolkata", "2027-01-06T20:00:00Z", "2027-01-07T00:00:00+05:30"},
    {LY_PERIOD_YEAR, "Pacific/Kiritimati", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00+14:00"},
    {LY_PERIOD_YEAR, "Pacific/Kiritimati", "2026-12-31T09:59:59Z", "2026-01-01T00:00:00+14:00"},
    {LY_PERIOD_WEEK, "Pacific/Kiritimati", "2027-01-03T10:00:00Z", "2027-01-04T00:00:00+14:00"},
};

static void test_period_start(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(pcases); k++) {
        const struct pcase *c = &pcases[k];
        const ly_tz *z = NULL;
        if (c->zone && ly_tz_get(c->zone, &z) != 0)
            fail_msg("no zone %s", c->zone);
        int64_t want = c->start ? at(c->start) : 0;
        int64_t got = ly_period_start(c->p, z, at(c->t));
        if (got != want) {
            char g[LY_TIME_BUFSZ], w[LY_TIME_BUFSZ];
            ly_time_format(got, g);
            ly_time_format(want, w);
            fail_msg("case %zu %s %s %s: %s, want %s", k, ly_period_name(c->p),
                     c->zone ? c->zone : "UTC", c->t, g, w);
        }
        /* The start is in the period: starting there gives the same start. */
        assert_int_equal(ly_period_start(c->p, z, got), got);
    }
    /* UTC given by name is UTC. */
    const ly_tz *utc;
    assert_int_equal(ly_tz_get("UTC", &utc), 0);
    assert_int_equal(ly_period_start(LY_PERIOD_WEEK, utc, at("2027-01-06T09:30:00Z")),
                     at("2027-01-04T00:00:00Z"));
}

static void test_period_names(void **state)
{
    (void)state;
    assert_string_equal(ly_period_name(LY_PERIOD_DAY), "day");
    assert_string_equal(ly_period_name(LY_PERIOD_WEEK), "week");
    assert_string_equal(ly_period_name(LY_PERIOD_MONTH), "month");
    assert_string_equal(ly_period_name(LY_PERIOD_YEAR), "year");
    assert_string_equal(ly_period_name(LY_PERIOD_LIFETIME), "lifetime");
    assert_null(ly_period_name((enum ly_period)5));
    assert_null(ly_period_name((enum ly_period) - 1));
}

/* ---- caps ---- */

static const struct capcase {
    int64_t points, credit, count; /* the cap */
    int64_t up, uc, un;            /* used */
    int64_t p, c;                  /* given */
    int fires;
    int64_t want_p, want_c;
} capcases[] = {
    /* points */
    {500, 0, 0, 0, 0, 0, 100, 0, 1, 100, 0},
    {500, 0, 0, 400, 0, 0, 100, 0, 1, 100, 0},
    {500, 0, 0, 450, 0, 0, 100, 0, 1, 50, 0},
    {500, 0, 0, 500, 0, 0, 100, 0, 1, 0, 0},
    {500, 0, 0, 600, 0, 0, 100, 0, 1, 0, 0},
    {500, 0, 0, 0, 0, 0, 500, 0, 1, 500, 0},
    {500, 0, 0, 0, 0, 0, 501, 0, 1, 500, 0},
    {500, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0},
    {500, 0, 0, 499, 0, 99, 10, 0, 1, 1, 0},
    {1, 0, 0, 0, 0, 0, MAX53, 0, 1, 1, 0},
    {MAX53, 0, 0, MAX53 - 1, 0, 0, MAX53, 0, 1, 1, 0},
    /* points caps leave credit alone, credit caps leave points alone */
    {500, 0, 0, 500, 0, 0, 100, 70, 1, 0, 70},
    {0, 1000, 0, 0, 0, 0, 30, 100, 1, 30, 100},
    /* credit */
    {0, 1000, 0, 0, 900, 0, 0, 145, 1, 0, 100},
    {0, 1000, 0, 0, 1000, 0, 0, 145, 1, 0, 0},
    {0, 1000, 0, 0, 2000, 0, 0, 145, 1, 0, 0},
    {0, 1000, 0, 0, 0, 0, 0, 1000, 1, 0, 1000},
    /* count */
    {0, 0, 3, 0, 0, 0, 100, 0, 1, 100, 0},
    {0, 0, 3, 0, 0, 2, 100, 0, 1, 100, 0},
    {0, 0, 3, 0, 0, 3, 100, 0, 0, 0, 0},
    {0, 0, 3, 0, 0, 4, 100, 50, 0, 0, 0},
    {0, 0, 1, 0, 0, 1, 0, 50, 0, 0, 0},
    {0, 0, 1, 0, 0, 0, 0, 50, 1, 0, 50},
    /* count and points together */
    {500, 0, 3, 450, 0, 2, 100, 0, 1, 50, 0},
    {500, 0, 3, 450, 0, 3, 100, 0, 0, 0, 0},
    {500, 0, 3, 500, 0, 1, 100, 0, 1, 0, 0},
    {0, 1000, 2, 0, 999, 1, 0, 5, 1, 0, 1},
    {0, 1000, 2, 0, 999, 2, 0, 5, 0, 0, 0},
};

static void test_cap_apply(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_ELEMS(capcases); k++) {
        const struct capcase *c = &capcases[k];
        ly_rule_cap cap = {.per_rule = (int)(k % 2),
                           .period = LY_PERIOD_DAY,
                           .points = c->points,
                           .credit = c->credit,
                           .count = c->count};
        int64_t p = c->p, cr = c->c;
        int fires = ly_rule_cap_apply(&cap, c->up, c->uc, c->un, &p, &cr);
        if (fires != c->fires || p != c->want_p || cr != c->want_c)
            fail_msg("case %zu: fires %d points %lld credit %lld, want %d %lld %lld", k, fires,
                     (long long)p, (long long)cr, c->fires, (long long)c->want_p,
                     (long long)c->want_c);
    }
}

/* Caps compiled from JSON, applied one after the other as the engine does. */
static void test_cap_compiled(void **state)
{
    (void)state;
    ly_rule *r =
        compile_ok("'cap':[{'points':500,'period':'day'},{'count':2,'per':'rule'}]", compile_base);
    int64_t p = 400, c = 0;
    assert_int_equal(ly_rule_cap_apply(&r->caps[0], 300, 0, 1, &p, &c), 1);
    assert_int_equal(p, 200);
    assert_int_equal(ly_rule_cap_apply(&r->caps[1], 0, 0, 1, &p, &c), 1);
    assert_int_equal(p, 200);
    assert_int_equal(ly_rule_cap_apply(&r->caps[1], 0, 0, 2, &p, &c), 0);
    assert_int_equal(p, 0);
    ly_rule_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_errors), cmocka_unit_test(test_compile_effects),
        cmocka_unit_test(test_compile_caps),   cmocka_unit_test(test_compile_fields),
        cmocka_unit_test(test_compile_canon),  cmocka_unit_test(test_compile_long_expression),
        cmocka_unit_test(test_decimal_parse),  cmocka_unit_test(test_sort),
        cmocka_unit_test(test_eval_table),     cmocka_unit_test(test_eval_rounding),
        cmocka_unit_test(test_eval_cashback),  cmocka_unit_test(test_eval_spreading),
        cmocka_unit_test(test_eval_arguments), cmocka_unit_test(test_eval_zone),
        cmocka_unit_test(test_period_start),   cmocka_unit_test(test_period_names),
        cmocka_unit_test(test_cap_apply),      cmocka_unit_test(test_cap_compiled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
