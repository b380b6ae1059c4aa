/* The OpenAPI 3.0 description, built once at start from the route table (so
 * it lists exactly the routes that exist) and the schemas below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

static const char schemas[] =
    "{"
    "\"Error\":{\"type\":\"object\",\"required\":[\"error\"],\"properties\":{\"error\":{"
    "\"type\":\"object\",\"required\":[\"code\",\"message\"],\"properties\":{"
    "\"code\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"},"
    "\"field\":{\"type\":\"string\"}}}}},"
    "\"Member\":{\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"string\",\"example\":\"mem_1\"},"
    "\"external_id\":{\"type\":\"string\",\"nullable\":true},"
    "\"email\":{\"type\":\"string\",\"nullable\":true},"
    "\"phone\":{\"type\":\"string\",\"nullable\":true,\"description\":\"E.164\"},"
    "\"name\":{\"type\":\"string\",\"nullable\":true},"
    "\"birthdate\":{\"type\":\"string\",\"format\":\"date\",\"nullable\":true},"
    "\"attributes\":{\"type\":\"object\"},"
    "\"status\":{\"type\":\"string\",\"enum\":[\"active\",\"suspended\",\"erased\"]},"
    "\"cards\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"tier\":{\"type\":\"object\",\"nullable\":true},"
    "\"balances\":{\"type\":\"object\",\"properties\":{\"points\":{\"type\":\"integer\"},"
    "\"credit\":{\"type\":\"integer\"}}},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"updated_at\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
    "\"MemberList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Member\"}},\"next_cursor\":{\"type\":\"string\","
    "\"nullable\":true}}},"
    "\"MemberOrList\":{\"description\":\"a Member for a lookup (email, phone, card or "
    "external_id), a MemberList otherwise\",\"oneOf\":[{\"$ref\":\"#/components/schemas/Member\"},"
    "{\"$ref\":\"#/components/schemas/MemberList\"}]},"
    "\"MemberCreate\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"external_id\":{\"type\":\"string\"},\"email\":{\"type\":\"string\"},"
    "\"phone\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
    "\"birthdate\":{\"type\":\"string\",\"format\":\"date\"},\"attributes\":{\"type\":\"object\"},"
    "\"cards\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"referral_code\":{\"type\":\"string\"}}},"
    "\"MemberUpdate\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"external_id\":{\"type\":\"string\",\"nullable\":true},"
    "\"email\":{\"type\":\"string\",\"nullable\":true},"
    "\"phone\":{\"type\":\"string\",\"nullable\":true},"
    "\"name\":{\"type\":\"string\",\"nullable\":true},"
    "\"birthdate\":{\"type\":\"string\",\"format\":\"date\",\"nullable\":true},"
    "\"attributes\":{\"type\":\"object\",\"nullable\":true},"
    "\"status\":{\"type\":\"string\",\"enum\":[\"active\",\"suspended\"]}}},"
    "\"CardAttach\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"card\"],"
    "\"properties\":{\"card\":{\"type\":\"string\"}}},"
    "\"Program\":{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"currency\":{\"type\":\"string\"},"
    "\"timezone\":{\"type\":\"string\"},\"point_value_minor\":{\"type\":\"integer\"},"
    "\"earn\":{\"type\":\"object\",\"properties\":{\"points\":{\"type\":\"integer\"},"
    "\"per_minor\":{\"type\":\"integer\"},\"rounding\":{\"type\":\"string\","
    "\"enum\":[\"down\",\"nearest\",\"up\"]}}},"
    "\"pending_days\":{\"type\":\"integer\"},"
    "\"expiry\":{\"type\":\"object\",\"properties\":{\"policy\":{\"type\":\"string\","
    "\"enum\":[\"none\",\"rolling\",\"fixed\",\"inactivity\"]},\"days\":{\"type\":\"integer\"},"
    "\"months\":{\"type\":\"integer\"},\"month\":{\"type\":\"integer\"},"
    "\"day\":{\"type\":\"integer\"},\"end_of_month_after_months\":{\"type\":\"integer\"}}},"
    "\"on_return_spent\":{\"type\":\"string\",\"enum\":[\"negative\",\"clawback\"]},"
    "\"phone_country_code\":{\"type\":\"string\"},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"updated_at\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
    "\"ProgramUpdate\":{\"type\":\"object\",\"additionalProperties\":false,"
    "\"description\":\"any of Program's fields but created_at and updated_at\",\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"currency\":{\"type\":\"string\"},"
    "\"timezone\":{\"type\":\"string\"},\"point_value_minor\":{\"type\":\"integer\"},"
    "\"earn\":{\"type\":\"object\"},\"pending_days\":{\"type\":\"integer\"},"
    "\"expiry\":{\"type\":\"object\"},\"on_return_spent\":{\"type\":\"string\","
    "\"enum\":[\"negative\",\"clawback\"]},\"phone_country_code\":{\"type\":\"string\"}}},"
    "\"Key\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"key\":{\"type\":\"string\",\"nullable\":true,\"description\":\"only in the answer "
    "to its creation; null in a replay of it\"},"
    "\"scope\":{\"type\":\"string\",\"enum\":[\"admin\",\"pos\",\"partner\",\"read\"]},"
    "\"name\":{\"type\":\"string\",\"nullable\":true},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"revoked_at\":{\"type\":\"string\",\"format\":\"date-time\",\"nullable\":true}}},"
    "\"Event\":{\"type\":\"object\",\"required\":[\"type\"],\"properties\":{"
    "\"id\":{\"type\":\"string\"},\"type\":{\"type\":\"string\",\"example\":\"purchase\"},"
    "\"member\":{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"object\"}]},"
    "\"enroll\":{\"type\":\"boolean\"},"
    "\"occurred_at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"amount\":{\"type\":\"integer\"},\"currency\":{\"type\":\"string\"},"
    "\"channel\":{\"type\":\"string\"},\"store\":{\"type\":\"string\"},"
    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"sku\":{\"type\":\"string\"},\"category\":{\"type\":\"string\"},"
    "\"quantity\":{\"type\":\"integer\"},\"unit_price\":{\"type\":\"integer\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}},"
    "\"attributes\":{\"type\":\"object\"},\"original_event_id\":{\"type\":\"string\"}}},"
    "\"EventBatch\":{\"type\":\"object\",\"required\":[\"events\"],\"properties\":{"
    "\"events\":{\"type\":\"array\",\"maxItems\":1000,"
    "\"items\":{\"$ref\":\"#/components/schemas/Event\"}}}},"
    "\"Redemption\":{\"type\":\"object\",\"properties\":{\"points\":{\"type\":\"integer\"},"
    "\"credit\":{\"type\":\"integer\"}}},"
    "\"Adjustment\":{\"type\":\"object\",\"required\":[\"asset\",\"amount\",\"reason\"],"
    "\"properties\":{\"asset\":{\"type\":\"string\",\"enum\":[\"points\",\"credit\"]},"
    "\"amount\":{\"type\":\"integer\"},\"reason\":{\"type\":\"string\"}}},"
    "\"Transfer\":{\"type\":\"object\",\"required\":[\"from\",\"to\",\"points\"],"
    "\"properties\":{\"from\":{\"type\":\"string\"},\"to\":{\"type\":\"string\"},"
    "\"points\":{\"type\":\"integer\"},\"reason\":{\"type\":\"string\"}}},"
    "\"KeyCreate\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"scope\"],"
    "\"properties\":{\"scope\":{\"type\":\"string\",\"enum\":[\"admin\",\"pos\",\"partner\","
    "\"read\"]},\"name\":{\"type\":\"string\"}}},"
    "\"Rule\":{\"type\":\"object\",\"required\":[\"on\",\"effect\"],\"properties\":{"
    "\"id\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
    "\"description\":{\"type\":\"string\"},"
    "\"on\":{\"type\":\"string\",\"example\":\"purchase\"},"
    "\"when\":{\"type\":\"string\"},\"items\":{\"type\":\"string\"},"
    "\"effect\":{\"type\":\"object\",\"properties\":{"
    "\"points_per\":{\"type\":\"object\",\"properties\":{\"points\":{\"type\":\"integer\"},"
    "\"per_minor\":{\"type\":\"integer\"},\"rounding\":{\"type\":\"string\","
    "\"enum\":[\"down\",\"nearest\",\"up\"]}}},"
    "\"points\":{\"type\":\"integer\"},\"multiply\":{\"type\":\"string\"},"
    "\"cashback_percent\":{\"type\":\"string\"},\"grant_reward\":{\"type\":\"string\"}}},"
    "\"cap\":{\"oneOf\":[{\"type\":\"object\"},{\"type\":\"array\"}]},"
    "\"active_from\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"active_to\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"priority\":{\"type\":\"integer\"},\"stack\":{\"type\":\"boolean\"},"
    "\"enabled\":{\"type\":\"boolean\"},\"version\":{\"type\":\"integer\",\"readOnly\":true}}},"
    "\"KeyList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Key\"}},\"next_cursor\":{\"type\":\"string\","
    "\"nullable\":true}}},"
    "\"RuleList\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/Rule\"}},\"next_cursor\":{\"type\":\"string\","
    "\"nullable\":true}}},"
    "\"RuleDeleted\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"deleted\":{\"type\":\"boolean\"},\"version\":{\"type\":\"integer\"}}},"
    "\"Validation\":{\"type\":\"object\",\"properties\":{\"valid\":{\"type\":\"boolean\"},"
    "\"type\":{\"type\":\"string\",\"description\":\"for an expression\"},"
    "\"rule\":{\"$ref\":\"#/components/schemas/Rule\"}}},"
    "\"Balance\":{\"type\":\"object\",\"properties\":{\"points\":{\"type\":\"object\","
    "\"properties\":{\"balance\":{\"type\":\"integer\"},\"available\":{\"type\":\"integer\"},"
    "\"pending\":{\"type\":\"integer\"},\"expiring\":{\"type\":\"array\",\"items\":{"
    "\"type\":\"object\",\"properties\":{\"points\":{\"type\":\"integer\"},"
    "\"expires_at\":{\"type\":\"string\",\"format\":\"date-time\"}}}}}},"
    "\"credit\":{\"type\":\"object\",\"properties\":{\"balance\":{\"type\":\"integer\"},"
    "\"available\":{\"type\":\"integer\"}}}}},"
    "\"Activity\":{\"type\":\"object\",\"properties\":{\"data\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\",\"properties\":{\"entry_id\":{\"type\":\"string\"},"
    "\"kind\":{\"type\":\"string\"},\"asset\":{\"type\":\"string\"},"
    "\"amount\":{\"type\":\"integer\"},\"event_id\":{\"type\":\"string\",\"nullable\":true},"
    "\"memo\":{\"type\":\"string\",\"nullable\":true},"
    "\"effective_at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"}}}},"
    "\"next_cursor\":{\"type\":\"string\",\"nullable\":true}}},"
    "\"EventResult\":{\"type\":\"object\",\"description\":\"what the event did: event_id, "
    "type, member_id, points_earned, credit_earned, applied_rules, balance, tier, occurred_at; for "
    "a "
    "return amount_returned, points_reversed, points_forgiven, credit_reversed\","
    "\"properties\":{\"event_id\":{\"type\":\"string\"},\"type\":{\"type\":\"string\"},"
    "\"member_id\":{\"type\":\"string\",\"nullable\":true},"
    "\"points_earned\":{\"type\":\"integer\"},\"credit_earned\":{\"type\":\"integer\"},"
    "\"applied_rules\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"
    "\"balance\":{\"$ref\":\"#/components/schemas/Balance\"}}},"
    "\"BatchResult\":{\"type\":\"object\",\"properties\":{\"results\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"integer\"},"
    "\"body\":{\"type\":\"object\",\"description\":\"an EventResult or an Error\"}}}}}},"
    "\"Movement\":{\"type\":\"object\",\"description\":\"a redemption, adjustment or transfer "
    "as recorded, with the balance after it\",\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"member_id\":{\"type\":\"string\"},\"asset\":{\"type\":\"string\"},"
    "\"amount\":{\"type\":\"integer\"},\"balance\":{\"$ref\":\"#/components/schemas/Balance\"},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
    "\"JobResult\":{\"type\":\"object\",\"description\":\"expire: lots_expired, "
    "points_expired, members; birthdays: members, points, credit\",\"properties\":{"
    "\"as_of\":{\"type\":\"string\",\"format\":\"date-time\"}}},"
    "\"RuleValidate\":{\"oneOf\":[{\"type\":\"object\",\"required\":[\"expression\"],"
    "\"properties\":{\"expression\":{\"type\":\"string\"},\"scope\":{\"type\":\"string\","
    "\"enum\":[\"when\",\"items\"]}}},{\"$ref\":\"#/components/schemas/Rule\"}]}"
    "}";

/* The query parameters, each with its schema and meaning. */
static const struct {
    const char *name, *type, *format, *description;
} query_docs[] = {
    {"limit", "integer", NULL, "page size, 1..100 (default 50)"},
    {"cursor", "string", NULL, "the next_cursor of the previous page"},
    {"email", "string", NULL, "look a member up by email (one identifier at a time)"},
    {"phone", "string", NULL, "look a member up by phone"},
    {"card", "string", NULL, "look a member up by card number"},
    {"external_id", "string", NULL, "look a member up by the merchant's id"},
    {"as_of", "string", "date-time", "the time to work as of (RFC 3339; default now)"},
    {"version", "integer", NULL, "an earlier version (1, 2, ...)"},
};

static void add_query(json_t *params, const char *names)
{
    for (const char *p = names; p && *p;) {
        size_t n = strcspn(p, " ");
        for (size_t i = 0; i < sizeof query_docs / sizeof query_docs[0]; i++) {
            if (strlen(query_docs[i].name) != n || strncmp(query_docs[i].name, p, n) != 0)
                continue;
            json_t *schema = json_pack("{s:s}", "type", query_docs[i].type);
            if (query_docs[i].format)
                json_object_set_new(schema, "format", json_string(query_docs[i].format));
            json_array_append_new(params,
                                  json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", query_docs[i].name,
                                            "in", "query", "required", 0, "description",
                                            query_docs[i].description, "schema", schema));
        }
        p += n;
        while (*p == ' ')
            p++;
    }
}

static json_t *operation(const ly_route *rt)
{
    json_t *op = json_pack("{s:s, s:s}", "summary", rt->summary, "operationId", rt->summary);
    char opid[128];
    snprintf(opid, sizeof opid, "%s %s", rt->method, rt->pattern);
    json_object_set_new(op, "operationId", json_string(opid));
    json_t *params = json_array();
    for (const char *p = strchr(rt->pattern, '{'); p; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        json_array_append_new(params, json_pack("{s:s%, s:s, s:b, s:{s:s}}", "name", p + 1,
                                                (size_t)(e - p - 1), "in", "path", "required", 1,
                                                "schema", "type", "string"));
    }
    add_query(params, rt->query);
    if (json_array_size(params))
        json_object_set(op, "parameters", params);
    json_decref(params);
    if (rt->body_schema) {
        char ref[96];
        snprintf(ref, sizeof ref, "#/components/schemas/%s", rt->body_schema);
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:{s:{s:{s:s}}}}", "required", 1, "content",
                                      "application/json", "schema", "$ref", ref));
    }
    if (rt->scope)
        json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearer"));
    else
        json_object_set_new(op, "security", json_array());
    const char *ok = rt->status ? rt->status : "200";
    json_t *responses = json_object();
    if (rt->answer) {
        char ref[96];
        snprintf(ref, sizeof ref, "#/components/schemas/%s", rt->answer);
        json_object_set_new(responses, ok,
                            json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", "success", "content",
                                      "application/json", "schema", "$ref", ref));
    } else {
        json_object_set_new(responses, ok, json_pack("{s:s}", "description", "success"));
    }
    json_object_set_new(responses, "default",
                        json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", "an error", "content",
                                  "application/json", "schema", "$ref",
                                  "#/components/schemas/Error"));
    json_object_set_new(op, "responses", responses);
    return op;
}

char *ly__openapi_build(size_t *len)
{
    json_t *comps = json_loads(schemas, 0, NULL);
    json_t *doc =
        json_pack("{s:s, s:{s:s, s:s, s:s}, s:o, s:{s:o, s:{s:{s:s, s:s}}}}", "openapi", "3.0.3",
                  "info", "title", "Loyal", "version", LOYAL_VERSION, "description",
                  "A customer loyalty engine: members, points, rules, tiers and rewards.", "paths",
                  json_object(), "components", "schemas", comps ? comps : json_object(),
                  "securitySchemes", "bearer", "type", "http", "scheme", "bearer");
    if (!doc)
        return NULL;
    json_t *paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < ly__nroutes; i++) {
        const ly_route *rt = &ly__routes[i];
        json_t *item = json_object_get(paths, rt->pattern);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, rt->pattern, item);
        }
        char method[16];
        size_t n = strnlen(rt->method, sizeof method - 1);
        for (size_t j = 0; j < n; j++)
            method[j] = (char)(rt->method[j] >= 'A' && rt->method[j] <= 'Z' ? rt->method[j] + 32
                                                                            : rt->method[j]);
        method[n] = '\0';
        json_object_set_new(item, method, operation(rt));
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text)
        *len = strlen(text);
    return text;
}
