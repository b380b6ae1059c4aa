/* Route handlers, one file per resource. Each reads the request through the
 * helpers of api.h, calls the engine, and sets the answer. */
#ifndef LOYAL_API_HANDLERS_H
#define LOYAL_API_HANDLERS_H

#include "api/api.h"
#include "loyal/engine.h"

int ly__h_healthz(ly_req *r);
int ly__h_metrics(ly_req *r);
int ly__h_openapi(ly_req *r);

int ly__h_program_get(ly_req *r);
int ly__h_program_put(ly_req *r);

int ly__h_members_create(ly_req *r);
int ly__h_members_list(ly_req *r);
int ly__h_member_get(ly_req *r);
int ly__h_member_patch(ly_req *r);
int ly__h_member_cards(ly_req *r);

int ly__h_events_post(ly_req *r);
int ly__h_events_batch(ly_req *r);
int ly__h_events_simulate(ly_req *r);
int ly__h_member_balance(ly_req *r);
int ly__h_member_activity(ly_req *r);
int ly__h_member_redeem(ly_req *r);
int ly__h_redemption_cancel(ly_req *r);
int ly__h_member_adjust(ly_req *r);
int ly__h_transfers(ly_req *r);
int ly__h_jobs_expire(ly_req *r);
int ly__h_jobs_birthdays(ly_req *r);

int ly__h_rules_list(ly_req *r);
int ly__h_rules_create(ly_req *r);
int ly__h_rules_validate(ly_req *r);
int ly__h_rule_get(ly_req *r);
int ly__h_rule_versions(ly_req *r);
int ly__h_rule_put(ly_req *r);
int ly__h_rule_delete(ly_req *r);

/* Answers with an engine result, or with its error when rc is not 0. */
int ly__reply_result(ly_req *r, int rc, ly_result *res, ly_error *err);

int ly__h_keys_create(ly_req *r);
int ly__h_keys_list(ly_req *r);
int ly__h_key_revoke(ly_req *r);

#endif
