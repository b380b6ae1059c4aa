/* The route table: every route Loyal serves, with the least scope it needs
 * and a summary that also feeds /openapi.json. */
#include "api/handlers.h"

const ly_route ly__routes[] = {
    {"GET", "/healthz", ly__h_healthz, NULL, "Liveness and store health", NULL, 0},
    {"GET", "/metrics", ly__h_metrics, NULL, "Prometheus metrics", NULL, 0},
    {"GET", "/openapi.json", ly__h_openapi, NULL, "This API's OpenAPI description", NULL, 0},

    {"GET", "/v1/program", ly__h_program_get, "read", "Program settings", NULL, 0},
    {"PUT", "/v1/program", ly__h_program_put, "admin", "Change program settings", "ProgramUpdate",
     0},

    {"POST", "/v1/members", ly__h_members_create, "pos", "Enrol a member", "MemberCreate", 0},
    {"GET", "/v1/members", ly__h_members_list, "read",
     "Look a member up by email, phone, card or external_id; without them, list members", NULL, 0},
    {"GET", "/v1/members/{id}", ly__h_member_get, "read", "A member", NULL, 0},
    {"PATCH", "/v1/members/{id}", ly__h_member_patch, "pos", "Change a member", "MemberUpdate", 0},
    {"POST", "/v1/members/{id}/cards", ly__h_member_cards, "pos", "Attach a card number",
     "CardAttach", 0},

    {"GET", "/v1/members/{id}/balance", ly__h_member_balance, "read",
     "A member's points and credit: available, pending, expiring", NULL, 0},
    {"GET", "/v1/members/{id}/activity", ly__h_member_activity, "read",
     "A member's ledger lines, newest first", NULL, 0},
    {"POST", "/v1/members/{id}/redemptions", ly__h_member_redeem, "pos", "Spend points (or credit)",
     "Redemption", 0},
    {"POST", "/v1/members/{id}/redemptions/{redemption_id}/cancel", ly__h_redemption_cancel, "pos",
     "Cancel a redemption, giving back exactly its lots", NULL, 0},
    {"POST", "/v1/members/{id}/adjustments", ly__h_member_adjust, "admin",
     "Correct a balance, with a reason", "Adjustment", 0},
    {"POST", "/v1/transfers", ly__h_transfers, "pos", "Move points between members", "Transfer", 0},

    {"POST", "/v1/events", ly__h_events_post, "pos",
     "Record a purchase, a return or a custom event", "Event", LY_ROUTE_EVENT},
    {"POST", "/v1/events/batch", ly__h_events_batch, "pos", "Record up to 1000 events",
     "EventBatch", LY_ROUTE_EVENT_BATCH},
    {"POST", "/v1/events/simulate", ly__h_events_simulate, "read",
     "What an event would earn; writes nothing", "Event", LY_ROUTE_WRITES_NOTHING},

    {"POST", "/v1/jobs/expire", ly__h_jobs_expire, "admin", "Expire points past their date (as_of)",
     NULL, 0},
    {"POST", "/v1/jobs/birthdays", ly__h_jobs_birthdays, "admin",
     "Grant birthday rules to members whose birthday fell in the last week (as_of)", NULL, 0},

    {"GET", "/v1/rules", ly__h_rules_list, "read", "The program's rules", NULL, 0},
    {"POST", "/v1/rules", ly__h_rules_create, "admin", "Create an earn rule", "Rule", 0},
    {"POST", "/v1/rules/validate", ly__h_rules_validate, "read",
     "Check an expression or a whole rule; errors name line:column", "RuleValidate",
     LY_ROUTE_WRITES_NOTHING},
    {"GET", "/v1/rules/{id}", ly__h_rule_get, "read", "A rule (?version= for an earlier one)", NULL,
     0},
    {"GET", "/v1/rules/{id}/versions", ly__h_rule_versions, "read", "Every version of a rule", NULL,
     0},
    {"PUT", "/v1/rules/{id}", ly__h_rule_put, "admin", "Change a rule: a new version", "Rule", 0},
    {"DELETE", "/v1/rules/{id}", ly__h_rule_delete, "admin",
     "Remove a rule; its versions stay readable", NULL, 0},

    {"POST", "/v1/keys", ly__h_keys_create, "admin", "Create an API key", "KeyCreate",
     LY_ROUTE_SECRET_ANSWER},
    {"GET", "/v1/keys", ly__h_keys_list, "admin", "List API keys", NULL, 0},
    {"DELETE", "/v1/keys/{id}", ly__h_key_revoke, "admin", "Revoke an API key", NULL, 0},
};

const size_t ly__nroutes = sizeof ly__routes / sizeof ly__routes[0];
