/* Route handlers, one file per resource. Each reads the request through the
 * helpers of api.h, calls the engine, and sets the answer. */
#ifndef LOYAL_API_HANDLERS_H
#define LOYAL_API_HANDLERS_H

#include "api/api.h"

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

int ly__h_keys_create(ly_req *r);
int ly__h_keys_list(ly_req *r);
int ly__h_key_revoke(ly_req *r);

#endif
