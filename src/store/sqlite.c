/* The SQLite backend: one database file in WAL mode, one sqlite3 handle per
 * connection, every statement prepared once per connection (on first use,
 * since the tables exist only after the migrations) and kept. */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_MAX_PAGES_ENV   "LOYAL_SQLITE_MAX_PAGES"
/* A member's balance of an asset: 0 before its first posting. */
#define SQ_BALANCE(asset)                                                                          \
    "COALESCE((SELECT balance FROM accounts WHERE accounts.program_id = members.program_id "       \
    "AND accounts.member_id = members.id AND kind = 'member' AND asset = '" asset "'), 0)"
#define SQ_MEMBER_COLS                                                                             \
    "id, program_id, external_id, email, phone, name, birthdate, attributes, status, "             \
    "created_at, updated_at, last_activity_at, lifetime_spend, purchase_count, "                   \
    "last_purchase_at, " SQ_BALANCE("points") ", " SQ_BALANCE("credit")
#define SQ_KEY_COLS "id, program_id, scope, name, hash, created_at, revoked_at"
#define SQ_ENTRY_COLS                                                                              \
    "id, program_id, member_id, kind, event_id, ref_entry_id, memo, data, effective_at, "          \
    "created_at"
#define SQ_LOT_COLS                                                                                \
    "id, program_id, member_id, asset, entry_id, amount, remaining, available_at, expires_at, "    \
    "created_at"
#define SQ_EVENT_COLS                                                                              \
    "id, program_id, ext_id, type, member_id, amount, currency, occurred_at, original_id, "        \
    "points, credit, returned_amount, reversed_points, reversed_credit, returned_items, "          \
    "entry_id, body, request_hash, result, created_at"
#define SQ_REDEMPTION_COLS                                                                         \
    "id, program_id, member_id, asset, amount, entry_id, status, cancel_entry_id, created_at, "    \
    "cancelled_at"
#define SQ_RULE_COLS "id, program_id, rule_id, version, body, deleted, current, created_at"

enum {
    SQ_BEGIN_WRITE,
    SQ_BEGIN_READ,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_SP_OPEN,
    SQ_SP_RELEASE,
    SQ_SP_ROLLBACK,
    SQ_SCHEMA_EXISTS,
    SQ_SCHEMA_VERSION,
    SQ_MIGRATION_APPLIED,
    SQ_MIGRATION_RECORD,
    SQ_PROGRAM_GET,
    SQ_PROGRAM_PUT,
    SQ_MEMBER_INSERT,
    SQ_MEMBER_GET,
    SQ_MEMBER_BY_EXTERNAL_ID, /* the four lookups in the order of LY_BY_* */
    SQ_MEMBER_BY_EMAIL,
    SQ_MEMBER_BY_PHONE,
    SQ_MEMBER_BY_CARD,
    SQ_MEMBER_UPDATE,
    SQ_MEMBER_LIST,
    SQ_CARDS_RANGE,
    SQ_CARD_ATTACH,
    SQ_KEY_INSERT,
    SQ_KEY_GET,
    SQ_KEY_LIST,
    SQ_KEY_REVOKE,
    SQ_TABLE_COUNTS,
    SQ_SAVEPOINT,
    SQ_RELEASE,
    SQ_MEMBER_LOCK,
    SQ_MEMBER_TOUCH,
    SQ_ENTRY_INSERT,
    SQ_ACCOUNT_ADD,
    SQ_ACCOUNT_CREATE,
    SQ_ACCOUNT_POSTED,
    SQ_POSTING_INSERT,
    SQ_POSTING_ADD,
    SQ_ENTRY_GET,
    SQ_ACCOUNT_BALANCE,
    SQ_LOT_INSERT,
    SQ_LOTS_OPEN,
    SQ_MEMBER_BALANCES,
    SQ_LOTS_OF_ENTRY,
    SQ_LOT_CONSUME,
    SQ_LOT_FORGIVEN,
    SQ_LOT_FORGIVE,
    SQ_CONSUMPTION_INSERT,
    SQ_CONSUMPTIONS_OF_ENTRY,
    SQ_LOTS_EXPIRED,
    SQ_MEMBERS_INACTIVE,
    SQ_ACTIVITY,
    SQ_EVENT_INSERT,
    SQ_EVENT_NEXT_ID,
    SQ_EVENT_GET,
    SQ_EVENT_GET_BY_ID,
    SQ_EVENT_UPDATE,
    SQ_REDEMPTION_INSERT,
    SQ_REDEMPTION_GET,
    SQ_REDEMPTION_CANCEL,
    SQ_REDEMPTION_EXISTS,
    SQ_IDEM_GET,
    SQ_IDEM_PUT,
    SQ_MEMBER_PURCHASE,
    SQ_MEMBERS_BY_BIRTHDAY,
    SQ_RULE_UNCURRENT,
    SQ_RULE_INSERT,
    SQ_RULE_GET,
    SQ_RULE_CURRENT,
    SQ_RULE_LIST_FIRST,
    SQ_RULE_LIST_AFTER,
    SQ_RULE_VERSIONS,
    SQ_RULE_USAGE_GET,
    SQ_RULE_USAGE_ADD,
    SQ_EVENT_RULE_INSERT,
    SQ_EVENT_RULES,
    SQ_EVENT_RULE_UPDATE,
    SQ_VERIFY_FIRST, /* one per LY_VERIFY_* check, in its order */
    SQ_NSTMTS = SQ_VERIFY_FIRST + LY_VERIFY_COUNT
};

_Static_assert(SQ_MEMBER_BY_CARD - SQ_MEMBER_BY_EXTERNAL_ID == LY_BY_CARD - LY_BY_EXTERNAL_ID,
               "lookups follow LY_BY_*");

static const struct {
    const char *name;
    const char *sql;
} sq_stmts[SQ_NSTMTS] = {
    [SQ_BEGIN_WRITE] = {"begin_write", "BEGIN IMMEDIATE"},
    [SQ_BEGIN_READ] = {"begin_read", "BEGIN"},
    [SQ_COMMIT] = {"commit", "COMMIT"},
    [SQ_ROLLBACK] = {"rollback", "ROLLBACK"},
    [SQ_SP_OPEN] = {"sp_open", "SAVEPOINT ly_sp"},
    [SQ_SP_RELEASE] = {"sp_release", "RELEASE ly_sp"},
    [SQ_SP_ROLLBACK] = {"sp_rollback", "ROLLBACK TO ly_sp"},
    [SQ_SCHEMA_EXISTS] = {"schema_exists", "SELECT count(*) FROM sqlite_master "
                                           "WHERE type = 'table' AND name = 'schema_migrations'"},
    [SQ_SCHEMA_VERSION] = {"schema_version",
                           "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"},
    [SQ_MIGRATION_APPLIED] = {"migration_applied",
                              "SELECT 1 FROM schema_migrations WHERE version = ?1"},
    [SQ_MIGRATION_RECORD] = {"migration_record", "INSERT INTO schema_migrations "
                                                 "(version, name, applied_at) VALUES (?1, ?2, ?3)"},
    [SQ_PROGRAM_GET] = {"program_get",
                        "SELECT id, name, currency, timezone, point_value_minor, settings, "
                        "created_at, updated_at FROM programs WHERE id = ?1"},
    [SQ_PROGRAM_PUT] = {"program_put",
                        "UPDATE programs SET name = ?2, currency = ?3, timezone = ?4, "
                        "point_value_minor = ?5, settings = COALESCE(?6, '{}'), updated_at = ?7 "
                        "WHERE id = ?1"},
    [SQ_MEMBER_INSERT] = {"member_insert",
                          "INSERT INTO members (program_id, external_id, email, phone, name, "
                          "birthdate, attributes, status, created_at, updated_at) VALUES (?1, ?2, "
                          "?3, ?4, ?5, ?6, COALESCE(?7, '{}'), COALESCE(?8, 'active'), ?9, ?10)"},
    /* The cards come along, joined by a unit separator (they are [A-Z0-9]):
     * one statement for the most frequent read. */
    [SQ_MEMBER_GET] = {"member_get",
                       "SELECT " SQ_MEMBER_COLS ", (SELECT group_concat(card, char(31)) FROM "
                       "(SELECT card FROM member_cards WHERE program_id = ?1 AND member_id = ?2 "
                       "ORDER BY created_at, card)) FROM members "
                       "WHERE program_id = ?1 AND id = ?2"},
    [SQ_MEMBER_BY_EXTERNAL_ID] = {"member_by_external_id",
                                  "SELECT " SQ_MEMBER_COLS " FROM members "
                                  "WHERE program_id = ?1 AND external_id = ?2"},
    [SQ_MEMBER_BY_EMAIL] = {"member_by_email", "SELECT " SQ_MEMBER_COLS " FROM members "
                                               "WHERE program_id = ?1 AND email = ?2"},
    [SQ_MEMBER_BY_PHONE] = {"member_by_phone", "SELECT " SQ_MEMBER_COLS " FROM members "
                                               "WHERE program_id = ?1 AND phone = ?2"},
    [SQ_MEMBER_BY_CARD] = {"member_by_card",
                           "SELECT " SQ_MEMBER_COLS " FROM members WHERE program_id = ?1 AND id = "
                           "(SELECT member_id FROM member_cards WHERE program_id = ?1 AND card = "
                           "?2)"},
    [SQ_MEMBER_UPDATE] = {"member_update",
                          "UPDATE members SET external_id = ?3, email = ?4, phone = ?5, name = ?6, "
                          "birthdate = ?7, attributes = COALESCE(?8, '{}'), "
                          "status = COALESCE(?9, status), updated_at = ?10 "
                          "WHERE program_id = ?1 AND id = ?2"},
    [SQ_MEMBER_LIST] = {"member_list", "SELECT " SQ_MEMBER_COLS " FROM members "
                                       "WHERE program_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"},
    [SQ_CARDS_RANGE] = {"cards_range",
                        "SELECT member_id, card FROM member_cards WHERE program_id = ?1 "
                        "AND member_id > ?2 AND member_id <= ?3 "
                        "ORDER BY member_id, created_at, card"},
    [SQ_CARD_ATTACH] = {"card_attach",
                        "INSERT INTO member_cards (program_id, card, member_id, created_at) "
                        "SELECT ?1, ?2, id, ?4 FROM members WHERE program_id = ?1 AND id = ?3"},
    [SQ_KEY_INSERT] = {"key_insert", "INSERT INTO api_keys (" SQ_KEY_COLS ") "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULLIF(?7, 0))"},
    [SQ_KEY_GET] = {"key_get", "SELECT " SQ_KEY_COLS " FROM api_keys WHERE id = ?1"},
    [SQ_KEY_LIST] = {"key_list", "SELECT " SQ_KEY_COLS " FROM api_keys "
                                 "WHERE program_id = ?1 ORDER BY created_at, id"},
    [SQ_KEY_REVOKE] = {"key_revoke", "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) "
                                     "WHERE program_id = ?1 AND id = ?2"},
    [SQ_TABLE_COUNTS] = {"table_counts",
                         "SELECT (SELECT count(*) FROM programs), (SELECT count(*) FROM members), "
                         "(SELECT count(*) FROM member_cards), (SELECT count(*) FROM api_keys), "
                         "(SELECT count(*) FROM accounts), (SELECT count(*) FROM entries), "
                         "(SELECT count(*) FROM postings), (SELECT count(*) FROM lots), "
                         "(SELECT count(*) FROM lot_consumptions), (SELECT count(*) FROM events), "
                         "(SELECT count(*) FROM redemptions), "
                         "(SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM rules), "
                         "(SELECT count(*) FROM rule_usage), (SELECT count(*) FROM event_rules)"},
    [SQ_SAVEPOINT] = {"savepoint", "SAVEPOINT ly_atomic"},
    [SQ_RELEASE] = {"release", "RELEASE ly_atomic"},
    [SQ_MEMBER_LOCK] = {"member_lock",
                        "SELECT status = 'active' FROM members WHERE program_id = ?1 AND id = ?2"},
    /* Activity only moves forward: a late or back-dated event leaves the
     * latest time. */
    [SQ_MEMBER_TOUCH] =
        {"member_touch",
         "UPDATE members SET last_activity_at = "
         "max(COALESCE(last_activity_at, ?3), ?3) WHERE program_id = ?1 AND id = ?2"},
    [SQ_ENTRY_INSERT] =
        {"entry_insert",
         "INSERT INTO entries (program_id, member_id, kind, event_id, ref_entry_id, "
         "memo, data, effective_at, created_at) VALUES (?1, ?2, ?3, NULLIF(?4, 0), "
         "NULLIF(?5, 0), ?6, ?7, ?8, ?9)"},
    /* checked_add raises "integer overflow" where + would turn to a real. */
    /* A member account's running balance; when it changes no row, the
     * account is created with the amount as its balance. */
    [SQ_ACCOUNT_ADD] = {"account_add", "UPDATE accounts SET balance = checked_add(balance, ?5) "
                                       "WHERE program_id = ?1 AND member_id = ?2 AND kind = ?3 "
                                       "AND asset = ?4"},
    [SQ_ACCOUNT_CREATE] = {"account_create",
                           "INSERT INTO accounts (program_id, member_id, kind, asset, balance) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)"},
    [SQ_ACCOUNT_POSTED] = {"account_posted",
                           "SELECT COALESCE(SUM(p.amount), 0) FROM accounts a "
                           "JOIN postings p ON p.account_id = a.id WHERE a.program_id = ?1 "
                           "AND a.member_id = ?2 AND a.kind = ?3 AND a.asset = ?4"},
    [SQ_POSTING_INSERT] =
        {"posting_insert",
         "INSERT INTO postings (entry_id, account_id, amount) VALUES (?1, ?2, ?3)"},
    /* A posting to the account named by its key; no row inserted: there is
     * no such account yet. Program accounts (member_id 0) keep no running
     * balance, so that no row is written by every entry of the program:
     * they are created on first use and their balance summed from
     * postings. */
    [SQ_POSTING_ADD] = {"posting_add",
                        "INSERT INTO postings (entry_id, account_id, amount) "
                        "SELECT ?6, id, ?5 FROM accounts WHERE program_id = ?1 AND member_id = ?2 "
                        "AND kind = ?3 AND asset = ?4"},
    [SQ_ENTRY_GET] = {"entry_get", "SELECT " SQ_ENTRY_COLS " FROM entries "
                                   "WHERE program_id = ?1 AND id = ?2"},
    [SQ_ACCOUNT_BALANCE] = {"account_balance",
                            "SELECT balance FROM accounts WHERE program_id = ?1 AND member_id = ?2 "
                            "AND kind = ?3 AND asset = ?4"},
    [SQ_LOT_INSERT] = {"lot_insert",
                       "INSERT INTO lots (program_id, member_id, asset, entry_id, amount, "
                       "remaining, available_at, expires_at, created_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULLIF(?8, 0), ?9)"},
    [SQ_LOTS_OPEN] = {"lots_open", "SELECT " SQ_LOT_COLS " FROM lots WHERE program_id = ?1 "
                                   "AND member_id = ?2 AND asset = ?3 AND remaining > 0 "
                                   "ORDER BY expires_at IS NULL, expires_at, created_at, id"},
    /* A member's accounts with the pending and expired sums of their lots,
     * then the points lots' next expiry dates: index ranges, one statement. */
    [SQ_MEMBER_BALANCES] =
        {"member_balances",
         "SELECT 0, a.asset, a.balance, "
         "(SELECT COALESCE(SUM(l.remaining), 0) FROM lots l WHERE l.program_id = ?1 "
         "AND l.member_id = ?2 AND l.asset = a.asset AND l.remaining > 0 AND l.available_at > ?3 "
         "AND l.available_at > l.created_at AND (l.expires_at IS NULL OR l.expires_at > ?3)), "
         "(SELECT COALESCE(SUM(l.remaining), 0) FROM lots l WHERE l.program_id = ?1 "
         "AND l.member_id = ?2 AND l.asset = a.asset AND l.remaining > 0 "
         "AND l.expires_at <= ?3) "
         "FROM accounts a WHERE a.program_id = ?1 AND a.member_id = ?2 AND a.kind = 'member' "
         "UNION ALL SELECT * FROM (SELECT 1, 'points', SUM(remaining), expires_at, 0 FROM lots "
         "WHERE program_id = ?1 AND member_id = ?2 AND asset = 'points' AND remaining > 0 "
         "AND expires_at > ?3 GROUP BY expires_at ORDER BY expires_at LIMIT ?4)"},
    [SQ_LOTS_OF_ENTRY] = {"lots_of_entry", "SELECT " SQ_LOT_COLS " FROM lots "
                                           "WHERE program_id = ?1 AND entry_id = ?2 ORDER BY id"},
    [SQ_LOT_CONSUME] = {"lot_consume",
                        "UPDATE lots SET remaining = remaining - ?3 WHERE id = ?2 "
                        "AND program_id = ?1 AND remaining - ?3 BETWEEN 0 AND amount"},
    [SQ_LOT_FORGIVEN] = {"lot_forgiven",
                         "SELECT forgiven FROM lots WHERE program_id = ?1 AND id = ?2"},
    [SQ_LOT_FORGIVE] =
        {"lot_forgive",
         "UPDATE lots SET forgiven = forgiven + ?3 WHERE program_id = ?1 AND id = ?2 "
         "AND forgiven + ?3 BETWEEN 0 AND amount"},
    [SQ_CONSUMPTION_INSERT] =
        {"consumption_insert",
         "INSERT INTO lot_consumptions (program_id, entry_id, lot_id, amount) "
         "VALUES (?1, ?2, ?3, ?4)"},
    [SQ_CONSUMPTIONS_OF_ENTRY] = {"consumptions_of_entry",
                                  "SELECT entry_id, lot_id, amount FROM lot_consumptions "
                                  "WHERE program_id = ?1 AND entry_id = ?2 ORDER BY id"},
    [SQ_LOTS_EXPIRED] = {"lots_expired",
                         "SELECT " SQ_LOT_COLS " FROM lots WHERE program_id = ?1 "
                         "AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?2 "
                         "ORDER BY member_id, id LIMIT ?3"},
    [SQ_MEMBERS_INACTIVE] = {"members_inactive",
                             "SELECT m.id FROM members m JOIN accounts a "
                             "ON a.program_id = m.program_id AND a.member_id = m.id "
                             "AND a.kind = 'member' AND a.asset = 'points' "
                             "WHERE m.program_id = ?1 AND m.id > ?3 AND a.balance <> 0 "
                             "AND COALESCE(m.last_activity_at, m.created_at) < ?2 "
                             "ORDER BY m.id LIMIT ?4"},
    [SQ_ACTIVITY] = {"activity",
                     "SELECT e.id, e.kind, a.asset, e.memo, e.data, p.amount, e.event_id, "
                     "e.effective_at, e.created_at, ev.ext_id FROM accounts a "
                     "JOIN postings p ON p.account_id = a.id JOIN entries e ON e.id = p.entry_id "
                     "LEFT JOIN events ev ON ev.id = e.event_id "
                     "WHERE a.program_id = ?1 AND a.member_id = ?2 AND a.kind = 'member' "
                     "AND p.entry_id < ?3 ORDER BY p.entry_id DESC, a.asset LIMIT ?4"},
    [SQ_EVENT_INSERT] = {"event_insert",
                         "INSERT INTO events (id, program_id, ext_id, type, member_id, amount, "
                         "currency, occurred_at, original_id, points, credit, returned_amount, "
                         "reversed_points, reversed_credit, returned_items, entry_id, body, "
                         "request_hash, result, created_at) VALUES (NULLIF(?20, 0), ?1, ?2, ?3, "
                         "NULLIF(?4, 0), ?5, ?6, ?7, NULLIF(?8, 0), ?9, ?10, ?11, ?12, ?13, ?14, "
                         "NULLIF(?15, 0), ?16, ?17, ?18, ?19)"},
    /* Inside a write transaction, which holds SQLite's write lock: no other
     * connection adds an event meanwhile. */
    [SQ_EVENT_NEXT_ID] = {"event_next_id", "SELECT COALESCE(MAX(id), 0) + 1 FROM events"},
    [SQ_EVENT_GET] = {"event_get", "SELECT " SQ_EVENT_COLS " FROM events "
                                   "WHERE program_id = ?1 AND ext_id = ?2"},
    [SQ_EVENT_GET_BY_ID] = {"event_get_by_id", "SELECT " SQ_EVENT_COLS " FROM events "
                                               "WHERE program_id = ?1 AND id = ?2"},
    [SQ_EVENT_UPDATE] = {"event_update",
                         "UPDATE events SET entry_id = NULLIF(?3, 0), points = ?4, credit = ?5, "
                         "returned_amount = ?6, reversed_points = ?7, reversed_credit = ?8, "
                         "returned_items = ?9, result = ?10 WHERE program_id = ?1 AND id = ?2"},
    [SQ_REDEMPTION_INSERT] = {"redemption_insert",
                              "INSERT INTO redemptions (program_id, member_id, asset, amount, "
                              "entry_id, status, cancel_entry_id, created_at, cancelled_at) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, COALESCE(?6, 'active'), "
                              "NULLIF(?7, 0), ?8, NULLIF(?9, 0))"},
    [SQ_REDEMPTION_GET] = {"redemption_get", "SELECT " SQ_REDEMPTION_COLS " FROM redemptions "
                                             "WHERE program_id = ?1 AND id = ?2"},
    /* Once only: a second cancel would give the lots back twice. */
    [SQ_REDEMPTION_CANCEL] = {"redemption_cancel",
                              "UPDATE redemptions SET status = 'cancelled', "
                              "cancel_entry_id = NULLIF(?3, 0), cancelled_at = NULLIF(?4, 0) "
                              "WHERE program_id = ?1 AND id = ?2 AND status <> 'cancelled'"},
    [SQ_REDEMPTION_EXISTS] = {"redemption_exists",
                              "SELECT 1 FROM redemptions WHERE program_id = ?1 AND id = ?2"},
    [SQ_IDEM_GET] = {"idem_get", "SELECT key, route, request_hash, status, response, created_at "
                                 "FROM idempotency_keys WHERE program_id = ?1 AND key = ?2"},
    [SQ_IDEM_PUT] = {"idem_put",
                     "INSERT INTO idempotency_keys (program_id, key, route, request_hash, status, "
                     "response, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
    [SQ_MEMBER_PURCHASE] = {"member_purchase",
                            "UPDATE members SET lifetime_spend = checked_add(lifetime_spend, ?4), "
                            "purchase_count = checked_add(purchase_count, ?5), "
                            "last_purchase_at = CASE WHEN ?5 > 0 "
                            "THEN max(COALESCE(last_purchase_at, ?3), ?3) "
                            "ELSE last_purchase_at END, "
                            "last_activity_at = max(COALESCE(last_activity_at, ?3), ?3) "
                            "WHERE program_id = ?1 AND id = ?2"},
    /* The expression is members_birthday_idx's. */
    [SQ_MEMBERS_BY_BIRTHDAY] = {"members_by_birthday",
                                "SELECT " SQ_MEMBER_COLS " FROM members WHERE program_id = ?1 "
                                "AND substr(birthdate, 6, 5) = ?2 AND id > ?3 "
                                "AND status = 'active' ORDER BY id LIMIT ?4"},
    [SQ_RULE_UNCURRENT] = {"rule_uncurrent",
                           "UPDATE rules SET current = 0 "
                           "WHERE program_id = ?1 AND rule_id = ?2 AND current = 1"},
    [SQ_RULE_INSERT] = {"rule_insert",
                        "INSERT INTO rules (program_id, rule_id, version, body, deleted, current, "
                        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)"},
    [SQ_RULE_GET] = {"rule_get", "SELECT " SQ_RULE_COLS " FROM rules "
                                 "WHERE program_id = ?1 AND rule_id = ?2 AND version = ?3"},
    [SQ_RULE_CURRENT] = {"rule_current", "SELECT " SQ_RULE_COLS " FROM rules "
                                         "WHERE program_id = ?1 AND rule_id = ?2 AND current = 1"},
    /* "current = 1" as written selects rules_current_key, in rule_id order. */
    [SQ_RULE_LIST_FIRST] = {"rule_list_first",
                            "SELECT " SQ_RULE_COLS " FROM rules WHERE program_id = ?1 "
                            "AND current = 1 AND deleted = 0 ORDER BY rule_id LIMIT ?3"},
    [SQ_RULE_LIST_AFTER] = {"rule_list_after",
                            "SELECT " SQ_RULE_COLS " FROM rules WHERE program_id = ?1 "
                            "AND current = 1 AND deleted = 0 AND rule_id > ?2 "
                            "ORDER BY rule_id LIMIT ?3"},
    [SQ_RULE_VERSIONS] = {"rule_versions",
                          "SELECT " SQ_RULE_COLS " FROM rules "
                          "WHERE program_id = ?1 AND rule_id = ?2 AND version > ?3 "
                          "ORDER BY version LIMIT ?4"},
    [SQ_RULE_USAGE_GET] = {"rule_usage_get",
                           "SELECT points, credit, count FROM rule_usage WHERE program_id = ?1 "
                           "AND rule_id = ?2 AND member_id = ?3 AND period_start = ?4"},
    [SQ_RULE_USAGE_ADD] = {"rule_usage_add",
                           "INSERT INTO rule_usage (program_id, rule_id, member_id, period_start, "
                           "points, credit, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                           "ON CONFLICT (program_id, rule_id, member_id, period_start) "
                           "DO UPDATE SET points = checked_add(points, excluded.points), "
                           "credit = checked_add(credit, excluded.credit), "
                           "count = checked_add(count, excluded.count)"},
    [SQ_EVENT_RULE_INSERT] = {"event_rule_insert",
                              "INSERT INTO event_rules (program_id, event_id, rule_row, points, "
                              "credit, reversed_points, reversed_credit) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
    [SQ_EVENT_RULES] = {"event_rules",
                        "SELECT x.event_id, x.rule_row, r.rule_id, r.version, x.points, x.credit, "
                        "x.reversed_points, x.reversed_credit FROM event_rules x "
                        "JOIN rules r ON r.id = x.rule_row "
                        "WHERE x.program_id = ?1 AND x.event_id = ?2 ORDER BY x.rule_row"},
    [SQ_EVENT_RULE_UPDATE] = {"event_rule_update",
                              "UPDATE event_rules SET reversed_points = ?4, reversed_credit = ?5 "
                              "WHERE program_id = ?1 AND event_id = ?2 AND rule_row = ?3"},
    /* The invariants ly_store_verify checks: each row is a violation told for
     * a person. */
    [SQ_VERIFY_FIRST + LY_VERIFY_ENTRY_BALANCED] =
        {"verify_entry_balanced",
         "SELECT 'entry ' || p.entry_id || ' ' || a.asset || ' sums to ' || SUM(p.amount) "
         "FROM postings p JOIN accounts a ON a.id = p.account_id "
         "GROUP BY p.entry_id, a.asset HAVING SUM(p.amount) <> 0 "
         "ORDER BY p.entry_id, a.asset LIMIT ?1"},
    [SQ_VERIFY_FIRST + LY_VERIFY_ACCOUNT_BALANCE] =
        {"verify_account_balance",
         "SELECT 'account ' || a.id || ' (' || a.kind || ' ' || a.asset || "
         "' of member ' || a.member_id || "
         "') balance ' || a.balance || ', postings sum to ' || COALESCE(SUM(p.amount), 0) "
         "FROM accounts a LEFT JOIN postings p ON p.account_id = a.id WHERE a.member_id <> 0 "
         "GROUP BY a.id HAVING a.balance <> COALESCE(SUM(p.amount), 0) ORDER BY a.id LIMIT ?1"},
    [SQ_VERIFY_FIRST + LY_VERIFY_MEMBER_LOTS] =
        {"verify_member_lots",
         "SELECT detail FROM ("
         "SELECT a.member_id AS member_id, a.asset AS asset, 'member ' || a.member_id || ' ' || "
         "a.asset || ': balance ' || a.balance || ', lots remaining ' || "
         "COALESCE(l.remaining, 0) AS detail FROM accounts a LEFT JOIN ("
         "SELECT program_id, member_id, asset, SUM(remaining) AS remaining FROM lots "
         "GROUP BY program_id, member_id, asset) l ON l.program_id = a.program_id "
         "AND l.member_id = a.member_id AND l.asset = a.asset WHERE a.kind = 'member' "
         "AND COALESCE(l.remaining, 0) <> CASE WHEN a.balance > 0 THEN a.balance ELSE 0 END "
         "UNION ALL "
         "SELECT l.member_id, l.asset, 'member ' || l.member_id || ' ' || l.asset || "
         "': no account, lots remaining ' || SUM(l.remaining) FROM lots l WHERE NOT EXISTS ("
         "SELECT 1 FROM accounts a WHERE a.program_id = l.program_id "
         "AND a.member_id = l.member_id AND a.kind = 'member' AND a.asset = l.asset) "
         "GROUP BY l.program_id, l.member_id, l.asset) v "
         "ORDER BY member_id, asset, detail LIMIT ?1"},
    [SQ_VERIFY_FIRST + LY_VERIFY_LOT_BOUNDS] =
        {"verify_lot_bounds",
         "SELECT 'lot ' || id || ' remaining ' || remaining || ' of amount ' || amount "
         "FROM lots WHERE remaining < 0 OR remaining > amount OR amount <= 0 "
         "ORDER BY id LIMIT ?1"},
    [SQ_VERIFY_FIRST + LY_VERIFY_LOT_CONSUMED] =
        {"verify_lot_consumed",
         "SELECT 'lot ' || l.id || ' gave ' || (l.amount - l.remaining) || "
         "', its consumptions sum to ' || COALESCE(SUM(k.amount), 0) "
         "FROM lots l LEFT JOIN lot_consumptions k ON k.lot_id = l.id GROUP BY l.id "
         "HAVING l.amount - l.remaining <> COALESCE(SUM(k.amount), 0) ORDER BY l.id LIMIT ?1"},
    [SQ_VERIFY_FIRST + LY_VERIFY_EVENT_ENTRY] =
        {"verify_event_entry",
         "SELECT 'event ' || id || ' (' || type || ' ' || ext_id || ') of member ' || member_id "
         "|| ' has ' || points || ' points and ' || credit || ' credit but no entry' "
         "FROM events WHERE type IN ('purchase', 'return') AND member_id IS NOT NULL "
         "AND (points <> 0 OR credit <> 0) AND entry_id IS NULL ORDER BY id LIMIT ?1"},
};

/* Failures of the file or the disk: the store is unavailable, not the
 * request wrong. wire is the code on the wire, NULL for rc's default. */
static const struct {
    int code; /* primary result code */
    int rc;
    const char *wire;
    const char *what;
} sq_errors[] = {
    {SQLITE_BUSY, LY_ERETRY, NULL, "the database is busy"},
    {SQLITE_LOCKED, LY_ERETRY, NULL, "the database is locked"},
    {SQLITE_FULL, LY_ESTORE, "storage_full",
     "no space left: the disk is full or the database reached its page limit"},
    {SQLITE_IOERR, LY_ESTORE, NULL, "the database file cannot be read or written"},
    {SQLITE_CANTOPEN, LY_ESTORE, NULL, "the database file cannot be opened"},
    {SQLITE_READONLY, LY_ESTORE, NULL, "the database is read-only"},
    {SQLITE_CORRUPT, LY_ESTORE, NULL, "the database file is corrupt"},
    {SQLITE_NOTADB, LY_ESTORE, NULL, "the file is not a database"},
    {SQLITE_PERM, LY_ESTORE, NULL, "access to the database file is denied"},
    {SQLITE_NOLFS, LY_ESTORE, NULL, "the database file is too large"},
    {SQLITE_NOMEM, LY_ENOMEM, NULL, "out of memory"},
};

/* "UNIQUE constraint failed: members.program_id, members.email": the last
 * column tells the constraint (named as on PostgreSQL). */
static const struct {
    const char *column;
    const char *constraint;
} sq_unique[] = {
    {"members.external_id", "members_external_id_key"},
    {"members.email", "members_email_key"},
    {"members.phone", "members_phone_key"},
    {"member_cards.card", "member_cards_pkey"},
    {"api_keys.id", "api_keys_pkey"},
    {"events.ext_id", "events_ext_id_key"},
    {"idempotency_keys.key", "idempotency_keys_pkey"},
    {"rules.version", "rules_version_key"}, /* before rules.rule_id, which it also lists */
    {"rules.rule_id", "rules_current_key"},
    {"event_rules.rule_row", "event_rules_pkey"},
};

typedef struct sq_conn {
    ly_conn base;
    sqlite3 *db;
    sqlite3_stmt *stmt[SQ_NSTMTS];
    /* A read transaction left open after its request ("parked"), with the
     * count of commits and the time when it began: the next read on this
     * connection reuses it while no commit came since and it is younger
     * than SQ_SNAPSHOT_NS, instead of taking the WAL read lock again. */
    int parked;
    uint64_t snap_commits;
    int64_t snap_ns;
} sq_conn;

/* Commits made by this process, to any database: a parked snapshot taken
 * before the latest is never reused, so a request always sees what was
 * answered before it began. Writes by other processes (the command line,
 * another server) are seen within SQ_SNAPSHOT_NS. */
static uint64_t sq_commits;
#define SQ_SNAPSHOT_NS 1000000

static int64_t sq_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int sq_snapshot_current(const sq_conn *c)
{
    return c->snap_commits == __atomic_load_n(&sq_commits, __ATOMIC_ACQUIRE) &&
           sq_now_ns() - c->snap_ns < SQ_SNAPSHOT_NS;
}

static void sq_unpark(sq_conn *c);

typedef int (*sq_reader)(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err);

static sq_conn *sq(ly_conn *c)
{
    return (sq_conn *)c;
}

/* Does msg list column (followed by a comma or its end)? */
static int lists_column(const char *msg, const char *column)
{
    size_t n = strlen(column);
    for (const char *p = strstr(msg, column); p; p = strstr(p + 1, column))
        if ((p == msg || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

static int sq_constraint(int ext, const char *msg, ly_error *err)
{
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
        for (size_t i = 0; i < sizeof sq_unique / sizeof sq_unique[0]; i++)
            if (lists_column(msg, sq_unique[i].column))
                return ly__store_conflict(err, sq_unique[i].constraint, msg);
        return ly__store_conflict(err, NULL, msg);
    }
    if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL,
                            "the program or member referred to does not exist");
    return ly_error_set(err, LY_EINVAL, NULL, NULL, "refused by the database: %s", msg);
}

/* Turns the connection's last error into an LY_E* code and a message. */
static int sq_fail(sq_conn *c, const char *what, ly_error *err)
{
    int ext = sqlite3_extended_errcode(c->db);
    const char *msg = sqlite3_errmsg(c->db);
    if ((ext & 0xff) == SQLITE_CONSTRAINT)
        return sq_constraint(ext, msg, err);
    if (ext == SQLITE_ERROR && strcmp(msg, "integer overflow") == 0)
        return ly__store_overflow(err);
    for (size_t i = 0; i < sizeof sq_errors / sizeof sq_errors[0]; i++)
        if ((ext & 0xff) == sq_errors[i].code)
            return ly_error_set(err, sq_errors[i].rc, sq_errors[i].wire, NULL, "%s (%s: %s)",
                                sq_errors[i].what, what, msg);
    return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "database error in %s: %s", what, msg);
}

static int sq_bind(sqlite3_stmt *st, const ly_sqlparam *p, int n)
{
    int rc = SQLITE_OK;
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        if (p[i].type == 'i')
            rc = sqlite3_bind_int64(st, i + 1, p[i].i);
        else if (p[i].type == 'b')
            rc = sqlite3_bind_blob(st, i + 1, p[i].b, (int)p[i].len, SQLITE_STATIC);
        else if (p[i].s)
            rc = sqlite3_bind_text(st, i + 1, p[i].s, -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(st, i + 1);
    }
    return rc;
}

/* Ends a use of a statement. reset repeats the error the last step already
 * reported, so its result is not looked at. */
static void sq_done(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

/* Prepares statement id (once per connection) and binds p; the caller steps
 * it and ends with sq_done. */
static int sq_start(sq_conn *c, int id, const ly_sqlparam *p, int n, sqlite3_stmt **out,
                    ly_error *err)
{
    if (c->parked)
        sq_unpark(c); /* a statement outside a transaction: not in an old snapshot */
    if (!c->stmt[id] && sqlite3_prepare_v3(c->db, sq_stmts[id].sql, -1, SQLITE_PREPARE_PERSISTENT,
                                           &c->stmt[id], NULL) != SQLITE_OK)
        return sq_fail(c, sq_stmts[id].name, err);
    if (sq_bind(c->stmt[id], p, n) != SQLITE_OK) {
        int rc = sq_fail(c, sq_stmts[id].name, err);
        sq_done(c->stmt[id]);
        return rc;
    }
    *out = c->stmt[id];
    return 0;
}

/* 1 for a row, 0 when done, or a negative code (err set). */
static int sq_step(sq_conn *c, int id, sqlite3_stmt *st, ly_error *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE && sqlite3_get_autocommit(c->db) && !sqlite3_stmt_readonly(st))
        __atomic_add_fetch(&sq_commits, 1, __ATOMIC_RELEASE); /* a write on its own */
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return sq_fail(c, sq_stmts[id].name, err);
}

/* Runs a statement that returns no rows; *changes (may be NULL) receives
 * how many rows it changed. */
static int sq_exec(sq_conn *c, int id, const ly_sqlparam *p, int n, int64_t *changes, ly_error *err)
{
    sqlite3_stmt *st;
    int rc = sq_start(c, id, p, n, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(c, id, st, err);
    if (rc > 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "%s returned rows", sq_stmts[id].name);
    if (rc == 0 && changes)
        *changes = sqlite3_changes(c->db);
    sq_done(st);
    return rc;
}

/* Reads the one row of statement id into out; LY_ENOTFOUND (err not set)
 * when there is none. */
static int sq_one(sq_conn *c, int id, const ly_sqlparam *p, int n, ly_arena *a, sq_reader read,
                  void *out, ly_error *err)
{
    sqlite3_stmt *st;
    int rc = sq_start(c, id, p, n, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(c, id, st, err);
    if (rc > 0)
        rc = read(st, a, out, err);
    else if (rc == 0)
        rc = LY_ENOTFOUND;
    sq_done(st);
    return rc;
}

/* Reads every row of statement id into an arena array of elements of size
 * sz. */
static int sq_all(sq_conn *c, int id, const ly_sqlparam *p, int n, ly_arena *a, sq_reader read,
                  size_t sz, void **out, size_t *count, ly_error *err)
{
    sqlite3_stmt *st;
    char *arr = NULL;
    size_t k = 0;
    int rc = sq_start(c, id, p, n, &st, err);
    if (rc < 0)
        return rc;
    while ((rc = sq_step(c, id, st, err)) > 0) {
        char *grown = ly__arena_grow(a, arr, k, sz);
        if (!grown) {
            rc = ly__store_nomem(err);
            break;
        }
        arr = grown;
        if ((rc = read(st, a, arr + k * sz, err)) < 0)
            break;
        k++;
    }
    sq_done(st);
    *out = rc < 0 ? NULL : arr;
    *count = rc < 0 ? 0 : k;
    return rc;
}

/* Column col as an arena string, NULL for SQL NULL. */
static int sq_text(sqlite3_stmt *st, int col, ly_arena *a, const char **out, ly_error *err)
{
    *out = NULL;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return 0;
    const unsigned char *t = sqlite3_column_text(st, col);
    if (t)
        *out = ly_arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, col));
    return *out ? 0 : ly__store_nomem(err);
}

/* Reads text columns first..first+n-1 into fields[0..n). */
static int sq_texts(sqlite3_stmt *st, int first, ly_arena *a, const char **fields[], int n,
                    ly_error *err)
{
    for (int i = 0; i < n; i++)
        if (sq_text(st, first + i, a, fields[i], err) < 0)
            return LY_ENOMEM;
    return 0;
}

static int sq_read_program(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_program *p = out;
    memset(p, 0, sizeof *p);
    const char **texts[] = {&p->name, &p->currency, &p->timezone};
    p->id = sqlite3_column_int64(st, 0);
    p->point_value_minor = sqlite3_column_int64(st, 4);
    p->created_at = sqlite3_column_int64(st, 6);
    p->updated_at = sqlite3_column_int64(st, 7);
    if (sq_texts(st, 1, a, texts, 3, err) < 0 || sq_text(st, 5, a, &p->settings, err) < 0)
        return LY_ENOMEM;
    return 0;
}

static int sq_read_member(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_member *m = out;
    memset(m, 0, sizeof *m);
    const char **texts[] = {&m->external_id, &m->email,      &m->phone, &m->name,
                            &m->birthdate,   &m->attributes, &m->status};
    m->id = sqlite3_column_int64(st, 0);
    m->program_id = sqlite3_column_int64(st, 1);
    m->created_at = sqlite3_column_int64(st, 9);
    m->updated_at = sqlite3_column_int64(st, 10);
    m->last_activity_at = sqlite3_column_int64(st, 11); /* NULL reads as 0 */
    m->lifetime_spend = sqlite3_column_int64(st, 12);
    m->purchase_count = sqlite3_column_int64(st, 13);
    m->last_purchase_at = sqlite3_column_int64(st, 14); /* NULL reads as 0 */
    m->points = sqlite3_column_int64(st, 15);
    m->credit = sqlite3_column_int64(st, 16);
    return sq_texts(st, 2, a, texts, 7, err);
}

/* A member row followed by its cards as one column (SQ_MEMBER_GET). */
static int sq_read_member_cards(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_member *m = out;
    int rc = sq_read_member(st, a, out, err);
    const char *cards = (const char *)sqlite3_column_text(st, 17);
    for (const char *p = cards; rc >= 0 && p && *p;) {
        const char *end = strchr(p, 31);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char card[128]; /* cards are at most 64 characters */
        snprintf(card, sizeof card, "%.*s", (int)(len < sizeof card ? len : sizeof card - 1), p);
        rc = ly__member_add_card(a, m, card, err);
        p = end ? end + 1 : p + len;
    }
    return rc;
}

static int sq_read_key(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_key *k = out;
    memset(k, 0, sizeof *k);
    const char **texts[] = {&k->scope, &k->name};
    k->program_id = sqlite3_column_int64(st, 1);
    k->created_at = sqlite3_column_int64(st, 5);
    k->revoked_at = sqlite3_column_int64(st, 6); /* NULL reads as 0 */
    if (sq_text(st, 0, a, &k->id, err) < 0 || sq_texts(st, 2, a, texts, 2, err) < 0)
        return LY_ENOMEM;
    const void *hash = sqlite3_column_blob(st, 4);
    if (!hash || sqlite3_column_bytes(st, 4) != (int)sizeof k->hash)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "key %s has a malformed hash", k->id);
    memcpy(k->hash, hash, sizeof k->hash);
    return 0;
}

/* Reads integer columns icols[0..ni) (NULL as 0) and text columns
 * tcols[0..nt) of a row. */
static int sq_columns(sqlite3_stmt *st, ly_arena *a, const int *icols, int64_t *ints[], int ni,
                      const int *tcols, const char **texts[], int nt, ly_error *err)
{
    for (int i = 0; i < ni; i++)
        *ints[i] = sqlite3_column_int64(st, icols[i]);
    for (int i = 0; i < nt; i++)
        if (sq_text(st, tcols[i], a, texts[i], err) < 0)
            return LY_ENOMEM;
    return 0;
}

#define SQ_COLUMNS(st, a, icols, ints, tcols, texts, err)                                          \
    sq_columns(st, a, icols, ints, LY_NPARAMS(icols), tcols, texts, LY_NPARAMS(tcols), err)

static int sq_read_entry(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_entry *e = out;
    static const int icols[] = {0, 1, 2, 4, 5, 8, 9}, tcols[] = {3, 6, 7};
    int64_t *ints[] = {&e->id,           &e->program_id,   &e->member_id, &e->event_id,
                       &e->ref_entry_id, &e->effective_at, &e->created_at};
    const char **texts[] = {&e->kind, &e->memo, &e->data};
    return SQ_COLUMNS(st, a, icols, ints, tcols, texts, err);
}

static int sq_read_lot(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_lot *l = out;
    static const int icols[] = {0, 1, 2, 4, 5, 6, 7, 8, 9}, tcols[] = {3};
    int64_t *ints[] = {&l->id,        &l->program_id,   &l->member_id,  &l->entry_id,  &l->amount,
                       &l->remaining, &l->available_at, &l->expires_at, &l->created_at};
    const char **texts[] = {&l->asset};
    return SQ_COLUMNS(st, a, icols, ints, tcols, texts, err);
}

static int sq_read_consumption(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    (void)a;
    (void)err;
    ly_consumption *k = out;
    k->entry_id = sqlite3_column_int64(st, 0);
    k->lot_id = sqlite3_column_int64(st, 1);
    k->amount = sqlite3_column_int64(st, 2);
    return 0;
}

static int sq_read_activity(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_activity *v = out;
    static const int icols[] = {0, 5, 6, 7, 8}, tcols[] = {1, 2, 3, 4, 9};
    int64_t *ints[] = {&v->entry_id, &v->amount, &v->event_id, &v->effective_at, &v->created_at};
    const char **texts[] = {&v->kind, &v->asset, &v->memo, &v->data, &v->event_ext_id};
    return SQ_COLUMNS(st, a, icols, ints, tcols, texts, err);
}

static int sq_read_event(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_event *ev = out;
    static const int icols[] = {0, 1, 4, 5, 7, 8, 9, 10, 11, 12, 13, 15, 19},
                     tcols[] = {2, 3, 6, 14, 16, 17, 18};
    int64_t *ints[] = {&ev->id,
                       &ev->program_id,
                       &ev->member_id,
                       &ev->amount,
                       &ev->occurred_at,
                       &ev->original_id,
                       &ev->points,
                       &ev->credit,
                       &ev->returned_amount,
                       &ev->reversed_points,
                       &ev->reversed_credit,
                       &ev->entry_id,
                       &ev->created_at};
    const char **texts[] = {&ev->ext_id, &ev->type,         &ev->currency, &ev->returned_items,
                            &ev->body,   &ev->request_hash, &ev->result};
    return SQ_COLUMNS(st, a, icols, ints, tcols, texts, err);
}

static int sq_read_redemption(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_redemption *r = out;
    static const int icols[] = {0, 1, 2, 4, 5, 7, 8, 9}, tcols[] = {3, 6};
    int64_t *ints[] = {&r->id,       &r->program_id,      &r->member_id,  &r->amount,
                       &r->entry_id, &r->cancel_entry_id, &r->created_at, &r->cancelled_at};
    const char **texts[] = {&r->asset, &r->status};
    return SQ_COLUMNS(st, a, icols, ints, tcols, texts, err);
}

static int sq_read_idem(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_idem *i = out;
    static const int tcols[] = {0, 1, 2, 4};
    const char **texts[] = {&i->key, &i->route, &i->request_hash, &i->response};
    i->status = sqlite3_column_int(st, 3);
    i->created_at = sqlite3_column_int64(st, 5);
    return sq_columns(st, a, NULL, NULL, 0, tcols, texts, LY_NPARAMS(tcols), err);
}

static int sq_read_rule(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_rule_row *r = out;
    static const int icols[] = {0, 1, 3, 7}, tcols[] = {2, 4};
    int64_t *ints[] = {&r->id, &r->program_id, &r->version, &r->created_at};
    const char **texts[] = {&r->rule_id, &r->body};
    r->deleted = sqlite3_column_int(st, 5);
    r->current = sqlite3_column_int(st, 6);
    return SQ_COLUMNS(st, a, icols, ints, tcols, texts, err);
}

static int sq_read_usage(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    (void)a;
    (void)err;
    ly_rule_usage *u = out;
    u->points = sqlite3_column_int64(st, 0);
    u->credit = sqlite3_column_int64(st, 1);
    u->count = sqlite3_column_int64(st, 2);
    return 0;
}

static int sq_read_event_rule(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly_event_rule *x = out;
    static const int icols[] = {0, 1, 3, 4, 5, 6, 7}, tcols[] = {2};
    int64_t *ints[] = {&x->event_id, &x->rule_row,        &x->version,        &x->points,
                       &x->credit,   &x->reversed_points, &x->reversed_credit};
    const char **texts[] = {&x->rule_id};
    return SQ_COLUMNS(st, a, icols, ints, tcols, texts, err);
}

static int sq_read_id(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    (void)a;
    (void)err;
    *(int64_t *)out = sqlite3_column_int64(st, 0);
    return 0;
}

static int sq_read_text(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    return sq_text(st, 0, a, out, err);
}

/* Loads the cards of the members ms[0..n) (sorted by id, every member of the
 * program with an id in (after_id, last id]). */
static int sq_cards(sq_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, ly_member *ms,
                    size_t n, ly_error *err)
{
    if (n == 0)
        return 0;
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(after_id), LY_PI(ms[n - 1].id)};
    sqlite3_stmt *st;
    int rc = sq_start(c, SQ_CARDS_RANGE, p, LY_NPARAMS(p), &st, err);
    if (rc < 0)
        return rc;
    while ((rc = sq_step(c, SQ_CARDS_RANGE, st, err)) > 0) {
        ly_member *m = ly__member_in(ms, n, sqlite3_column_int64(st, 0));
        const char *card = (const char *)sqlite3_column_text(st, 1);
        if (!card)
            rc = ly__store_nomem(err);
        else if (m)
            rc = ly__member_add_card(a, m, card, err);
        if (rc < 0)
            break;
    }
    sq_done(st);
    return rc;
}

static int sq_run(ly_conn *c, int id, ly_error *err)
{
    return sq_exec(sq(c), id, NULL, 0, NULL, err);
}

/* A transaction that only read, still current, is parked rather than
 * rolled back (see sq_conn); anything else is rolled back. */
static void sq_rollback(ly_conn *c)
{
    sq_conn *s = sq(c);
    if (sqlite3_get_autocommit(s->db)) {
        s->parked = 0;
        return;
    }
    if (sqlite3_txn_state(s->db, NULL) != SQLITE_TXN_WRITE && sq_snapshot_current(s)) {
        s->parked = 1;
        return;
    }
    s->parked = 0;
    (void)sq_run(c, SQ_ROLLBACK, NULL);
}

static void sq_unpark(sq_conn *c)
{
    c->parked = 0;
    if (!sqlite3_get_autocommit(c->db))
        (void)sq_run(&c->base, SQ_ROLLBACK, NULL);
}

/* For the pool: lets an idle connection's parked snapshot go, so that it
 * does not hold the WAL back from a checkpoint. */
static void sq_release_snapshot(ly_conn *c)
{
    if (sq(c)->parked)
        sq_unpark(sq(c));
}

static int64_t sq_changes(ly_conn *c)
{
    return sqlite3_total_changes64(sq(c)->db);
}

/* Savepoints run a thousand times a second under group commit: prepared,
 * not parsed each time. */
static int sq_savepoint(ly_conn *c, int op, ly_error *err)
{
    static const int ids[] = {SQ_SP_OPEN, SQ_SP_RELEASE, SQ_SP_ROLLBACK};
    return sq_run(c, ids[op], err);
}

static void sq_close(ly_conn *c)
{
    sq_conn *s = sq(c);
    for (int i = 0; i < SQ_NSTMTS; i++)
        (void)sqlite3_finalize(s->stmt[i]);
    (void)sqlite3_close_v2(s->db);
    free(s);
}

/* checked_add(a, b): a + b, or the error "integer overflow" where SQLite's own
 * + would give an inexact real. */
static void sq_checked_add(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    int64_t sum;
    if (__builtin_add_overflow((int64_t)sqlite3_value_int64(argv[0]),
                               (int64_t)sqlite3_value_int64(argv[1]), &sum))
        sqlite3_result_error(ctx, "integer overflow", -1);
    else
        sqlite3_result_int64(ctx, sum);
}

/* A cap on the database's size in pages (PRAGMA max_page_count), from
 * LOYAL_SQLITE_MAX_PAGES (`loyal serve --max-db-pages`): a write that would
 * grow the file past it fails as if the disk were full, before the disk
 * really is. SQLite keeps a cap below the current size at the current size. */
static int sq_max_pages(sq_conn *c, ly_error *err)
{
    const char *v = getenv(SQ_MAX_PAGES_ENV);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end || errno || n < 1 || n > 4294967294LL)
        return ly_error_set(err, LY_EINVAL, NULL, NULL,
                            SQ_MAX_PAGES_ENV " must be a whole number from 1 to 4294967294, "
                                             "not \"%.40s\"",
                            v);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld", n);
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(c, "max_page_count", err);
    return 0;
}

/* Before SQLite initialises: no global allocation statistics, whose mutex
 * every connection would otherwise contend on. */
static void sq_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sq_open(const char *path, ly_conn **out, ly_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sq_configure);
    /* A 64 MiB page cache per connection: the default 2 MiB makes a busy
     * writer read pages back from the file. (Statement journals stay in
     * temporary files: in memory, truncating them costs time proportional to
     * the transaction, which group commit makes large.) */
    static const char *const setup[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                                        "PRAGMA foreign_keys=ON", "PRAGMA cache_size=-65536"};
    if (strcmp(path, ":memory:") == 0)
        return ly_error_set(err, LY_EINVAL, NULL, "url",
                            "an in-memory database cannot be shared by a pool: give a file path");
    sq_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ly__store_nomem(err);
    c->base.ops = &ly__sqlite_ops;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = 0;
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        rc = c->db ? sq_fail(c, path, err) : ly__store_nomem(err);
        goto fail;
    }
    if (sqlite3_extended_result_codes(c->db, 1) != SQLITE_OK ||
        sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        rc = sq_fail(c, path, err);
        goto fail;
    }
    for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++)
        if (sqlite3_exec(c->db, setup[i], NULL, NULL, NULL) != SQLITE_OK) {
            rc = sq_fail(c, setup[i], err);
            goto fail;
        }
    if ((rc = sq_max_pages(c, err)) != 0)
        goto fail;
    if (sqlite3_create_function_v2(c->db, "checked_add", 2,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                   sq_checked_add, NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_fail(c, "checked_add", err);
        goto fail;
    }
    *out = &c->base;
    return 0;
fail:
    sq_close(&c->base);
    return rc;
}

/* Each migration runs under BEGIN IMMEDIATE, which is lock enough. */
static int sq_migrate_lock(ly_conn *c, int lock, ly_error *err)
{
    (void)c;
    (void)lock;
    (void)err;
    return 0;
}

static int sq_exec_script(ly_conn *c, const char *sql, ly_error *err)
{
    sq_release_snapshot(c);
    if (sqlite3_exec(sq(c)->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(sq(c), "migration", err);
    return 0;
}

static int sq_migration_applied(ly_conn *c, int version, int *applied, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(version)};
    sqlite3_stmt *st;
    int rc = sq_start(sq(c), SQ_MIGRATION_APPLIED, p, LY_NPARAMS(p), &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(sq(c), SQ_MIGRATION_APPLIED, st, err);
    sq_done(st);
    *applied = rc > 0;
    return rc < 0 ? rc : 0;
}

static int sq_migration_record(ly_conn *c, const ly_migration *m, int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->version), LY_PS(m->name), LY_PI(now)};
    return sq_exec(sq(c), SQ_MIGRATION_RECORD, p, LY_NPARAMS(p), NULL, err);
}

/* The integer in the first column of the first row of statement id: 1 when
 * there is a row, 0 when none. */
static int sq_int(sq_conn *c, int id, const ly_sqlparam *p, int n, int64_t *v, ly_error *err)
{
    sqlite3_stmt *st;
    int rc = sq_start(c, id, p, n, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(c, id, st, err);
    if (rc > 0)
        *v = sqlite3_column_int64(st, 0);
    sq_done(st);
    return rc;
}

/* The single integer a statement without parameters returns. */
static int sq_scalar(sq_conn *c, int id, int64_t *v, ly_error *err)
{
    int rc = sq_int(c, id, NULL, 0, v, err);
    if (rc == 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "%s returned no row", sq_stmts[id].name);
    return rc < 0 ? rc : 0;
}

static int sq_schema_version(ly_conn *c, int *version, ly_error *err)
{
    int64_t v = 0;
    int rc = sq_scalar(sq(c), SQ_SCHEMA_EXISTS, &v, err);
    if (rc == 0 && v)
        rc = sq_scalar(sq(c), SQ_SCHEMA_VERSION, &v, err);
    *version = rc == 0 ? (int)v : 0;
    return rc;
}

static int sq_begin_write(ly_conn *c, ly_error *err)
{
    return sq_run(c, SQ_BEGIN_WRITE, err);
}

static int sq_begin_read(ly_conn *c, ly_error *err)
{
    sq_conn *s = sq(c);
    if (s->parked) {
        s->parked = 0;
        if (sq_snapshot_current(s))
            return 0;
        (void)sq_run(c, SQ_ROLLBACK, NULL);
    }
    /* Counted before the snapshot is taken (at the first read): a commit in
     * between makes the count look older than the snapshot, never newer. */
    s->snap_commits = __atomic_load_n(&sq_commits, __ATOMIC_ACQUIRE);
    s->snap_ns = sq_now_ns();
    return sq_run(c, SQ_BEGIN_READ, err);
}

/* A failed commit leaves no transaction behind. A commit that wrote is
 * counted before anyone is answered, so no later request reuses a snapshot
 * from before it. */
static int sq_commit(ly_conn *c, ly_error *err)
{
    int wrote = sqlite3_txn_state(sq(c)->db, NULL) == SQLITE_TXN_WRITE;
    int rc = sq_run(c, SQ_COMMIT, err);
    if (rc < 0) {
        if (!sqlite3_get_autocommit(sq(c)->db))
            (void)sq_run(c, SQ_ROLLBACK, NULL);
        return rc;
    }
    if (wrote)
        __atomic_add_fetch(&sq_commits, 1, __ATOMIC_RELEASE);
    return rc;
}

static int sq_program_get(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out,
                          ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id)};
    int rc = sq_one(sq(c), SQ_PROGRAM_GET, p, LY_NPARAMS(p), a, sq_read_program, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "program %" PRId64 " not found", program_id);
    return rc;
}

static int sq_program_put(ly_conn *c, const ly_program *pr, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(pr->id),
                       LY_PS(pr->name),
                       LY_PS(pr->currency),
                       LY_PS(pr->timezone),
                       LY_PI(pr->point_value_minor),
                       LY_PS(pr->settings),
                       LY_PI(pr->updated_at)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_PROGRAM_PUT, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "program %" PRId64 " not found", pr->id);
    return rc;
}

static int sq_member_insert(ly_conn *c, ly_member *m, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->program_id), LY_PS(m->external_id), LY_PS(m->email),
                       LY_PS(m->phone),      LY_PS(m->name),        LY_PS(m->birthdate),
                       LY_PS(m->attributes), LY_PS(m->status),      LY_PI(m->created_at),
                       LY_PI(m->updated_at)};
    int rc = sq_exec(sq(c), SQ_MEMBER_INSERT, p, LY_NPARAMS(p), NULL, err);
    if (rc == 0)
        m->id = sqlite3_last_insert_rowid(sq(c)->db);
    return rc;
}

static int sq_member_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                         ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = sq_one(sq(c), SQ_MEMBER_GET, p, LY_NPARAMS(p), a, sq_read_member_cards, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "member %" PRId64 " not found", id);
    return rc < 0 ? rc : 0;
}

static int sq_member_find(ly_conn *c, ly_arena *a, int64_t program_id, int by, const char *value,
                          ly_member *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(value)};
    int id = SQ_MEMBER_BY_EXTERNAL_ID + by;
    int rc = sq_one(sq(c), id, p, LY_NPARAMS(p), a, sq_read_member, out, err);
    if (rc == LY_ENOTFOUND)
        return ly__member_not_found(err, by);
    return rc < 0 ? rc : sq_cards(sq(c), a, program_id, out->id - 1, out, 1, err);
}

static int sq_member_update(ly_conn *c, const ly_member *m, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->program_id), LY_PI(m->id),         LY_PS(m->external_id),
                       LY_PS(m->email),      LY_PS(m->phone),      LY_PS(m->name),
                       LY_PS(m->birthdate),  LY_PS(m->attributes), LY_PS(m->status),
                       LY_PI(m->updated_at)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_MEMBER_UPDATE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "member %" PRId64 " not found", m->id);
    return rc;
}

static int sq_member_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                          ly_member **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(after_id), LY_PI(limit)};
    void *arr = NULL;
    int rc = sq_all(sq(c), SQ_MEMBER_LIST, p, LY_NPARAMS(p), a, sq_read_member, sizeof(ly_member),
                    &arr, n, err);
    *out = arr;
    return rc < 0 ? rc : sq_cards(sq(c), a, program_id, after_id, *out, *n, err);
}

static int sq_card_attach(ly_conn *c, int64_t program_id, int64_t member_id, const char *card,
                          int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(card), LY_PI(member_id), LY_PI(now)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_CARD_ATTACH, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "member %" PRId64 " not found",
                            member_id);
    return rc;
}

static int sq_key_insert(ly_conn *c, const ly_key *k, ly_error *err)
{
    ly_sqlparam p[] = {LY_PS(k->id),        LY_PI(k->program_id),           LY_PS(k->scope),
                       LY_PS(k->name),      LY_PB(k->hash, sizeof k->hash), LY_PI(k->created_at),
                       LY_PI(k->revoked_at)};
    return sq_exec(sq(c), SQ_KEY_INSERT, p, LY_NPARAMS(p), NULL, err);
}

static int sq_key_get(ly_conn *c, ly_arena *a, const char *id, ly_key *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PS(id)};
    int rc = sq_one(sq(c), SQ_KEY_GET, p, LY_NPARAMS(p), a, sq_read_key, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "no such key");
    return rc;
}

static int sq_key_list(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                       ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id)};
    void *arr = NULL;
    int rc =
        sq_all(sq(c), SQ_KEY_LIST, p, LY_NPARAMS(p), a, sq_read_key, sizeof(ly_key), &arr, n, err);
    *out = arr;
    return rc;
}

static int sq_key_revoke(ly_conn *c, int64_t program_id, const char *id, int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(id), LY_PI(now)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_KEY_REVOKE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "no such key");
    return rc;
}

static int sq_table_counts(ly_conn *c, int64_t rows[LY_STORE_NTABLES], ly_error *err)
{
    sqlite3_stmt *st;
    int rc = sq_start(sq(c), SQ_TABLE_COUNTS, NULL, 0, &st, err);
    if (rc < 0)
        return rc;
    rc = sq_step(sq(c), SQ_TABLE_COUNTS, st, err);
    if (rc == 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "table_counts returned no row");
    for (int i = 0; rc > 0 && i < LY_STORE_NTABLES; i++)
        rows[i] = sqlite3_column_int64(st, i);
    sq_done(st);
    return rc < 0 ? rc : 0;
}

/* Several statements that must take effect together: inside the caller's
 * transaction its rollback undoes them all; outside one, a savepoint holds
 * them. *own says whether the savepoint was taken. */
static int sq_atomic_begin(sq_conn *c, int *own, ly_error *err)
{
    if (c->parked)
        sq_unpark(c);
    *own = sqlite3_get_autocommit(c->db);
    return *own ? sq_exec(c, SQ_SAVEPOINT, NULL, 0, NULL, err) : 0;
}

/* Ends what sq_atomic_begin started, with the result rc of the statements. */
static int sq_atomic_end(sq_conn *c, int own, int rc, ly_error *err)
{
    if (!own)
        return rc;
    if (rc == 0)
        rc = sq_exec(c, SQ_RELEASE, NULL, 0, NULL, err);
    if (rc == 0)
        __atomic_add_fetch(&sq_commits, 1, __ATOMIC_RELEASE); /* the release committed */
    else
        sq_unpark(c); /* rolls the savepoint's transaction back */
    return rc;
}

static int sq_member_lock(ly_conn *c, int64_t program_id, int64_t member_id, int *active,
                          ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id)};
    int64_t one = 0;
    int rc = sq_int(sq(c), SQ_MEMBER_LOCK, p, LY_NPARAMS(p), &one, err);
    if (rc == 0)
        return ly__store_not_found(err, "member", member_id);
    if (active)
        *active = one == 1;
    return rc < 0 ? rc : 0;
}

static int sq_member_touch(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                           ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PI(at)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_MEMBER_TOUCH, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly__store_not_found(err, "member", member_id);
    return rc;
}

/* One statement for the entry, then two per posting: the account's upsert,
 * which gives its id, and the posting. */
static int sq_entry_insert(ly_conn *c, ly_entry *e, const ly_posting *ps, size_t n, ly_error *err)
{
    sq_conn *s = sq(c);
    ly_sqlparam p[] = {LY_PI(e->program_id), LY_PI(e->member_id),    LY_PS(e->kind),
                       LY_PI(e->event_id),   LY_PI(e->ref_entry_id), LY_PS(e->memo),
                       LY_PS(e->data),       LY_PI(e->effective_at), LY_PI(e->created_at)};
    int own;
    int64_t id = 0;
    int rc = sq_atomic_begin(s, &own, err);
    if (rc < 0)
        return rc;
    if ((rc = sq_exec(s, SQ_ENTRY_INSERT, p, LY_NPARAMS(p), NULL, err)) == 0)
        id = sqlite3_last_insert_rowid(s->db);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        ly_sqlparam ap[] = {LY_PI(e->program_id), LY_PI(ps[i].member_id), LY_PS(ps[i].kind),
                            LY_PS(ps[i].asset),   LY_PI(ps[i].amount),    LY_PI(id)};
        int member = ps[i].member_id != 0;
        int64_t changed = 0;
        /* A member account's balance moves with its postings. */
        if (member)
            rc = sq_exec(s, SQ_ACCOUNT_ADD, ap, 5, &changed, err);
        if (rc == 0 && (changed || !member))
            rc = sq_exec(s, SQ_POSTING_ADD, ap, 6, &changed, err);
        if (rc == 0 && !changed) {
            /* No such account yet: made, holding the posting's amount. */
            ap[4].i = member ? ps[i].amount : 0;
            if ((rc = sq_exec(s, SQ_ACCOUNT_CREATE, ap, 5, NULL, err)) == 0) {
                ly_sqlparam pp[] = {LY_PI(id), LY_PI(sqlite3_last_insert_rowid(s->db)),
                                    LY_PI(ps[i].amount)};
                rc = sq_exec(s, SQ_POSTING_INSERT, pp, LY_NPARAMS(pp), &changed, err);
            }
        }
        if (rc == 0 && changed != 1)
            rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "posting to account %s %s not made",
                              ps[i].kind, ps[i].asset);
    }
    rc = sq_atomic_end(s, own, rc, err);
    if (rc == 0)
        e->id = id;
    return rc;
}

static int sq_entry_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_entry *out,
                        ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = sq_one(sq(c), SQ_ENTRY_GET, p, LY_NPARAMS(p), a, sq_read_entry, out, err);
    return rc == LY_ENOTFOUND ? ly__store_not_found(err, "entry", id) : rc;
}

static int sq_account_balance(ly_conn *c, int64_t program_id, int64_t member_id, const char *kind,
                              const char *asset, int64_t *balance, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PS(kind), LY_PS(asset)};
    *balance = 0;
    int rc = sq_int(sq(c), member_id ? SQ_ACCOUNT_BALANCE : SQ_ACCOUNT_POSTED, p, LY_NPARAMS(p),
                    balance, err);
    return rc < 0 ? rc : 0;
}

static int sq_lot_insert(ly_conn *c, ly_lot *l, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(l->program_id),   LY_PI(l->member_id),  LY_PS(l->asset),
                       LY_PI(l->entry_id),     LY_PI(l->amount),     LY_PI(l->remaining),
                       LY_PI(l->available_at), LY_PI(l->expires_at), LY_PI(l->created_at)};
    int rc = sq_exec(sq(c), SQ_LOT_INSERT, p, LY_NPARAMS(p), NULL, err);
    if (rc == 0)
        l->id = sqlite3_last_insert_rowid(sq(c)->db);
    return rc;
}

/* Every row of statement id into *out, an arena array of T. */
#define SQ_ALL(c, id, p, a, read, T, out, n, err)                                                  \
    do {                                                                                           \
        void *arr_ = NULL;                                                                         \
        rc = sq_all(sq(c), id, p, LY_NPARAMS(p), a, read, sizeof(T), &arr_, n, err);               \
        *(out) = arr_;                                                                             \
    } while (0)

static int sq_read_balance_row(sqlite3_stmt *st, ly_arena *a, void *out, ly_error *err)
{
    ly__balance_row *r = out;
    const char *asset = (const char *)sqlite3_column_text(st, 1);
    r->kind = sqlite3_column_int64(st, 0);
    r->points = asset && strcmp(asset, "points") == 0;
    r->asset_known = r->points || (asset && strcmp(asset, "credit") == 0);
    for (int i = 0; i < 3; i++)
        r->v[i] = sqlite3_column_int64(st, 2 + i);
    return 0;
}

static int sq_member_balances(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                              int64_t as_of, int max_groups, ly__balance_row **rows, size_t *n,
                              ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PI(as_of), LY_PI(max_groups)};
    int rc;
    SQ_ALL(c, SQ_MEMBER_BALANCES, p, a, sq_read_balance_row, ly__balance_row, rows, n, err);
    return rc;
}

static int sq_lots_open(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                        const char *asset, ly_lot **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PS(asset)};
    int rc;
    SQ_ALL(c, SQ_LOTS_OPEN, p, a, sq_read_lot, ly_lot, out, n, err);
    return rc;
}

static int sq_lots_of_entry(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                            ly_lot **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(entry_id)};
    int rc;
    SQ_ALL(c, SQ_LOTS_OF_ENTRY, p, a, sq_read_lot, ly_lot, out, n, err);
    return rc;
}

static int sq_lot_forgiven(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t *out,
                           ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(lot_id)};
    *out = 0;
    int rc = sq_int(sq(c), SQ_LOT_FORGIVEN, p, LY_NPARAMS(p), out, err);
    return rc < 0 ? rc : 0;
}

static int sq_lot_forgive(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t delta,
                          ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(lot_id), LY_PI(delta)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_LOT_FORGIVE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL,
                          "lot %" PRId64 " cannot have %" PRId64 " more forgiven", lot_id, delta);
    return rc;
}

/* The lot first, so that a refused consumption writes nothing. */
static int sq_consumption_insert(ly_conn *c, int64_t program_id, const ly_consumption *k,
                                 ly_error *err)
{
    sq_conn *s = sq(c);
    ly_sqlparam lp[] = {LY_PI(program_id), LY_PI(k->lot_id), LY_PI(k->amount)};
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(k->entry_id), LY_PI(k->lot_id), LY_PI(k->amount)};
    int64_t changed = 0;
    int own;
    int rc = sq_atomic_begin(s, &own, err);
    if (rc < 0)
        return rc;
    rc = sq_exec(s, SQ_LOT_CONSUME, lp, LY_NPARAMS(lp), &changed, err);
    if (rc == 0 && changed == 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "lot %" PRId64 " cannot give %" PRId64,
                          k->lot_id, k->amount);
    if (rc == 0)
        rc = sq_exec(s, SQ_CONSUMPTION_INSERT, p, LY_NPARAMS(p), NULL, err);
    return sq_atomic_end(s, own, rc, err);
}

static int sq_consumptions_of_entry(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                                    ly_consumption **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(entry_id)};
    int rc;
    SQ_ALL(c, SQ_CONSUMPTIONS_OF_ENTRY, p, a, sq_read_consumption, ly_consumption, out, n, err);
    return rc;
}

static int sq_lots_expired(ly_conn *c, ly_arena *a, int64_t program_id, int64_t as_of, int limit,
                           ly_lot **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(as_of), LY_PI(limit)};
    int rc;
    SQ_ALL(c, SQ_LOTS_EXPIRED, p, a, sq_read_lot, ly_lot, out, n, err);
    return rc;
}

static int sq_members_inactive(ly_conn *c, ly_arena *a, int64_t program_id, int64_t before,
                               int64_t after_id, int limit, int64_t **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(before), LY_PI(after_id), LY_PI(limit)};
    int rc;
    SQ_ALL(c, SQ_MEMBERS_INACTIVE, p, a, sq_read_id, int64_t, out, n, err);
    return rc;
}

static int sq_activity(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                       int64_t before_entry, int limit, ly_activity **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PI(before_entry), LY_PI(limit)};
    int rc;
    SQ_ALL(c, SQ_ACTIVITY, p, a, sq_read_activity, ly_activity, out, n, err);
    return rc;
}

static int sq_event_insert(ly_conn *c, ly_event *ev, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(ev->program_id),
                       LY_PS(ev->ext_id),
                       LY_PS(ev->type),
                       LY_PI(ev->member_id),
                       LY_PI(ev->amount),
                       LY_PS(ev->currency),
                       LY_PI(ev->occurred_at),
                       LY_PI(ev->original_id),
                       LY_PI(ev->points),
                       LY_PI(ev->credit),
                       LY_PI(ev->returned_amount),
                       LY_PI(ev->reversed_points),
                       LY_PI(ev->reversed_credit),
                       LY_PS(ev->returned_items),
                       LY_PI(ev->entry_id),
                       LY_PS(ev->body),
                       LY_PS(ev->request_hash),
                       LY_PS(ev->result),
                       LY_PI(ev->created_at),
                       LY_PI(ev->id)};
    int rc = sq_exec(sq(c), SQ_EVENT_INSERT, p, LY_NPARAMS(p), NULL, err);
    if (rc == 0)
        ev->id = sqlite3_last_insert_rowid(sq(c)->db);
    return rc;
}

static int sq_event_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *ext_id,
                        ly_event *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(ext_id)};
    int rc = sq_one(sq(c), SQ_EVENT_GET, p, LY_NPARAMS(p), a, sq_read_event, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "no event with this id");
    return rc;
}

static int sq_event_get_by_id(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id,
                              ly_event *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = sq_one(sq(c), SQ_EVENT_GET_BY_ID, p, LY_NPARAMS(p), a, sq_read_event, out, err);
    return rc == LY_ENOTFOUND ? ly__store_not_found(err, "event", id) : rc;
}

static int sq_event_next_id(ly_conn *c, int64_t *id, ly_error *err)
{
    return sq_scalar(sq(c), SQ_EVENT_NEXT_ID, id, err);
}

static int sq_event_update(ly_conn *c, const ly_event *ev, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(ev->program_id),      LY_PI(ev->id),
                       LY_PI(ev->entry_id),        LY_PI(ev->points),
                       LY_PI(ev->credit),          LY_PI(ev->returned_amount),
                       LY_PI(ev->reversed_points), LY_PI(ev->reversed_credit),
                       LY_PS(ev->returned_items),  LY_PS(ev->result)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_EVENT_UPDATE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly__store_not_found(err, "event", ev->id);
    return rc;
}

static int sq_redemption_insert(ly_conn *c, ly_redemption *r, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(r->program_id),      LY_PI(r->member_id),  LY_PS(r->asset),
                       LY_PI(r->amount),          LY_PI(r->entry_id),   LY_PS(r->status),
                       LY_PI(r->cancel_entry_id), LY_PI(r->created_at), LY_PI(r->cancelled_at)};
    int rc = sq_exec(sq(c), SQ_REDEMPTION_INSERT, p, LY_NPARAMS(p), NULL, err);
    if (rc == 0)
        r->id = sqlite3_last_insert_rowid(sq(c)->db);
    return rc;
}

static int sq_redemption_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id,
                             ly_redemption *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = sq_one(sq(c), SQ_REDEMPTION_GET, p, LY_NPARAMS(p), a, sq_read_redemption, out, err);
    return rc == LY_ENOTFOUND ? ly__store_not_found(err, "redemption", id) : rc;
}

static int sq_redemption_cancel(ly_conn *c, const ly_redemption *r, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(r->program_id), LY_PI(r->id), LY_PI(r->cancel_entry_id),
                       LY_PI(r->cancelled_at)};
    int64_t changed = 0, one;
    int rc = sq_exec(sq(c), SQ_REDEMPTION_CANCEL, p, LY_NPARAMS(p), &changed, err);
    if (rc < 0 || changed)
        return rc;
    rc = sq_int(sq(c), SQ_REDEMPTION_EXISTS, p, 2, &one, err);
    if (rc > 0)
        return ly_error_set(err, LY_EREFUSED, "already_cancelled", NULL,
                            "redemption %" PRId64 " is already cancelled", r->id);
    return rc < 0 ? rc : ly__store_not_found(err, "redemption", r->id);
}

static int sq_idem_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *key, ly_idem *out,
                       ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(key)};
    int rc = sq_one(sq(c), SQ_IDEM_GET, p, LY_NPARAMS(p), a, sq_read_idem, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "the idempotency_key was not used yet");
    return rc;
}

static int sq_idem_put(ly_conn *c, int64_t program_id, const ly_idem *i, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id),      LY_PS(i->key),    LY_PS(i->route),
                       LY_PS(i->request_hash), LY_PI(i->status), LY_PS(i->response),
                       LY_PI(i->created_at)};
    return sq_exec(sq(c), SQ_IDEM_PUT, p, LY_NPARAMS(p), NULL, err);
}

static int sq_verify(ly_conn *c, ly_arena *a, int check, int limit, const char ***details,
                     size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(limit)};
    int rc;
    SQ_ALL(c, SQ_VERIFY_FIRST + check, p, a, sq_read_text, const char *, details, n, err);
    return rc;
}

static int sq_member_purchase(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                              int64_t spend, int64_t count, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PI(at), LY_PI(spend), LY_PI(count)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_MEMBER_PURCHASE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly__store_not_found(err, "member", member_id);
    return rc;
}

static int sq_members_by_birthday(ly_conn *c, ly_arena *a, int64_t program_id, const char *mmdd,
                                  int64_t after_id, int limit, ly_member **out, size_t *n,
                                  ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(mmdd), LY_PI(after_id), LY_PI(limit)};
    int rc;
    SQ_ALL(c, SQ_MEMBERS_BY_BIRTHDAY, p, a, sq_read_member, ly_member, out, n, err);
    return rc < 0 ? rc : sq_cards(sq(c), a, program_id, after_id, *out, *n, err);
}

/* The version that was current stops being so, then the new one is. */
static int sq_rule_insert(ly_conn *c, ly_rule_row *r, ly_error *err)
{
    sq_conn *s = sq(c);
    ly_sqlparam p[] = {LY_PI(r->program_id), LY_PS(r->rule_id),         LY_PI(r->version),
                       LY_PS(r->body),       LY_PI(r->deleted ? 1 : 0), LY_PI(r->created_at)};
    int own;
    int64_t id = 0;
    int rc = sq_atomic_begin(s, &own, err);
    if (rc < 0)
        return rc;
    rc = sq_exec(s, SQ_RULE_UNCURRENT, p, 2, NULL, err);
    if (rc == 0 && (rc = sq_exec(s, SQ_RULE_INSERT, p, LY_NPARAMS(p), NULL, err)) == 0)
        id = sqlite3_last_insert_rowid(s->db);
    rc = sq_atomic_end(s, own, rc, err);
    if (rc == 0) {
        r->id = id;
        r->current = 1;
    }
    return rc;
}

static int sq_rule_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                       int64_t version, ly_rule_row *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(rule_id), LY_PI(version)};
    int id = version ? SQ_RULE_GET : SQ_RULE_CURRENT;
    int rc = sq_one(sq(c), id, p, version ? 3 : 2, a, sq_read_rule, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "no rule %.128s%s", rule_id ? rule_id : "",
                            version ? " of that version" : "");
    return rc;
}

static int sq_rule_list(ly_conn *c, ly_arena *a, int64_t program_id, const char *after, int limit,
                        ly_rule_row **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(after), LY_PI(limit)};
    int rc;
    SQ_ALL(c, after ? SQ_RULE_LIST_AFTER : SQ_RULE_LIST_FIRST, p, a, sq_read_rule, ly_rule_row, out,
           n, err);
    return rc;
}

static int sq_rule_versions(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                            int64_t after, int limit, ly_rule_row **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(rule_id), LY_PI(after), LY_PI(limit)};
    int rc;
    SQ_ALL(c, SQ_RULE_VERSIONS, p, a, sq_read_rule, ly_rule_row, out, n, err);
    return rc;
}

static int sq_rule_usage_get(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                             int64_t period_start, ly_rule_usage *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(rule_id), LY_PI(member_id), LY_PI(period_start)};
    memset(out, 0, sizeof *out);
    int rc = sq_one(sq(c), SQ_RULE_USAGE_GET, p, LY_NPARAMS(p), NULL, sq_read_usage, out, err);
    return rc == LY_ENOTFOUND ? 0 : rc;
}

static int sq_rule_usage_add(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                             int64_t period_start, const ly_rule_usage *d, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(rule_id),   LY_PI(member_id), LY_PI(period_start),
                       LY_PI(d->points),  LY_PI(d->credit), LY_PI(d->count)};
    return sq_exec(sq(c), SQ_RULE_USAGE_ADD, p, LY_NPARAMS(p), NULL, err);
}

static int sq_event_rule_insert(ly_conn *c, int64_t program_id, const ly_event_rule *r,
                                ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id),        LY_PI(r->event_id), LY_PI(r->rule_row),
                       LY_PI(r->points),         LY_PI(r->credit),   LY_PI(r->reversed_points),
                       LY_PI(r->reversed_credit)};
    return sq_exec(sq(c), SQ_EVENT_RULE_INSERT, p, LY_NPARAMS(p), NULL, err);
}

static int sq_event_rules(ly_conn *c, ly_arena *a, int64_t program_id, int64_t event_id,
                          ly_event_rule **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(event_id)};
    int rc;
    SQ_ALL(c, SQ_EVENT_RULES, p, a, sq_read_event_rule, ly_event_rule, out, n, err);
    return rc;
}

static int sq_event_rule_update(ly_conn *c, int64_t program_id, const ly_event_rule *r,
                                ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(r->event_id), LY_PI(r->rule_row),
                       LY_PI(r->reversed_points), LY_PI(r->reversed_credit)};
    int64_t changed = 0;
    int rc = sq_exec(sq(c), SQ_EVENT_RULE_UPDATE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL,
                            "event %" PRId64 " has no row for rule version %" PRId64, r->event_id,
                            r->rule_row);
    return rc;
}

const ly_store_ops ly__sqlite_ops = {
    .name = "sqlite",
    .migrations = ly__migrations_sqlite,
    .open = sq_open,
    .close = sq_close,
    .check = NULL,
    .reset = sq_rollback,
    .release_snapshot = sq_release_snapshot,
    .migrate_lock = sq_migrate_lock,
    .exec_script = sq_exec_script,
    .migration_applied = sq_migration_applied,
    .migration_record = sq_migration_record,
    .schema_version = sq_schema_version,
    .begin_write = sq_begin_write,
    .begin_read = sq_begin_read,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .program_get = sq_program_get,
    .program_put = sq_program_put,
    .member_insert = sq_member_insert,
    .member_get = sq_member_get,
    .member_find = sq_member_find,
    .member_update = sq_member_update,
    .member_list = sq_member_list,
    .card_attach = sq_card_attach,
    .key_insert = sq_key_insert,
    .key_get = sq_key_get,
    .key_list = sq_key_list,
    .key_revoke = sq_key_revoke,
    .table_counts = sq_table_counts,
    .member_lock = sq_member_lock,
    .member_touch = sq_member_touch,
    .entry_insert = sq_entry_insert,
    .entry_get = sq_entry_get,
    .account_balance = sq_account_balance,
    .lot_insert = sq_lot_insert,
    .lots_open = sq_lots_open,
    .member_balances = sq_member_balances,
    .savepoint = sq_savepoint,
    .changes = sq_changes,
    .lots_of_entry = sq_lots_of_entry,
    .consumption_insert = sq_consumption_insert,
    .lot_forgiven = sq_lot_forgiven,
    .lot_forgive = sq_lot_forgive,
    .consumptions_of_entry = sq_consumptions_of_entry,
    .lots_expired = sq_lots_expired,
    .members_inactive = sq_members_inactive,
    .activity = sq_activity,
    .event_insert = sq_event_insert,
    .event_next_id = sq_event_next_id,
    .event_get = sq_event_get,
    .event_get_by_id = sq_event_get_by_id,
    .event_update = sq_event_update,
    .redemption_insert = sq_redemption_insert,
    .redemption_get = sq_redemption_get,
    .redemption_cancel = sq_redemption_cancel,
    .idem_get = sq_idem_get,
    .idem_put = sq_idem_put,
    .verify = sq_verify,
    .member_purchase = sq_member_purchase,
    .members_by_birthday = sq_members_by_birthday,
    .rule_insert = sq_rule_insert,
    .rule_get = sq_rule_get,
    .rule_list = sq_rule_list,
    .rule_versions = sq_rule_versions,
    .rule_usage_get = sq_rule_usage_get,
    .rule_usage_add = sq_rule_usage_add,
    .event_rule_insert = sq_event_rule_insert,
    .event_rules = sq_event_rules,
    .event_rule_update = sq_event_rule_update,
};
