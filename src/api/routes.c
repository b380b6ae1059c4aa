/* The route table: every route Loyal serves, with the least scope it needs
 * and a summary that also feeds /openapi.json. */
#include "api/handlers.h"

const ly_route ly__routes[] = {
    {"GET", "/healthz", ly__h_healthz, NULL, "Liveness and store health", NULL},
    {"GET", "/metrics", ly__h_metrics, NULL, "Prometheus metrics", NULL},
    {"GET", "/openapi.json", ly__h_openapi, NULL, "This API's OpenAPI description", NULL},

    {"GET", "/v1/program", ly__h_program_get, "read", "Program settings", NULL},
    {"PUT", "/v1/program", ly__h_program_put, "admin", "Change program settings", "ProgramUpdate"},

    {"POST", "/v1/members", ly__h_members_create, "pos", "Enrol a member", "MemberCreate"},
    {"GET", "/v1/members", ly__h_members_list, "read",
     "Look a member up by email, phone, card or external_id; without them, list members", NULL},
    {"GET", "/v1/members/{id}", ly__h_member_get, "read", "A member", NULL},
    {"PATCH", "/v1/members/{id}", ly__h_member_patch, "pos", "Change a member", "MemberUpdate"},
    {"POST", "/v1/members/{id}/cards", ly__h_member_cards, "pos", "Attach a card number",
     "CardAttach"},

    {"POST", "/v1/keys", ly__h_keys_create, "admin", "Create an API key", "KeyCreate"},
    {"GET", "/v1/keys", ly__h_keys_list, "admin", "List API keys", NULL},
    {"DELETE", "/v1/keys/{id}", ly__h_key_revoke, "admin", "Revoke an API key", NULL},
};

const size_t ly__nroutes = sizeof ly__routes / sizeof ly__routes[0];
