/* The PostgreSQL backend through libpq: one PGconn per connection, every
 * statement prepared once per connection (named, on first use) and run with
 * text parameters and text results. */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_MAXPARAMS 20
#define PG_PARAMBUF  72 /* an int64, or a 32-byte bytea as "\x" and hex */
/* The advisory lock migrations hold: "LOYALMIG" as a 64-bit integer. */
#define PG_MIGRATE_LOCK "5498711807030544711"
/* A member's balance of an asset: 0 before its first posting. */
#define PG_BALANCE(asset)                                                                          \
    "COALESCE((SELECT balance FROM accounts WHERE accounts.program_id = members.program_id "       \
    "AND accounts.member_id = members.id AND kind = 'member' AND asset = '" asset "'), 0)"
#define PG_MEMBER_COLS                                                                             \
    "id, program_id, external_id, email, phone, name, birthdate, attributes, status, "             \
    "created_at, updated_at, last_activity_at, lifetime_spend, purchase_count, "                   \
    "last_purchase_at, " PG_BALANCE("points") ", " PG_BALANCE("credit")
#define PG_KEY_COLS "id, program_id, scope, name, hash, created_at, revoked_at"
#define PG_ENTRY_COLS                                                                              \
    "id, program_id, member_id, kind, event_id, ref_entry_id, memo, data, effective_at, "          \
    "created_at"
#define PG_LOT_COLS                                                                                \
    "id, program_id, member_id, asset, entry_id, amount, remaining, available_at, expires_at, "    \
    "created_at"
#define PG_EVENT_COLS                                                                              \
    "id, program_id, ext_id, type, member_id, amount, currency, occurred_at, original_id, "        \
    "points, credit, returned_amount, reversed_points, reversed_credit, returned_items, "          \
    "entry_id, body, request_hash, result, created_at"
#define PG_REDEMPTION_COLS                                                                         \
    "id, program_id, member_id, asset, amount, entry_id, status, cancel_entry_id, created_at, "    \
    "cancelled_at"
#define PG_RULE_COLS "id, program_id, rule_id, version, body, deleted, current, created_at"

enum {
    PG_BEGIN,
    PG_BEGIN_READ,
    PG_COMMIT,
    PG_ROLLBACK,
    PG_LOCK,
    PG_UNLOCK,
    PG_SCHEMA_EXISTS,
    PG_SCHEMA_VERSION,
    PG_MIGRATION_APPLIED,
    PG_MIGRATION_RECORD,
    PG_PROGRAM_GET,
    PG_PROGRAM_PUT,
    PG_MEMBER_INSERT,
    PG_MEMBER_GET,
    PG_MEMBER_BY_EXTERNAL_ID, /* the four lookups in the order of LY_BY_* */
    PG_MEMBER_BY_EMAIL,
    PG_MEMBER_BY_PHONE,
    PG_MEMBER_BY_CARD,
    PG_MEMBER_UPDATE,
    PG_MEMBER_LIST,
    PG_CARDS_RANGE,
    PG_CARD_ATTACH,
    PG_KEY_INSERT,
    PG_KEY_GET,
    PG_KEY_LIST,
    PG_KEY_REVOKE,
    PG_TABLE_COUNTS,
    PG_MEMBER_LOCK,
    PG_MEMBER_STATUS,
    PG_MEMBER_TOUCH,
    PG_ENTRY_INSERT,
    PG_ENTRY_GET,
    PG_ACCOUNT_BALANCE,
    PG_ACCOUNT_POSTED,
    PG_LOT_INSERT,
    PG_LOTS_OPEN,
    PG_MEMBER_BALANCES,
    PG_LOTS_OF_ENTRY,
    PG_CONSUMPTION_INSERT,
    PG_LOT_FORGIVEN,
    PG_LOT_FORGIVE,
    PG_CONSUMPTIONS_OF_ENTRY,
    PG_LOTS_EXPIRED,
    PG_MEMBERS_INACTIVE,
    PG_ACTIVITY,
    PG_EVENT_INSERT,
    PG_EVENT_NEXT_ID,
    PG_EVENT_GET,
    PG_EVENT_GET_BY_ID,
    PG_EVENT_UPDATE,
    PG_REDEMPTION_INSERT,
    PG_REDEMPTION_GET,
    PG_REDEMPTION_CANCEL,
    PG_REDEMPTION_EXISTS,
    PG_IDEM_GET,
    PG_IDEM_PUT,
    PG_MEMBER_PURCHASE,
    PG_MEMBERS_BY_BIRTHDAY,
    PG_RULE_INSERT,
    PG_RULE_GET,
    PG_RULE_CURRENT,
    PG_RULE_LIST_FIRST,
    PG_RULE_LIST_AFTER,
    PG_RULE_VERSIONS,
    PG_RULE_USAGE_GET,
    PG_RULE_USAGE_ADD,
    PG_EVENT_RULE_INSERT,
    PG_EVENT_RULES,
    PG_EVENT_RULE_UPDATE,
    PG_VERIFY_FIRST, /* one per LY_VERIFY_* check, in its order */
    PG_NSTMTS = PG_VERIFY_FIRST + LY_VERIFY_COUNT
};

_Static_assert(PG_MEMBER_BY_CARD - PG_MEMBER_BY_EXTERNAL_ID == LY_BY_CARD - LY_BY_EXTERNAL_ID,
               "lookups follow LY_BY_*");

/* A row of a program addressed by its primary key: only the key is a
 * condition an index can serve. A prepared statement's generic plan is made
 * once, often while the table is still empty and every index costs the same;
 * "program_id = $1 AND id = $2" then let PostgreSQL pick an index led by
 * program_id (the events' ext_id key, the members' birthday index) and
 * filter on id, reading every row of the program on each call. IS NOT
 * DISTINCT FROM is never an index condition, and means = on a NOT NULL
 * column. */
#define PG_BY_ID(program, id) "id = " id " AND program_id IS NOT DISTINCT FROM " program
#define PG_BY_ID_2            PG_BY_ID("$1", "$2") /* the usual: program $1, id $2 */

/* The name of each row is also its prepared statement's name. */
static const struct {
    const char *name;
    const char *sql;
} pg_stmts[PG_NSTMTS] = {
    [PG_BEGIN] = {"begin", "BEGIN"},
    /* Reads see one snapshot, as on SQLite. */
    [PG_BEGIN_READ] = {"begin_read", "BEGIN ISOLATION LEVEL REPEATABLE READ"},
    [PG_COMMIT] = {"commit", "COMMIT"},
    [PG_ROLLBACK] = {"rollback", "ROLLBACK"},
    [PG_LOCK] = {"migrate_lock", "SELECT pg_advisory_lock(" PG_MIGRATE_LOCK ")"},
    [PG_UNLOCK] = {"migrate_unlock", "SELECT pg_advisory_unlock(" PG_MIGRATE_LOCK ")"},
    [PG_SCHEMA_EXISTS] = {"schema_exists", "SELECT CASE WHEN to_regclass('schema_migrations') "
                                           "IS NULL THEN 0 ELSE 1 END"},
    [PG_SCHEMA_VERSION] = {"schema_version",
                           "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"},
    [PG_MIGRATION_APPLIED] = {"migration_applied",
                              "SELECT 1 FROM schema_migrations WHERE version = $1"},
    [PG_MIGRATION_RECORD] = {"migration_record", "INSERT INTO schema_migrations "
                                                 "(version, name, applied_at) VALUES ($1, $2, $3)"},
    [PG_PROGRAM_GET] = {"program_get",
                        "SELECT id, name, currency, timezone, point_value_minor, settings, "
                        "created_at, updated_at FROM programs WHERE id = $1"},
    [PG_PROGRAM_PUT] = {"program_put",
                        "UPDATE programs SET name = $2, currency = $3, timezone = $4, "
                        "point_value_minor = $5, settings = COALESCE($6, '{}'), updated_at = $7 "
                        "WHERE id = $1"},
    [PG_MEMBER_INSERT] = {"member_insert",
                          "INSERT INTO members (program_id, external_id, email, phone, name, "
                          "birthdate, attributes, status, created_at, updated_at) VALUES ($1, $2, "
                          "$3, $4, $5, $6, COALESCE($7, '{}'), COALESCE($8, 'active'), $9, $10) "
                          "RETURNING id"},
    [PG_MEMBER_GET] = {"member_get", "SELECT " PG_MEMBER_COLS " FROM members "
                                     "WHERE " PG_BY_ID_2},
    [PG_MEMBER_BY_EXTERNAL_ID] = {"member_by_external_id",
                                  "SELECT " PG_MEMBER_COLS " FROM members "
                                  "WHERE program_id = $1 AND external_id = $2"},
    [PG_MEMBER_BY_EMAIL] = {"member_by_email", "SELECT " PG_MEMBER_COLS " FROM members "
                                               "WHERE program_id = $1 AND email = $2"},
    [PG_MEMBER_BY_PHONE] = {"member_by_phone", "SELECT " PG_MEMBER_COLS " FROM members "
                                               "WHERE program_id = $1 AND phone = $2"},
    [PG_MEMBER_BY_CARD] = {"member_by_card",
                           "SELECT " PG_MEMBER_COLS " FROM members WHERE id = "
                           "(SELECT member_id FROM member_cards WHERE program_id = $1 AND card = "
                           "$2) AND program_id IS NOT DISTINCT FROM $1"},
    [PG_MEMBER_UPDATE] = {"member_update",
                          "UPDATE members SET external_id = $3, email = $4, phone = $5, name = $6, "
                          "birthdate = $7, attributes = COALESCE($8, '{}'), "
                          "status = COALESCE($9, status), updated_at = $10 "
                          "WHERE " PG_BY_ID_2},
    [PG_MEMBER_LIST] = {"member_list", "SELECT " PG_MEMBER_COLS " FROM members "
                                       "WHERE program_id = $1 AND id > $2 ORDER BY id LIMIT $3"},
    [PG_CARDS_RANGE] = {"cards_range",
                        "SELECT member_id, card FROM member_cards WHERE program_id = $1 "
                        "AND member_id > $2 AND member_id <= $3 "
                        "ORDER BY member_id, created_at, card"},
    [PG_CARD_ATTACH] = {"card_attach",
                        "INSERT INTO member_cards (program_id, card, member_id, created_at) "
                        "SELECT $1::bigint, $2::text, id, $4::bigint FROM members "
                        "WHERE id = $3 AND program_id IS NOT DISTINCT FROM $1"},
    [PG_KEY_INSERT] = {"key_insert", "INSERT INTO api_keys (" PG_KEY_COLS ") "
                                     "VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7::bigint, 0))"},
    [PG_KEY_GET] = {"key_get", "SELECT " PG_KEY_COLS " FROM api_keys WHERE id = $1"},
    [PG_KEY_LIST] = {"key_list", "SELECT " PG_KEY_COLS " FROM api_keys "
                                 "WHERE program_id = $1 ORDER BY created_at, id"},
    [PG_KEY_REVOKE] = {"key_revoke", "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) "
                                     "WHERE " PG_BY_ID_2},
    [PG_TABLE_COUNTS] = {"table_counts",
                         "SELECT (SELECT count(*) FROM programs), (SELECT count(*) FROM members), "
                         "(SELECT count(*) FROM member_cards), (SELECT count(*) FROM api_keys), "
                         "(SELECT count(*) FROM accounts), (SELECT count(*) FROM entries), "
                         "(SELECT count(*) FROM postings), (SELECT count(*) FROM lots), "
                         "(SELECT count(*) FROM lot_consumptions), (SELECT count(*) FROM events), "
                         "(SELECT count(*) FROM redemptions), "
                         "(SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM rules), "
                         "(SELECT count(*) FROM rule_usage), (SELECT count(*) FROM event_rules)"},
    /* NO KEY UPDATE, the lock an UPDATE of the row takes: ledger writers of
     * one member wait for each other, while rows that refer to the member
     * (a card) can still be inserted. */
    [PG_MEMBER_LOCK] = {"member_lock", "SELECT (status = 'active')::int FROM members "
                                       "WHERE " PG_BY_ID_2 " FOR NO KEY UPDATE"},
    /* The same in a read transaction: its snapshot is the view, and it
     * writes nothing, so it neither waits for nor fails on a writer. */
    [PG_MEMBER_STATUS] = {"member_status", "SELECT (status = 'active')::int FROM members "
                                           "WHERE " PG_BY_ID_2},
    /* Activity only moves forward: a late or back-dated event leaves the
     * latest time. */
    [PG_MEMBER_TOUCH] = {"member_touch",
                         "UPDATE members SET last_activity_at = GREATEST(last_activity_at, "
                         "$3::bigint) WHERE " PG_BY_ID_2},
    /* The entry, its accounts and its postings in one round trip. The
     * postings come as arrays ($10..$13); member accounts are upserted in a
     * fixed order, so that two entries lock them in the same order. Program
     * accounts (member_id 0) keep no running balance, so that no row is
     * locked by every entry of the program: they are only created when
     * missing, and found otherwise. The postings written are counted: one
     * created meanwhile by another transaction is seen by neither, and the
     * caller runs the transaction again. */
    [PG_ENTRY_INSERT] =
        {"entry_insert",
         "WITH e AS (INSERT INTO entries (program_id, member_id, kind, event_id, ref_entry_id, "
         "memo, data, effective_at, created_at) VALUES ($1::bigint, $2, $3, "
         "NULLIF($4::bigint, 0), NULLIF($5::bigint, 0), $6, $7, $8, $9) RETURNING id), "
         "p AS (SELECT * FROM unnest($10::bigint[], $11::text[], $12::text[], $13::bigint[]) "
         "AS p (member_id, kind, asset, amount)), "
         "acc AS (INSERT INTO accounts AS t (program_id, member_id, kind, asset, balance) "
         "SELECT $1::bigint, member_id, kind, asset, amount FROM p WHERE member_id <> 0 "
         "ORDER BY member_id, kind, asset "
         "ON CONFLICT (program_id, member_id, kind, asset) "
         "DO UPDATE SET balance = t.balance + excluded.balance "
         "RETURNING t.id, t.member_id, t.kind, t.asset), "
         "pnew AS (INSERT INTO accounts (program_id, member_id, kind, asset, balance) "
         "SELECT $1::bigint, 0, kind, asset, 0 FROM p WHERE member_id = 0 ORDER BY kind, asset "
         "ON CONFLICT (program_id, member_id, kind, asset) DO NOTHING "
         "RETURNING id, member_id, kind, asset), "
         "pold AS (SELECT t.id, t.member_id, t.kind, t.asset FROM accounts t JOIN p "
         "ON t.program_id = $1::bigint AND t.member_id = 0 AND p.member_id = 0 "
         "AND t.kind = p.kind AND t.asset = p.asset), "
         "x AS (INSERT INTO postings (entry_id, account_id, amount) "
         "SELECT e.id, a.id, p.amount FROM e, "
         "(SELECT * FROM acc UNION ALL SELECT * FROM pnew UNION ALL SELECT * FROM pold) a "
         "JOIN p USING (member_id, kind, asset) RETURNING 1) "
         "SELECT (SELECT id FROM e), (SELECT count(*) FROM x)"},
    [PG_ENTRY_GET] = {"entry_get", "SELECT " PG_ENTRY_COLS " FROM entries "
                                   "WHERE " PG_BY_ID_2},
    [PG_ACCOUNT_BALANCE] = {"account_balance",
                            "SELECT balance FROM accounts WHERE program_id = $1 AND member_id = $2 "
                            "AND kind = $3 AND asset = $4"},
    /* A program account's balance: the sum of its postings. */
    [PG_ACCOUNT_POSTED] = {"account_posted",
                           "SELECT COALESCE(SUM(p.amount), 0)::bigint FROM accounts a "
                           "JOIN postings p ON p.account_id = a.id WHERE a.program_id = $1 "
                           "AND a.member_id = $2 AND a.kind = $3 AND a.asset = $4"},
    [PG_LOT_INSERT] = {"lot_insert",
                       "INSERT INTO lots (program_id, member_id, asset, entry_id, amount, "
                       "remaining, available_at, expires_at, created_at) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8::bigint, 0), $9) "
                       "RETURNING id"},
    [PG_LOTS_OPEN] = {"lots_open", "SELECT " PG_LOT_COLS " FROM lots WHERE program_id = $1 "
                                   "AND member_id = $2 AND asset = $3 AND remaining > 0 "
                                   "ORDER BY expires_at ASC NULLS LAST, created_at, id"},
    /* A member's accounts with the pending and expired sums of their lots,
     * then the points lots' next expiry dates: index ranges, one statement. */
    [PG_MEMBER_BALANCES] =
        {"member_balances",
         "SELECT 0, a.asset, a.balance, "
         "(SELECT COALESCE(SUM(l.remaining), 0) FROM lots l WHERE l.program_id = $1 "
         "AND l.member_id = $2 AND l.asset = a.asset AND l.remaining > 0 "
         "AND l.available_at > $3::bigint AND l.available_at > l.created_at "
         "AND (l.expires_at IS NULL OR l.expires_at > $3::bigint))::bigint, "
         "(SELECT COALESCE(SUM(l.remaining), 0) FROM lots l WHERE l.program_id = $1 "
         "AND l.member_id = $2 AND l.asset = a.asset AND l.remaining > 0 "
         "AND l.expires_at <= $3::bigint)::bigint "
         "FROM accounts a WHERE a.program_id = $1 AND a.member_id = $2 AND a.kind = 'member' "
         "UNION ALL SELECT * FROM (SELECT 1, 'points', SUM(remaining)::bigint, expires_at, "
         "0::bigint FROM lots WHERE program_id = $1 AND member_id = $2 AND asset = 'points' "
         "AND remaining > 0 AND expires_at > $3::bigint GROUP BY expires_at "
         "ORDER BY expires_at LIMIT $4) g"},
    [PG_LOTS_OF_ENTRY] = {"lots_of_entry", "SELECT " PG_LOT_COLS " FROM lots "
                                           "WHERE program_id = $1 AND entry_id = $2 ORDER BY id"},
    /* The lot moves only within 0..amount; when it cannot, nothing is
     * inserted. */
    [PG_LOT_FORGIVEN] = {"lot_forgiven",
                         "SELECT forgiven FROM lots WHERE program_id = $1 AND id = $2"},
    [PG_LOT_FORGIVE] =
        {"lot_forgive",
         "UPDATE lots SET forgiven = forgiven + $3 WHERE program_id = $1 AND id = $2 "
         "AND forgiven + $3 BETWEEN 0 AND amount"},
    [PG_CONSUMPTION_INSERT] =
        {"consumption_insert",
         "WITH u AS (UPDATE lots SET remaining = remaining - $4 "
         "WHERE id = $3 AND program_id IS NOT DISTINCT FROM $1 "
         "AND remaining - $4 BETWEEN 0 AND amount RETURNING id) "
         "INSERT INTO lot_consumptions (program_id, entry_id, lot_id, amount) "
         "SELECT $1::bigint, $2::bigint, id, $4::bigint FROM u"},
    [PG_CONSUMPTIONS_OF_ENTRY] = {"consumptions_of_entry",
                                  "SELECT entry_id, lot_id, amount FROM lot_consumptions "
                                  "WHERE program_id = $1 AND entry_id = $2 ORDER BY id"},
    [PG_LOTS_EXPIRED] = {"lots_expired",
                         "SELECT " PG_LOT_COLS " FROM lots WHERE program_id = $1 "
                         "AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $2 "
                         "ORDER BY member_id, id LIMIT $3"},
    [PG_MEMBERS_INACTIVE] = {"members_inactive",
                             "SELECT m.id FROM members m JOIN accounts a "
                             "ON a.program_id = m.program_id AND a.member_id = m.id "
                             "AND a.kind = 'member' AND a.asset = 'points' "
                             "WHERE m.program_id = $1 AND m.id > $3 AND a.balance <> 0 "
                             "AND COALESCE(m.last_activity_at, m.created_at) < $2 "
                             "ORDER BY m.id LIMIT $4"},
    [PG_ACTIVITY] = {"activity",
                     "SELECT e.id, e.kind, a.asset, e.memo, e.data, p.amount, e.event_id, "
                     "e.effective_at, e.created_at, ev.ext_id FROM accounts a "
                     "JOIN postings p ON p.account_id = a.id JOIN entries e ON e.id = p.entry_id "
                     "LEFT JOIN events ev ON ev.id = e.event_id "
                     "WHERE a.program_id = $1 AND a.member_id = $2 AND a.kind = 'member' "
                     "AND p.entry_id < $3 ORDER BY p.entry_id DESC, a.asset LIMIT $4"},
    [PG_EVENT_INSERT] = {"event_insert",
                         "INSERT INTO events (id, program_id, ext_id, type, member_id, amount, "
                         "currency, occurred_at, original_id, points, credit, returned_amount, "
                         "reversed_points, reversed_credit, returned_items, entry_id, body, "
                         "request_hash, result, created_at) VALUES (COALESCE(NULLIF($20::bigint, "
                         "0), nextval(pg_get_serial_sequence('events', 'id'))), $1, $2, $3, "
                         "NULLIF($4::bigint, 0), $5, $6, $7, NULLIF($8::bigint, 0), $9, $10, $11, "
                         "$12, $13, $14, NULLIF($15::bigint, 0), $16, $17, $18, $19) RETURNING id"},
    [PG_EVENT_NEXT_ID] = {"event_next_id",
                          "SELECT nextval(pg_get_serial_sequence('events', 'id'))"},
    [PG_EVENT_GET] = {"event_get", "SELECT " PG_EVENT_COLS " FROM events "
                                   "WHERE program_id = $1 AND ext_id = $2"},
    [PG_EVENT_GET_BY_ID] = {"event_get_by_id", "SELECT " PG_EVENT_COLS " FROM events "
                                               "WHERE " PG_BY_ID_2},
    [PG_EVENT_UPDATE] = {"event_update",
                         "UPDATE events SET entry_id = NULLIF($3::bigint, 0), points = $4, "
                         "credit = $5, returned_amount = $6, reversed_points = $7, "
                         "reversed_credit = $8, returned_items = $9, result = $10 "
                         "WHERE " PG_BY_ID_2},
    [PG_REDEMPTION_INSERT] = {"redemption_insert",
                              "INSERT INTO redemptions (program_id, member_id, asset, amount, "
                              "entry_id, status, cancel_entry_id, created_at, cancelled_at) "
                              "VALUES ($1, $2, $3, $4, $5, COALESCE($6, 'active'), "
                              "NULLIF($7::bigint, 0), $8, NULLIF($9::bigint, 0)) RETURNING id"},
    [PG_REDEMPTION_GET] = {"redemption_get", "SELECT " PG_REDEMPTION_COLS " FROM redemptions "
                                             "WHERE " PG_BY_ID_2},
    /* Once only: a second cancel would give the lots back twice. */
    [PG_REDEMPTION_CANCEL] = {"redemption_cancel",
                              "UPDATE redemptions SET status = 'cancelled', "
                              "cancel_entry_id = NULLIF($3::bigint, 0), "
                              "cancelled_at = NULLIF($4::bigint, 0) "
                              "WHERE " PG_BY_ID_2 " AND status <> 'cancelled'"},
    [PG_REDEMPTION_EXISTS] = {"redemption_exists", "SELECT 1 FROM redemptions WHERE " PG_BY_ID_2},
    [PG_IDEM_GET] = {"idem_get", "SELECT key, route, request_hash, status, response, created_at "
                                 "FROM idempotency_keys WHERE program_id = $1 AND key = $2"},
    [PG_IDEM_PUT] = {"idem_put",
                     "INSERT INTO idempotency_keys (program_id, key, route, request_hash, status, "
                     "response, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"},
    /* A bigint sum out of range fails with 22003: balance_overflow. */
    [PG_MEMBER_PURCHASE] = {"member_purchase",
                            "UPDATE members SET lifetime_spend = lifetime_spend + $4::bigint, "
                            "purchase_count = purchase_count + $5::bigint, "
                            "last_purchase_at = CASE WHEN $5::bigint > 0 "
                            "THEN GREATEST(last_purchase_at, $3::bigint) "
                            "ELSE last_purchase_at END, "
                            "last_activity_at = GREATEST(last_activity_at, $3::bigint) "
                            "WHERE " PG_BY_ID_2},
    /* The expression is members_birthday_idx's. */
    [PG_MEMBERS_BY_BIRTHDAY] = {"members_by_birthday",
                                "SELECT " PG_MEMBER_COLS " FROM members WHERE program_id = $1 "
                                "AND substr(birthdate, 6, 5) = $2 AND id > $3 "
                                "AND status = 'active' ORDER BY id LIMIT $4"},
    /* The version that was current stops being so, then the new one is
     * inserted: reading old first makes the UPDATE run before the INSERT,
     * so rules_current_key never sees two current rows. */
    [PG_RULE_INSERT] = {"rule_insert",
                        "WITH old AS (UPDATE rules SET current = 0 WHERE program_id = $1::bigint "
                        "AND rule_id = $2::text AND current = 1 RETURNING id) "
                        "INSERT INTO rules (program_id, rule_id, version, body, deleted, current, "
                        "created_at) SELECT $1::bigint, $2::text, $3::bigint, $4::text, "
                        "$5::integer, 1, $6::bigint FROM (SELECT count(*) FROM old) AS o "
                        "RETURNING id"},
    [PG_RULE_GET] = {"rule_get", "SELECT " PG_RULE_COLS " FROM rules "
                                 "WHERE program_id = $1 AND rule_id = $2 AND version = $3"},
    [PG_RULE_CURRENT] = {"rule_current", "SELECT " PG_RULE_COLS " FROM rules "
                                         "WHERE program_id = $1 AND rule_id = $2 AND current = 1"},
    /* rule_id is of collation "C": byte order, as on SQLite. */
    [PG_RULE_LIST_FIRST] = {"rule_list_first",
                            "SELECT " PG_RULE_COLS " FROM rules WHERE program_id = $1 "
                            "AND current = 1 AND deleted = 0 ORDER BY rule_id LIMIT $2"},
    [PG_RULE_LIST_AFTER] = {"rule_list_after",
                            "SELECT " PG_RULE_COLS " FROM rules WHERE program_id = $1 "
                            "AND current = 1 AND deleted = 0 AND rule_id > $2 "
                            "ORDER BY rule_id LIMIT $3"},
    [PG_RULE_VERSIONS] = {"rule_versions",
                          "SELECT " PG_RULE_COLS " FROM rules "
                          "WHERE program_id = $1 AND rule_id = $2 AND version > $3 "
                          "ORDER BY version LIMIT $4"},
    /* Read with the row locked (created when absent) until the transaction
     * ends, so that two servers granting from one budget see each other:
     * ON CONFLICT DO UPDATE waits for a concurrent holder and then reads its
     * committed values. */
    [PG_RULE_USAGE_GET] = {"rule_usage_get",
                           "INSERT INTO rule_usage AS t (program_id, rule_id, member_id, "
                           "period_start, points, credit, count) VALUES ($1, $2, $3, $4, 0, 0, 0) "
                           "ON CONFLICT (program_id, rule_id, member_id, period_start) "
                           "DO UPDATE SET count = t.count RETURNING points, credit, count"},
    [PG_RULE_USAGE_ADD] = {"rule_usage_add",
                           "INSERT INTO rule_usage AS t (program_id, rule_id, member_id, "
                           "period_start, points, credit, count) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7) "
                           "ON CONFLICT (program_id, rule_id, member_id, period_start) "
                           "DO UPDATE SET points = t.points + excluded.points, "
                           "credit = t.credit + excluded.credit, count = t.count + excluded.count"},
    [PG_EVENT_RULE_INSERT] = {"event_rule_insert",
                              "INSERT INTO event_rules (program_id, event_id, rule_row, points, "
                              "credit, reversed_points, reversed_credit) "
                              "VALUES ($1, $2, $3, $4, $5, $6, $7)"},
    [PG_EVENT_RULES] = {"event_rules",
                        "SELECT x.event_id, x.rule_row, r.rule_id, r.version, x.points, x.credit, "
                        "x.reversed_points, x.reversed_credit FROM event_rules x "
                        "JOIN rules r ON r.id = x.rule_row "
                        "WHERE x.program_id = $1 AND x.event_id = $2 ORDER BY x.rule_row"},
    [PG_EVENT_RULE_UPDATE] = {"event_rule_update",
                              "UPDATE event_rules SET reversed_points = $4, reversed_credit = $5 "
                              "WHERE program_id = $1 AND event_id = $2 AND rule_row = $3"},
    /* The invariants ly_store_verify checks: each row is a violation told for
     * a person. */
    [PG_VERIFY_FIRST + LY_VERIFY_ENTRY_BALANCED] =
        {"verify_entry_balanced",
         "SELECT 'entry ' || p.entry_id || ' ' || a.asset || ' sums to ' || SUM(p.amount) "
         "FROM postings p JOIN accounts a ON a.id = p.account_id "
         "GROUP BY p.entry_id, a.asset HAVING SUM(p.amount) <> 0 "
         "ORDER BY p.entry_id, a.asset LIMIT $1"},
    [PG_VERIFY_FIRST + LY_VERIFY_ACCOUNT_BALANCE] =
        {"verify_account_balance",
         "SELECT 'account ' || a.id || ' (' || a.kind || ' ' || a.asset || "
         "' of member ' || a.member_id || "
         "') balance ' || a.balance || ', postings sum to ' || COALESCE(SUM(p.amount), 0) "
         "FROM accounts a LEFT JOIN postings p ON p.account_id = a.id WHERE a.member_id <> 0 "
         "GROUP BY a.id HAVING a.balance <> COALESCE(SUM(p.amount), 0) ORDER BY a.id LIMIT $1"},
    [PG_VERIFY_FIRST + LY_VERIFY_MEMBER_LOTS] =
        {"verify_member_lots",
         "SELECT detail FROM ("
         "SELECT a.member_id AS member_id, a.asset AS asset, 'member ' || a.member_id || ' ' || "
         "a.asset || ': balance ' || a.balance || ', lots remaining ' || "
         "COALESCE(l.remaining, 0) AS detail FROM accounts a LEFT JOIN ("
         "SELECT program_id, member_id, asset, SUM(remaining) AS remaining FROM lots "
         "GROUP BY program_id, member_id, asset) l ON l.program_id = a.program_id "
         "AND l.member_id = a.member_id AND l.asset = a.asset WHERE a.kind = 'member' "
         "AND COALESCE(l.remaining, 0) <> GREATEST(a.balance, 0) "
         "UNION ALL "
         "SELECT l.member_id, l.asset, 'member ' || l.member_id || ' ' || l.asset || "
         "': no account, lots remaining ' || SUM(l.remaining) FROM lots l WHERE NOT EXISTS ("
         "SELECT 1 FROM accounts a WHERE a.program_id = l.program_id "
         "AND a.member_id = l.member_id AND a.kind = 'member' AND a.asset = l.asset) "
         "GROUP BY l.program_id, l.member_id, l.asset) v "
         "ORDER BY member_id, asset, detail LIMIT $1"},
    [PG_VERIFY_FIRST + LY_VERIFY_LOT_BOUNDS] =
        {"verify_lot_bounds",
         "SELECT 'lot ' || id || ' remaining ' || remaining || ' of amount ' || amount "
         "FROM lots WHERE remaining < 0 OR remaining > amount OR amount <= 0 "
         "ORDER BY id LIMIT $1"},
    [PG_VERIFY_FIRST + LY_VERIFY_LOT_CONSUMED] =
        {"verify_lot_consumed",
         "SELECT 'lot ' || l.id || ' gave ' || (l.amount - l.remaining) || "
         "', its consumptions sum to ' || COALESCE(SUM(k.amount), 0) "
         "FROM lots l LEFT JOIN lot_consumptions k ON k.lot_id = l.id GROUP BY l.id "
         "HAVING l.amount - l.remaining <> COALESCE(SUM(k.amount), 0) ORDER BY l.id LIMIT $1"},
    [PG_VERIFY_FIRST + LY_VERIFY_EVENT_ENTRY] =
        {"verify_event_entry",
         "SELECT 'event ' || id || ' (' || type || ' ' || ext_id || ') of member ' || member_id "
         "|| ' has ' || points || ' points and ' || credit || ' credit but no entry' "
         "FROM events WHERE type IN ('purchase', 'return') AND member_id IS NOT NULL "
         "AND (points <> 0 OR credit <> 0) AND entry_id IS NULL ORDER BY id LIMIT $1"},
};

/* SQLSTATEs (or their class, by prefix) that are not the request's fault. */
static const struct {
    const char *state;
    int rc;
    const char *wire; /* the code on the wire, NULL for rc's default */
} pg_states[] = {
    {"53100", LY_ESTORE, "storage_full"}, /* disk_full */
    {"40001", LY_ERETRY, NULL},           /* serialization_failure */
    {"40P01", LY_ERETRY, NULL},           /* deadlock_detected */
    {"55P03", LY_ERETRY, NULL},           /* lock_not_available */
    {"08", LY_ESTORE, NULL},              /* connection exceptions */
    {"53", LY_ESTORE, NULL},    /* insufficient resources: disk full, out of memory, connections */
    {"57P", LY_ESTORE, NULL},   /* shutdowns, database dropped */
    {"58", LY_ESTORE, NULL},    /* system errors (I/O) */
    {"XX", LY_ESTORE, NULL},    /* internal errors, corruption */
    {"25006", LY_ESTORE, NULL}, /* read-only transaction: connected to a standby */
};

typedef struct pg_conn {
    ly_conn base;
    PGconn *pg;
    unsigned char prepared[PG_NSTMTS];
    /* A transaction's BEGIN goes with its first statement, in one round trip
     * (libpq's pipeline mode): begin_due says one is owed, begin_id which. */
    int begin_due, begin_id;
} pg_conn;

typedef int (*pg_reader)(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err);

static pg_conn *pg(ly_conn *c)
{
    return (pg_conn *)c;
}

/* Notices ("relation already exists, skipping") are not for the log. */
static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Length of a libpq message without its trailing newlines. */
static int msglen(const char *msg)
{
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    return (int)n;
}

static int pg_constraint(const PGresult *r, const char *state, const char *msg, ly_error *err)
{
    if (strcmp(state, "23505") == 0)
        return ly__store_conflict(err, PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME), msg);
    if (strcmp(state, "23503") == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL,
                            "the program or member referred to does not exist");
    return ly_error_set(err, LY_EINVAL, NULL, NULL, "refused by the database: %.*s", msglen(msg),
                        msg);
}

/* Turns a failed result (r may be NULL) into an LY_E* code and a message. */
static int pg_fail(pg_conn *c, const PGresult *r, const char *what, ly_error *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(c->pg);
    if (!state || PQstatus(c->pg) != CONNECTION_OK)
        return ly_error_set(err, LY_ESTORE, NULL, NULL, "PostgreSQL is unavailable (%s): %.*s",
                            what, msglen(msg), msg);
    if (strncmp(state, "23", 2) == 0)
        return pg_constraint(r, state, msg, err);
    if (strcmp(state, "22003") == 0) /* numeric_value_out_of_range: a bigint sum */
        return ly__store_overflow(err);
    for (size_t i = 0; i < sizeof pg_states / sizeof pg_states[0]; i++)
        if (strncmp(state, pg_states[i].state, strlen(pg_states[i].state)) == 0)
            return ly_error_set(err, pg_states[i].rc, pg_states[i].wire, NULL,
                                "PostgreSQL %s (%s): %.*s", state, what, msglen(msg), msg);
    return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "database error %s in %s: %.*s", state, what,
                        msglen(msg), msg);
}

static int pg_prepare(pg_conn *c, int id, ly_error *err)
{
    if (c->prepared[id])
        return 0;
    PGresult *r = PQprepare(c->pg, pg_stmts[id].name, pg_stmts[id].sql, 0, NULL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg_fail(c, r, pg_stmts[id].name, err);
    PQclear(r);
    c->prepared[id] = rc == 0;
    return rc;
}

/* Text form of each parameter; NULL stays SQL NULL. */
static int pg_values(const ly_sqlparam *p, int n, char buf[][PG_PARAMBUF], const char **vals,
                     ly_error *err)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        vals[i] = buf[i];
        if (p[i].type == 'i') {
            snprintf(buf[i], PG_PARAMBUF, "%" PRId64, p[i].i);
        } else if (p[i].type == 's') {
            vals[i] = p[i].s;
        } else {
            if (p[i].len * 2 + 3 > PG_PARAMBUF)
                return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "blob parameter too long");
            memcpy(buf[i], "\\x", 2);
            for (size_t j = 0; j < p[i].len; j++) {
                buf[i][2 + 2 * j] = hex[p[i].b[j] >> 4];
                buf[i][3 + 2 * j] = hex[p[i].b[j] & 15];
            }
            buf[i][2 + 2 * p[i].len] = '\0';
        }
    }
    return 0;
}

/* Runs statement id (preparing it first on this connection); *out is the
 * result to PQclear. */
/* The BEGIN owed and statement id, sent together and answered together.
 * The statement's result, or BEGIN's when that failed (the statement's is
 * then "aborted"); NULL when the connection failed. */
static PGresult *pg_exec_begun(pg_conn *c, int id, int n, const char *const *vals)
{
    PGresult *res[2] = {NULL, NULL}, *x;
    c->begin_due = 0;
    if (!PQenterPipelineMode(c->pg))
        return NULL;
    if (PQsendQueryPrepared(c->pg, pg_stmts[c->begin_id].name, 0, NULL, NULL, NULL, 0) &&
        PQsendQueryPrepared(c->pg, pg_stmts[id].name, n, vals, NULL, NULL, 0) &&
        PQpipelineSync(c->pg)) {
        /* Each statement's results end with NULL; then comes the sync. */
        for (int q = 0; q < 2; q++)
            while ((x = PQgetResult(c->pg)) != NULL) {
                if (!res[q])
                    res[q] = x;
                else
                    PQclear(x);
            }
        while ((x = PQgetResult(c->pg)) != NULL) {
            int sync = PQresultStatus(x) == PGRES_PIPELINE_SYNC;
            PQclear(x);
            if (sync)
                break;
        }
    }
    /* Left in pipeline mode, the connection is no longer idle, and the pool
     * reconnects it (pg_check). */
    (void)PQexitPipelineMode(c->pg);
    ExecStatusType st = PQresultStatus(res[0]);
    if (st != PGRES_COMMAND_OK) {
        PQclear(res[1]);
        return res[0];
    }
    PQclear(res[0]);
    return res[1];
}

static int pg_run(pg_conn *c, int id, const ly_sqlparam *p, int n, PGresult **out, ly_error *err)
{
    char buf[PG_MAXPARAMS][PG_PARAMBUF];
    const char *vals[PG_MAXPARAMS];
    *out = NULL;
    if (n > PG_MAXPARAMS)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "%s: too many parameters",
                            pg_stmts[id].name);
    int rc = pg_prepare(c, id, err);
    if (rc < 0 || (rc = pg_values(p, n, buf, vals, err)) < 0)
        return rc;
    if (c->begin_due && (rc = pg_prepare(c, c->begin_id, err)) < 0)
        return rc;
    PGresult *r = c->begin_due ? pg_exec_begun(c, id, n, vals)
                               : PQexecPrepared(c->pg, pg_stmts[id].name, n, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        *out = r;
        return 0;
    }
    rc = pg_fail(c, r, pg_stmts[id].name, err);
    PQclear(r);
    return rc;
}

static int parse_int(const char *s, int64_t *v, ly_error *err)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "the database returned %s for a number",
                            s);
    *v = x;
    return 0;
}

static int pg_int(const PGresult *r, int row, int col, int64_t *v, ly_error *err)
{
    *v = 0;
    return PQgetisnull(r, row, col) ? 0 : parse_int(PQgetvalue(r, row, col), v, err);
}

/* Reads integer columns cols[0..n) into fields[0..n). */
static int pg_ints(const PGresult *r, int row, const int *cols, int64_t *fields[], int n,
                   ly_error *err)
{
    for (int i = 0; i < n; i++)
        if (pg_int(r, row, cols[i], fields[i], err) < 0)
            return LY_EINTERNAL;
    return 0;
}

/* Reads text columns first..first+n-1 into arena strings, NULL for NULL. */
static int pg_texts(const PGresult *r, int row, int first, ly_arena *a, const char **fields[],
                    int n, ly_error *err)
{
    for (int i = 0; i < n; i++) {
        *fields[i] = NULL;
        if (PQgetisnull(r, row, first + i))
            continue;
        *fields[i] = ly_arena_strndup(a, PQgetvalue(r, row, first + i),
                                      (size_t)PQgetlength(r, row, first + i));
        if (!*fields[i])
            return ly__store_nomem(err);
    }
    return 0;
}

/* Runs a statement; *changes (may be NULL) receives how many rows it
 * changed. */
static int pg_exec(pg_conn *c, int id, const ly_sqlparam *p, int n, int64_t *changes, ly_error *err)
{
    PGresult *r;
    int rc = pg_run(c, id, p, n, &r, err);
    if (rc == 0 && changes)
        rc = parse_int(PQcmdTuples(r), changes, err);
    PQclear(r);
    return rc;
}

/* Reads the one row of statement id into out; LY_ENOTFOUND (err not set)
 * when there is none. */
static int pg_one(pg_conn *c, int id, const ly_sqlparam *p, int n, ly_arena *a, pg_reader read,
                  void *out, ly_error *err)
{
    PGresult *r;
    int rc = pg_run(c, id, p, n, &r, err);
    if (rc == 0)
        rc = PQntuples(r) > 0 ? read(r, 0, a, out, err) : LY_ENOTFOUND;
    PQclear(r);
    return rc;
}

/* Reads every row of statement id into an arena array of elements of size
 * sz. */
static int pg_all(pg_conn *c, int id, const ly_sqlparam *p, int n, ly_arena *a, pg_reader read,
                  size_t sz, void **out, size_t *count, ly_error *err)
{
    PGresult *r;
    *out = NULL;
    *count = 0;
    int rc = pg_run(c, id, p, n, &r, err);
    if (rc < 0)
        return rc;
    int rows = PQntuples(r);
    char *arr = rows ? ly_arena_alloc(a, (size_t)rows * sz) : NULL;
    if (rows && !arr)
        rc = ly__store_nomem(err);
    for (int i = 0; rc == 0 && i < rows; i++)
        rc = read(r, i, a, arr + (size_t)i * sz, err);
    PQclear(r);
    *out = rc == 0 ? arr : NULL;
    *count = rc == 0 ? (size_t)rows : 0;
    return rc;
}

/* The integer in the first column of the first row of statement id. */
static int pg_scalar(pg_conn *c, int id, int64_t *v, ly_error *err)
{
    PGresult *r;
    int rc = pg_run(c, id, NULL, 0, &r, err);
    if (rc == 0 && PQntuples(r) < 1)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "%s returned no row", pg_stmts[id].name);
    if (rc == 0)
        rc = pg_int(r, 0, 0, v, err);
    PQclear(r);
    return rc;
}

static int pg_read_program(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_program *p = out;
    memset(p, 0, sizeof *p);
    static const int cols[] = {0, 4, 6, 7};
    int64_t *ints[] = {&p->id, &p->point_value_minor, &p->created_at, &p->updated_at};
    const char **texts[] = {&p->name, &p->currency, &p->timezone};
    const char **settings[] = {&p->settings};
    if (pg_ints(r, row, cols, ints, 4, err) < 0)
        return LY_EINTERNAL;
    if (pg_texts(r, row, 1, a, texts, 3, err) < 0 || pg_texts(r, row, 5, a, settings, 1, err) < 0)
        return LY_ENOMEM;
    return 0;
}

static int pg_read_member(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_member *m = out;
    memset(m, 0, sizeof *m);
    static const int cols[] = {0, 1, 9, 10, 11, 12, 13, 14, 15, 16};
    int64_t *ints[] = {&m->id,
                       &m->program_id,
                       &m->created_at,
                       &m->updated_at,
                       &m->last_activity_at,
                       &m->lifetime_spend,
                       &m->purchase_count,
                       &m->last_purchase_at,
                       &m->points,
                       &m->credit};
    const char **texts[] = {&m->external_id, &m->email,      &m->phone, &m->name,
                            &m->birthdate,   &m->attributes, &m->status};
    if (pg_ints(r, row, cols, ints, LY_NPARAMS(cols), err) < 0)
        return LY_EINTERNAL;
    return pg_texts(r, row, 2, a, texts, 7, err);
}

static int pg_read_key(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_key *k = out;
    memset(k, 0, sizeof *k);
    static const int cols[] = {1, 5, 6};
    int64_t *ints[] = {&k->program_id, &k->created_at, &k->revoked_at};
    const char **id[] = {&k->id};
    const char **texts[] = {&k->scope, &k->name};
    if (pg_ints(r, row, cols, ints, 3, err) < 0)
        return LY_EINTERNAL;
    if (pg_texts(r, row, 0, a, id, 1, err) < 0 || pg_texts(r, row, 2, a, texts, 2, err) < 0)
        return LY_ENOMEM;
    size_t len = 0;
    unsigned char *hash = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, 4), &len);
    if (hash && len == sizeof k->hash)
        memcpy(k->hash, hash, sizeof k->hash);
    PQfreemem(hash);
    if (!hash)
        return ly__store_nomem(err);
    if (len != sizeof k->hash)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "key %s has a malformed hash", k->id);
    return 0;
}

/* Reads integer columns icols[0..ni) (NULL as 0) and text columns
 * tcols[0..nt) (NULL as NULL) of a row. */
static int pg_columns(const PGresult *r, int row, ly_arena *a, const int *icols, int64_t *ints[],
                      int ni, const int *tcols, const char **texts[], int nt, ly_error *err)
{
    if (pg_ints(r, row, icols, ints, ni, err) < 0)
        return LY_EINTERNAL;
    for (int i = 0; i < nt; i++)
        if (pg_texts(r, row, tcols[i], a, &texts[i], 1, err) < 0)
            return LY_ENOMEM;
    return 0;
}

#define PG_COLUMNS(r, row, a, icols, ints, tcols, texts, err)                                      \
    pg_columns(r, row, a, icols, ints, LY_NPARAMS(icols), tcols, texts, LY_NPARAMS(tcols), err)

static int pg_read_entry(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_entry *e = out;
    static const int icols[] = {0, 1, 2, 4, 5, 8, 9}, tcols[] = {3, 6, 7};
    int64_t *ints[] = {&e->id,           &e->program_id,   &e->member_id, &e->event_id,
                       &e->ref_entry_id, &e->effective_at, &e->created_at};
    const char **texts[] = {&e->kind, &e->memo, &e->data};
    return PG_COLUMNS(r, row, a, icols, ints, tcols, texts, err);
}

static int pg_read_lot(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_lot *l = out;
    static const int icols[] = {0, 1, 2, 4, 5, 6, 7, 8, 9}, tcols[] = {3};
    int64_t *ints[] = {&l->id,        &l->program_id,   &l->member_id,  &l->entry_id,  &l->amount,
                       &l->remaining, &l->available_at, &l->expires_at, &l->created_at};
    const char **texts[] = {&l->asset};
    return PG_COLUMNS(r, row, a, icols, ints, tcols, texts, err);
}

static int pg_read_consumption(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    (void)a;
    ly_consumption *k = out;
    static const int icols[] = {0, 1, 2};
    int64_t *ints[] = {&k->entry_id, &k->lot_id, &k->amount};
    return pg_ints(r, row, icols, ints, 3, err);
}

static int pg_read_activity(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_activity *v = out;
    static const int icols[] = {0, 5, 6, 7, 8}, tcols[] = {1, 2, 3, 4, 9};
    int64_t *ints[] = {&v->entry_id, &v->amount, &v->event_id, &v->effective_at, &v->created_at};
    const char **texts[] = {&v->kind, &v->asset, &v->memo, &v->data, &v->event_ext_id};
    return PG_COLUMNS(r, row, a, icols, ints, tcols, texts, err);
}

static int pg_read_event(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
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
    return PG_COLUMNS(r, row, a, icols, ints, tcols, texts, err);
}

static int pg_read_redemption(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_redemption *rd = out;
    static const int icols[] = {0, 1, 2, 4, 5, 7, 8, 9}, tcols[] = {3, 6};
    int64_t *ints[] = {&rd->id,       &rd->program_id,      &rd->member_id,  &rd->amount,
                       &rd->entry_id, &rd->cancel_entry_id, &rd->created_at, &rd->cancelled_at};
    const char **texts[] = {&rd->asset, &rd->status};
    return PG_COLUMNS(r, row, a, icols, ints, tcols, texts, err);
}

static int pg_read_idem(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_idem *i = out;
    static const int icols[] = {3, 5}, tcols[] = {0, 1, 2, 4};
    int64_t status = 0;
    int64_t *ints[] = {&status, &i->created_at};
    const char **texts[] = {&i->key, &i->route, &i->request_hash, &i->response};
    int rc = PG_COLUMNS(r, row, a, icols, ints, tcols, texts, err);
    i->status = (int)status;
    return rc;
}

static int pg_read_rule(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_rule_row *rr = out;
    static const int icols[] = {0, 1, 3, 5, 6, 7}, tcols[] = {2, 4};
    int64_t deleted = 0, current = 0;
    int64_t *ints[] = {&rr->id, &rr->program_id, &rr->version, &deleted, &current, &rr->created_at};
    const char **texts[] = {&rr->rule_id, &rr->body};
    int rc = PG_COLUMNS(r, row, a, icols, ints, tcols, texts, err);
    rr->deleted = deleted != 0;
    rr->current = current != 0;
    return rc;
}

static int pg_read_usage(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    (void)a;
    ly_rule_usage *u = out;
    static const int icols[] = {0, 1, 2};
    int64_t *ints[] = {&u->points, &u->credit, &u->count};
    return pg_ints(r, row, icols, ints, 3, err);
}

static int pg_read_event_rule(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly_event_rule *x = out;
    static const int icols[] = {0, 1, 3, 4, 5, 6, 7}, tcols[] = {2};
    int64_t *ints[] = {&x->event_id, &x->rule_row,        &x->version,        &x->points,
                       &x->credit,   &x->reversed_points, &x->reversed_credit};
    const char **texts[] = {&x->rule_id};
    return PG_COLUMNS(r, row, a, icols, ints, tcols, texts, err);
}

static int pg_read_id(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    (void)a;
    return pg_int(r, row, 0, out, err);
}

static int pg_read_text(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    const char **texts[] = {out};
    return pg_texts(r, row, 0, a, texts, 1, err);
}

/* Loads the cards of the members ms[0..n) (sorted by id, every member of the
 * program with an id in (after_id, last id]). */
static int pg_cards(pg_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, ly_member *ms,
                    size_t n, ly_error *err)
{
    if (n == 0)
        return 0;
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(after_id), LY_PI(ms[n - 1].id)};
    PGresult *r;
    int rc = pg_run(c, PG_CARDS_RANGE, p, LY_NPARAMS(p), &r, err);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        int64_t member_id;
        if ((rc = pg_int(r, i, 0, &member_id, err)) < 0)
            break;
        ly_member *m = ly__member_in(ms, n, member_id);
        if (m)
            rc = ly__member_add_card(a, m, PQgetvalue(r, i, 1), err);
    }
    PQclear(r);
    return rc;
}

static int pg_simple(ly_conn *c, int id, ly_error *err)
{
    return pg_exec(pg(c), id, NULL, 0, NULL, err);
}

static void pg_rollback(ly_conn *c)
{
    pg(c)->begin_due = 0; /* nothing was sent */
    PGTransactionStatusType ts = PQtransactionStatus(pg(c)->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        (void)pg_simple(c, PG_ROLLBACK, NULL);
}

static void pg_close(ly_conn *c)
{
    PQfinish(pg(c)->pg);
    free(c);
}

static int pg_open(const char *url, ly_conn **out, ly_error *err)
{
    static const char *const keys[] = {"dbname", "fallback_application_name", "client_encoding",
                                       NULL};
    const char *const vals[] = {url, "loyal", "UTF8", NULL};
    pg_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ly__store_nomem(err);
    c->base.ops = &ly__postgres_ops;
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg) {
        free(c);
        return ly__store_nomem(err);
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(c->pg);
        int rc = ly_error_set(err, LY_ESTORE, NULL, NULL, "cannot connect to PostgreSQL: %.*s",
                              msglen(msg), msg);
        pg_close(&c->base);
        return rc;
    }
    PQsetNoticeProcessor(c->pg, pg_quiet, NULL);
    *out = &c->base;
    return 0;
}

/* Has the server closed an idle connection? Nothing is readable on one
 * unless the server is closing it (or sent a notice): reading what there is
 * tells libpq which. */
static int pg_alive(PGconn *conn)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
    for (int i = 0; i < 8 && PQstatus(conn) == CONNECTION_OK && poll(&p, 1, 0) > 0; i++)
        if (!PQconsumeInput(conn))
            return 0;
    return PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
}

/* A pooled connection the server dropped (restart, idle timeout) is
 * reconnected once; its statements must then be prepared again. */
static int pg_check(ly_conn *c, ly_error *err)
{
    pg_conn *p = pg(c);
    if (pg_alive(p->pg))
        return 0;
    PQreset(p->pg);
    memset(p->prepared, 0, sizeof p->prepared);
    p->begin_due = 0;
    if (PQstatus(p->pg) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(p->pg);
        return ly_error_set(err, LY_ESTORE, NULL, NULL, "cannot reconnect to PostgreSQL: %.*s",
                            msglen(msg), msg);
    }
    return 0;
}

static int pg_migrate_lock(ly_conn *c, int lock, ly_error *err)
{
    return pg_simple(c, lock ? PG_LOCK : PG_UNLOCK, err);
}

/* A BEGIN still owed, sent on its own: before a script, which goes outside
 * prepared statements. */
static int pg_begin_now(pg_conn *c, ly_error *err)
{
    if (!c->begin_due)
        return 0;
    c->begin_due = 0;
    return pg_exec(c, c->begin_id, NULL, 0, NULL, err);
}

static int pg_exec_script(ly_conn *c, const char *sql, ly_error *err)
{
    int rc = pg_begin_now(pg(c), err);
    if (rc < 0)
        return rc;
    PGresult *r = PQexec(pg(c)->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg_fail(pg(c), r, "migration", err);
    PQclear(r);
    return rc;
}

static int pg_migration_applied(ly_conn *c, int version, int *applied, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(version)};
    PGresult *r;
    int rc = pg_run(pg(c), PG_MIGRATION_APPLIED, p, LY_NPARAMS(p), &r, err);
    *applied = rc == 0 && PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static int pg_migration_record(ly_conn *c, const ly_migration *m, int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->version), LY_PS(m->name), LY_PI(now)};
    return pg_exec(pg(c), PG_MIGRATION_RECORD, p, LY_NPARAMS(p), NULL, err);
}

static int pg_schema_version(ly_conn *c, int *version, ly_error *err)
{
    int64_t v = 0;
    int rc = pg_scalar(pg(c), PG_SCHEMA_EXISTS, &v, err);
    if (rc == 0 && v)
        rc = pg_scalar(pg(c), PG_SCHEMA_VERSION, &v, err);
    *version = rc == 0 ? (int)v : 0;
    return rc;
}

/* BEGIN is sent with the transaction's first statement (pg_exec_begun). */
static int pg_begin(ly_conn *c, int id)
{
    pg(c)->begin_due = 1;
    pg(c)->begin_id = id;
    return 0;
}

static int pg_begin_write(ly_conn *c, ly_error *err)
{
    return pg_begin(c, PG_BEGIN);
}

static int pg_begin_read(ly_conn *c, ly_error *err)
{
    return pg_begin(c, PG_BEGIN_READ);
}

/* PostgreSQL answers COMMIT of a transaction an earlier error aborted with
 * ROLLBACK: that is a failure too. A failed commit leaves no transaction. */
static int pg_commit(ly_conn *c, ly_error *err)
{
    if (pg(c)->begin_due) {
        pg(c)->begin_due = 0; /* no statement ran: nothing to commit */
        return 0;
    }
    PGresult *r;
    int rc = pg_run(pg(c), PG_COMMIT, NULL, 0, &r, err);
    if (rc == 0 && strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL,
                          "the transaction was rolled back after an earlier error");
    PQclear(r);
    if (rc < 0)
        pg_rollback(c);
    return rc;
}

static int pg_program_get(ly_conn *c, ly_arena *a, int64_t program_id, ly_program *out,
                          ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id)};
    int rc = pg_one(pg(c), PG_PROGRAM_GET, p, LY_NPARAMS(p), a, pg_read_program, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "program %" PRId64 " not found", program_id);
    return rc;
}

static int pg_program_put(ly_conn *c, const ly_program *pr, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(pr->id),
                       LY_PS(pr->name),
                       LY_PS(pr->currency),
                       LY_PS(pr->timezone),
                       LY_PI(pr->point_value_minor),
                       LY_PS(pr->settings),
                       LY_PI(pr->updated_at)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_PROGRAM_PUT, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "program %" PRId64 " not found", pr->id);
    return rc;
}

static int pg_member_insert(ly_conn *c, ly_member *m, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->program_id), LY_PS(m->external_id), LY_PS(m->email),
                       LY_PS(m->phone),      LY_PS(m->name),        LY_PS(m->birthdate),
                       LY_PS(m->attributes), LY_PS(m->status),      LY_PI(m->created_at),
                       LY_PI(m->updated_at)};
    PGresult *r;
    int rc = pg_run(pg(c), PG_MEMBER_INSERT, p, LY_NPARAMS(p), &r, err);
    if (rc == 0 && PQntuples(r) != 1)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "member_insert returned no id");
    if (rc == 0)
        rc = pg_int(r, 0, 0, &m->id, err);
    PQclear(r);
    return rc;
}

static int pg_member_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_member *out,
                         ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = pg_one(pg(c), PG_MEMBER_GET, p, LY_NPARAMS(p), a, pg_read_member, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "member %" PRId64 " not found", id);
    return rc < 0 ? rc : pg_cards(pg(c), a, program_id, id - 1, out, 1, err);
}

static int pg_member_find(ly_conn *c, ly_arena *a, int64_t program_id, int by, const char *value,
                          ly_member *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(value)};
    int id = PG_MEMBER_BY_EXTERNAL_ID + by;
    int rc = pg_one(pg(c), id, p, LY_NPARAMS(p), a, pg_read_member, out, err);
    if (rc == LY_ENOTFOUND)
        return ly__member_not_found(err, by);
    return rc < 0 ? rc : pg_cards(pg(c), a, program_id, out->id - 1, out, 1, err);
}

static int pg_member_update(ly_conn *c, const ly_member *m, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(m->program_id), LY_PI(m->id),         LY_PS(m->external_id),
                       LY_PS(m->email),      LY_PS(m->phone),      LY_PS(m->name),
                       LY_PS(m->birthdate),  LY_PS(m->attributes), LY_PS(m->status),
                       LY_PI(m->updated_at)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_MEMBER_UPDATE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "member %" PRId64 " not found", m->id);
    return rc;
}

static int pg_member_list(ly_conn *c, ly_arena *a, int64_t program_id, int64_t after_id, int limit,
                          ly_member **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(after_id), LY_PI(limit)};
    void *arr = NULL;
    int rc = pg_all(pg(c), PG_MEMBER_LIST, p, LY_NPARAMS(p), a, pg_read_member, sizeof(ly_member),
                    &arr, n, err);
    *out = arr;
    return rc < 0 ? rc : pg_cards(pg(c), a, program_id, after_id, *out, *n, err);
}

static int pg_card_attach(ly_conn *c, int64_t program_id, int64_t member_id, const char *card,
                          int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(card), LY_PI(member_id), LY_PI(now)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_CARD_ATTACH, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "member %" PRId64 " not found",
                            member_id);
    return rc;
}

static int pg_key_insert(ly_conn *c, const ly_key *k, ly_error *err)
{
    ly_sqlparam p[] = {LY_PS(k->id),        LY_PI(k->program_id),           LY_PS(k->scope),
                       LY_PS(k->name),      LY_PB(k->hash, sizeof k->hash), LY_PI(k->created_at),
                       LY_PI(k->revoked_at)};
    return pg_exec(pg(c), PG_KEY_INSERT, p, LY_NPARAMS(p), NULL, err);
}

static int pg_key_get(ly_conn *c, ly_arena *a, const char *id, ly_key *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PS(id)};
    int rc = pg_one(pg(c), PG_KEY_GET, p, LY_NPARAMS(p), a, pg_read_key, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "no such key");
    return rc;
}

static int pg_key_list(ly_conn *c, ly_arena *a, int64_t program_id, ly_key **out, size_t *n,
                       ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id)};
    void *arr = NULL;
    int rc =
        pg_all(pg(c), PG_KEY_LIST, p, LY_NPARAMS(p), a, pg_read_key, sizeof(ly_key), &arr, n, err);
    *out = arr;
    return rc;
}

static int pg_key_revoke(ly_conn *c, int64_t program_id, const char *id, int64_t now, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(id), LY_PI(now)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_KEY_REVOKE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL, "no such key");
    return rc;
}

static int pg_table_counts(ly_conn *c, int64_t rows[LY_STORE_NTABLES], ly_error *err)
{
    PGresult *r;
    int rc = pg_run(pg(c), PG_TABLE_COUNTS, NULL, 0, &r, err);
    if (rc == 0 && PQntuples(r) != 1)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "table_counts returned no row");
    for (int i = 0; rc == 0 && i < LY_STORE_NTABLES; i++)
        rc = pg_int(r, 0, i, &rows[i], err);
    PQclear(r);
    return rc;
}

/* The integer in the first column of the first row of statement id: 1 when
 * there is a row, 0 when none. */
static int pg_int_of(pg_conn *c, int id, const ly_sqlparam *p, int n, int64_t *v, ly_error *err)
{
    PGresult *r;
    int rc = pg_run(c, id, p, n, &r, err);
    if (rc == 0 && PQntuples(r) > 0)
        rc = pg_int(r, 0, 0, v, err) < 0 ? LY_EINTERNAL : 1;
    PQclear(r);
    return rc;
}

/* Runs an INSERT … RETURNING id and gives the id. */
static int pg_insert(pg_conn *c, int id, const ly_sqlparam *p, int n, int64_t *out, ly_error *err)
{
    int rc = pg_int_of(c, id, p, n, out, err);
    if (rc == 0)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "%s returned no id", pg_stmts[id].name);
    return rc < 0 ? rc : 0;
}

static int pg_member_lock(ly_conn *c, int64_t program_id, int64_t member_id, int *active,
                          ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id)};
    int64_t one = 0;
    int id = ly_store_in_transaction(c) == 1 ? PG_MEMBER_STATUS : PG_MEMBER_LOCK;
    int rc = pg_int_of(pg(c), id, p, LY_NPARAMS(p), &one, err);
    if (rc == 0)
        return ly__store_not_found(err, "member", member_id);
    if (active)
        *active = one == 1;
    return rc < 0 ? rc : 0;
}

static int pg_member_touch(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                           ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PI(at)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_MEMBER_TOUCH, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly__store_not_found(err, "member", member_id);
    return rc;
}

/* Appends the array literal of the postings' member ids, or amounts, at
 * *at. */
static void pg_int_array(char **at, const ly_posting *p, size_t n, int amounts)
{
    char *w = *at;
    *w++ = '{';
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "%s%" PRId64, i ? "," : "", amounts ? p[i].amount : p[i].member_id);
    *w++ = '}';
    *w++ = '\0';
    *at = w;
}

/* Appends the array literal of the postings' kinds, or assets, at *at,
 * every element quoted. */
static void pg_text_array(char **at, const ly_posting *p, size_t n, int asset)
{
    char *w = *at;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        *w++ = '"';
        for (const char *t = asset ? p[i].asset : p[i].kind; *t; t++) {
            if (*t == '"' || *t == '\\')
                *w++ = '\\';
            *w++ = *t;
        }
        *w++ = '"';
    }
    *w++ = '}';
    *w++ = '\0';
    *at = w;
}

/* One statement: the entry, its accounts and its postings. */
static int pg_entry_insert(ly_conn *c, ly_entry *e, const ly_posting *ps, size_t n, ly_error *err)
{
    /* 20 characters per number and a comma; text escaped at worst doubles,
     * with quotes and a comma. */
    size_t size = 4 * 3 + n * 2 * 22;
    for (size_t i = 0; i < n; i++)
        size += 2 * (strlen(ps[i].kind) + strlen(ps[i].asset)) + 2 * 3;
    char *buf = malloc(size), *w = buf;
    if (!buf)
        return ly__store_nomem(err);
    const char *members = w;
    pg_int_array(&w, ps, n, 0);
    const char *kinds = w;
    pg_text_array(&w, ps, n, 0);
    const char *assets = w;
    pg_text_array(&w, ps, n, 1);
    const char *amounts = w;
    pg_int_array(&w, ps, n, 1);
    ly_sqlparam p[] = {LY_PI(e->program_id), LY_PI(e->member_id),    LY_PS(e->kind),
                       LY_PI(e->event_id),   LY_PI(e->ref_entry_id), LY_PS(e->memo),
                       LY_PS(e->data),       LY_PI(e->effective_at), LY_PI(e->created_at),
                       LY_PS(members),       LY_PS(kinds),           LY_PS(assets),
                       LY_PS(amounts)};
    int64_t id = 0, posted = 0;
    PGresult *r;
    int rc = pg_run(pg(c), PG_ENTRY_INSERT, p, LY_NPARAMS(p), &r, err);
    free(buf);
    if (rc < 0)
        return rc;
    if (PQntuples(r) != 1 || pg_int(r, 0, 0, &id, err) < 0 || pg_int(r, 0, 1, &posted, err) < 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL, "entry_insert returned no id");
    else if (posted != (int64_t)n)
        rc = ly_error_set(err, LY_ERETRY, "storage_busy", NULL,
                          "a program account was created by another transaction meanwhile; "
                          "retry");
    PQclear(r);
    if (rc == 0)
        e->id = id;
    return rc;
}

static int pg_entry_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id, ly_entry *out,
                        ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = pg_one(pg(c), PG_ENTRY_GET, p, LY_NPARAMS(p), a, pg_read_entry, out, err);
    return rc == LY_ENOTFOUND ? ly__store_not_found(err, "entry", id) : rc;
}

static int pg_account_balance(ly_conn *c, int64_t program_id, int64_t member_id, const char *kind,
                              const char *asset, int64_t *balance, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PS(kind), LY_PS(asset)};
    *balance = 0;
    int rc = pg_int_of(pg(c), member_id ? PG_ACCOUNT_BALANCE : PG_ACCOUNT_POSTED, p, LY_NPARAMS(p),
                       balance, err);
    return rc < 0 ? rc : 0;
}

static int pg_lot_insert(ly_conn *c, ly_lot *l, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(l->program_id),   LY_PI(l->member_id),  LY_PS(l->asset),
                       LY_PI(l->entry_id),     LY_PI(l->amount),     LY_PI(l->remaining),
                       LY_PI(l->available_at), LY_PI(l->expires_at), LY_PI(l->created_at)};
    return pg_insert(pg(c), PG_LOT_INSERT, p, LY_NPARAMS(p), &l->id, err);
}

/* Every row of statement id into *out, an arena array of T. */
#define PG_ALL(c, id, p, a, read, T, out, n, err)                                                  \
    do {                                                                                           \
        void *arr_ = NULL;                                                                         \
        rc = pg_all(pg(c), id, p, LY_NPARAMS(p), a, read, sizeof(T), &arr_, n, err);               \
        *(out) = arr_;                                                                             \
    } while (0)

static int pg_read_balance_row(const PGresult *r, int row, ly_arena *a, void *out, ly_error *err)
{
    ly__balance_row *b = out;
    b->points = strcmp(PQgetvalue(r, row, 1), "points") == 0;
    b->asset_known = b->points || strcmp(PQgetvalue(r, row, 1), "credit") == 0;
    if (pg_int(r, row, 0, &b->kind, err) < 0)
        return LY_EINTERNAL;
    for (int i = 0; i < 3; i++)
        if (pg_int(r, row, 2 + i, &b->v[i], err) < 0)
            return LY_EINTERNAL;
    return 0;
}

static int pg_member_balances(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                              int64_t as_of, int max_groups, ly__balance_row **rows, size_t *n,
                              ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PI(as_of), LY_PI(max_groups)};
    int rc;
    PG_ALL(c, PG_MEMBER_BALANCES, p, a, pg_read_balance_row, ly__balance_row, rows, n, err);
    return rc < 0 ? rc : 0;
}

static int pg_savepoint(ly_conn *c, int op, ly_error *err)
{
    static const char *const sql[] = {"SAVEPOINT ly_sp", "RELEASE SAVEPOINT ly_sp",
                                      "ROLLBACK TO SAVEPOINT ly_sp"};
    return c->ops->exec_script(c, sql[op], err);
}

static int pg_lots_open(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                        const char *asset, ly_lot **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PS(asset)};
    int rc;
    PG_ALL(c, PG_LOTS_OPEN, p, a, pg_read_lot, ly_lot, out, n, err);
    return rc;
}

static int pg_lots_of_entry(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                            ly_lot **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(entry_id)};
    int rc;
    PG_ALL(c, PG_LOTS_OF_ENTRY, p, a, pg_read_lot, ly_lot, out, n, err);
    return rc;
}

static int pg_lot_forgiven(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t *out,
                           ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(lot_id)};
    *out = 0;
    int rc = pg_int_of(pg(c), PG_LOT_FORGIVEN, p, LY_NPARAMS(p), out, err);
    return rc < 0 ? rc : 0;
}

static int pg_lot_forgive(ly_conn *c, int64_t program_id, int64_t lot_id, int64_t delta,
                          ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(lot_id), LY_PI(delta)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_LOT_FORGIVE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        rc = ly_error_set(err, LY_EINTERNAL, NULL, NULL,
                          "lot %" PRId64 " cannot have %" PRId64 " more forgiven", lot_id, delta);
    return rc;
}

static int pg_consumption_insert(ly_conn *c, int64_t program_id, const ly_consumption *k,
                                 ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(k->entry_id), LY_PI(k->lot_id), LY_PI(k->amount)};
    int64_t inserted = 0;
    int rc = pg_exec(pg(c), PG_CONSUMPTION_INSERT, p, LY_NPARAMS(p), &inserted, err);
    if (rc == 0 && inserted == 0)
        return ly_error_set(err, LY_EINTERNAL, NULL, NULL, "lot %" PRId64 " cannot give %" PRId64,
                            k->lot_id, k->amount);
    return rc;
}

static int pg_consumptions_of_entry(ly_conn *c, ly_arena *a, int64_t program_id, int64_t entry_id,
                                    ly_consumption **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(entry_id)};
    int rc;
    PG_ALL(c, PG_CONSUMPTIONS_OF_ENTRY, p, a, pg_read_consumption, ly_consumption, out, n, err);
    return rc;
}

static int pg_lots_expired(ly_conn *c, ly_arena *a, int64_t program_id, int64_t as_of, int limit,
                           ly_lot **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(as_of), LY_PI(limit)};
    int rc;
    PG_ALL(c, PG_LOTS_EXPIRED, p, a, pg_read_lot, ly_lot, out, n, err);
    return rc;
}

static int pg_members_inactive(ly_conn *c, ly_arena *a, int64_t program_id, int64_t before,
                               int64_t after_id, int limit, int64_t **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(before), LY_PI(after_id), LY_PI(limit)};
    int rc;
    PG_ALL(c, PG_MEMBERS_INACTIVE, p, a, pg_read_id, int64_t, out, n, err);
    return rc;
}

static int pg_activity(ly_conn *c, ly_arena *a, int64_t program_id, int64_t member_id,
                       int64_t before_entry, int limit, ly_activity **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PI(before_entry), LY_PI(limit)};
    int rc;
    PG_ALL(c, PG_ACTIVITY, p, a, pg_read_activity, ly_activity, out, n, err);
    return rc;
}

static int pg_event_insert(ly_conn *c, ly_event *ev, ly_error *err)
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
    return pg_insert(pg(c), PG_EVENT_INSERT, p, LY_NPARAMS(p), &ev->id, err);
}

static int pg_event_next_id(ly_conn *c, int64_t *id, ly_error *err)
{
    return pg_scalar(pg(c), PG_EVENT_NEXT_ID, id, err);
}

static int pg_event_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *ext_id,
                        ly_event *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(ext_id)};
    int rc = pg_one(pg(c), PG_EVENT_GET, p, LY_NPARAMS(p), a, pg_read_event, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "no event with this id");
    return rc;
}

static int pg_event_get_by_id(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id,
                              ly_event *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = pg_one(pg(c), PG_EVENT_GET_BY_ID, p, LY_NPARAMS(p), a, pg_read_event, out, err);
    return rc == LY_ENOTFOUND ? ly__store_not_found(err, "event", id) : rc;
}

static int pg_event_update(ly_conn *c, const ly_event *ev, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(ev->program_id),      LY_PI(ev->id),
                       LY_PI(ev->entry_id),        LY_PI(ev->points),
                       LY_PI(ev->credit),          LY_PI(ev->returned_amount),
                       LY_PI(ev->reversed_points), LY_PI(ev->reversed_credit),
                       LY_PS(ev->returned_items),  LY_PS(ev->result)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_EVENT_UPDATE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly__store_not_found(err, "event", ev->id);
    return rc;
}

static int pg_redemption_insert(ly_conn *c, ly_redemption *r, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(r->program_id),      LY_PI(r->member_id),  LY_PS(r->asset),
                       LY_PI(r->amount),          LY_PI(r->entry_id),   LY_PS(r->status),
                       LY_PI(r->cancel_entry_id), LY_PI(r->created_at), LY_PI(r->cancelled_at)};
    return pg_insert(pg(c), PG_REDEMPTION_INSERT, p, LY_NPARAMS(p), &r->id, err);
}

static int pg_redemption_get(ly_conn *c, ly_arena *a, int64_t program_id, int64_t id,
                             ly_redemption *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(id)};
    int rc = pg_one(pg(c), PG_REDEMPTION_GET, p, LY_NPARAMS(p), a, pg_read_redemption, out, err);
    return rc == LY_ENOTFOUND ? ly__store_not_found(err, "redemption", id) : rc;
}

static int pg_redemption_cancel(ly_conn *c, const ly_redemption *r, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(r->program_id), LY_PI(r->id), LY_PI(r->cancel_entry_id),
                       LY_PI(r->cancelled_at)};
    int64_t changed = 0, one;
    int rc = pg_exec(pg(c), PG_REDEMPTION_CANCEL, p, LY_NPARAMS(p), &changed, err);
    if (rc < 0 || changed)
        return rc;
    rc = pg_int_of(pg(c), PG_REDEMPTION_EXISTS, p, 2, &one, err);
    if (rc > 0)
        return ly_error_set(err, LY_EREFUSED, "already_cancelled", NULL,
                            "redemption %" PRId64 " is already cancelled", r->id);
    return rc < 0 ? rc : ly__store_not_found(err, "redemption", r->id);
}

static int pg_idem_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *key, ly_idem *out,
                       ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(key)};
    int rc = pg_one(pg(c), PG_IDEM_GET, p, LY_NPARAMS(p), a, pg_read_idem, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "the idempotency_key was not used yet");
    return rc;
}

static int pg_idem_put(ly_conn *c, int64_t program_id, const ly_idem *i, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id),      LY_PS(i->key),    LY_PS(i->route),
                       LY_PS(i->request_hash), LY_PI(i->status), LY_PS(i->response),
                       LY_PI(i->created_at)};
    return pg_exec(pg(c), PG_IDEM_PUT, p, LY_NPARAMS(p), NULL, err);
}

static int pg_verify(ly_conn *c, ly_arena *a, int check, int limit, const char ***details,
                     size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(limit)};
    int rc;
    PG_ALL(c, PG_VERIFY_FIRST + check, p, a, pg_read_text, const char *, details, n, err);
    return rc;
}

static int pg_member_purchase(ly_conn *c, int64_t program_id, int64_t member_id, int64_t at,
                              int64_t spend, int64_t count, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(member_id), LY_PI(at), LY_PI(spend), LY_PI(count)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_MEMBER_PURCHASE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly__store_not_found(err, "member", member_id);
    return rc;
}

static int pg_members_by_birthday(ly_conn *c, ly_arena *a, int64_t program_id, const char *mmdd,
                                  int64_t after_id, int limit, ly_member **out, size_t *n,
                                  ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(mmdd), LY_PI(after_id), LY_PI(limit)};
    int rc;
    PG_ALL(c, PG_MEMBERS_BY_BIRTHDAY, p, a, pg_read_member, ly_member, out, n, err);
    return rc < 0 ? rc : pg_cards(pg(c), a, program_id, after_id, *out, *n, err);
}

/* One statement: the old current version is cleared and the new one
 * inserted together. */
static int pg_rule_insert(ly_conn *c, ly_rule_row *r, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(r->program_id), LY_PS(r->rule_id),         LY_PI(r->version),
                       LY_PS(r->body),       LY_PI(r->deleted ? 1 : 0), LY_PI(r->created_at)};
    int64_t id = 0;
    int rc = pg_insert(pg(c), PG_RULE_INSERT, p, LY_NPARAMS(p), &id, err);
    if (rc == 0) {
        r->id = id;
        r->current = 1;
    }
    return rc;
}

static int pg_rule_get(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                       int64_t version, ly_rule_row *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(rule_id), LY_PI(version)};
    int id = version ? PG_RULE_GET : PG_RULE_CURRENT;
    int rc = pg_one(pg(c), id, p, version ? 3 : 2, a, pg_read_rule, out, err);
    if (rc == LY_ENOTFOUND)
        return ly_error_set(err, rc, NULL, NULL, "no rule %.128s%s", rule_id ? rule_id : "",
                            version ? " of that version" : "");
    return rc;
}

static int pg_rule_list(ly_conn *c, ly_arena *a, int64_t program_id, const char *after, int limit,
                        ly_rule_row **out, size_t *n, ly_error *err)
{
    ly_sqlparam first[] = {LY_PI(program_id), LY_PI(limit)};
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(after), LY_PI(limit)};
    int rc;
    if (after)
        PG_ALL(c, PG_RULE_LIST_AFTER, p, a, pg_read_rule, ly_rule_row, out, n, err);
    else
        PG_ALL(c, PG_RULE_LIST_FIRST, first, a, pg_read_rule, ly_rule_row, out, n, err);
    return rc;
}

static int pg_rule_versions(ly_conn *c, ly_arena *a, int64_t program_id, const char *rule_id,
                            int64_t after, int limit, ly_rule_row **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(rule_id), LY_PI(after), LY_PI(limit)};
    int rc;
    PG_ALL(c, PG_RULE_VERSIONS, p, a, pg_read_rule, ly_rule_row, out, n, err);
    return rc;
}

static int pg_rule_usage_get(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                             int64_t period_start, ly_rule_usage *out, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(rule_id), LY_PI(member_id), LY_PI(period_start)};
    memset(out, 0, sizeof *out);
    int rc = pg_one(pg(c), PG_RULE_USAGE_GET, p, LY_NPARAMS(p), NULL, pg_read_usage, out, err);
    return rc == LY_ENOTFOUND ? 0 : rc;
}

static int pg_rule_usage_add(ly_conn *c, int64_t program_id, const char *rule_id, int64_t member_id,
                             int64_t period_start, const ly_rule_usage *d, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PS(rule_id),   LY_PI(member_id), LY_PI(period_start),
                       LY_PI(d->points),  LY_PI(d->credit), LY_PI(d->count)};
    return pg_exec(pg(c), PG_RULE_USAGE_ADD, p, LY_NPARAMS(p), NULL, err);
}

static int pg_event_rule_insert(ly_conn *c, int64_t program_id, const ly_event_rule *r,
                                ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id),        LY_PI(r->event_id), LY_PI(r->rule_row),
                       LY_PI(r->points),         LY_PI(r->credit),   LY_PI(r->reversed_points),
                       LY_PI(r->reversed_credit)};
    return pg_exec(pg(c), PG_EVENT_RULE_INSERT, p, LY_NPARAMS(p), NULL, err);
}

static int pg_event_rules(ly_conn *c, ly_arena *a, int64_t program_id, int64_t event_id,
                          ly_event_rule **out, size_t *n, ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(event_id)};
    int rc;
    PG_ALL(c, PG_EVENT_RULES, p, a, pg_read_event_rule, ly_event_rule, out, n, err);
    return rc;
}

static int pg_event_rule_update(ly_conn *c, int64_t program_id, const ly_event_rule *r,
                                ly_error *err)
{
    ly_sqlparam p[] = {LY_PI(program_id), LY_PI(r->event_id), LY_PI(r->rule_row),
                       LY_PI(r->reversed_points), LY_PI(r->reversed_credit)};
    int64_t changed = 0;
    int rc = pg_exec(pg(c), PG_EVENT_RULE_UPDATE, p, LY_NPARAMS(p), &changed, err);
    if (rc == 0 && changed == 0)
        return ly_error_set(err, LY_ENOTFOUND, NULL, NULL,
                            "event %" PRId64 " has no row for rule version %" PRId64, r->event_id,
                            r->rule_row);
    return rc;
}

const char *ly__pg_statement(size_t i, const char **name)
{
    if (i >= PG_NSTMTS)
        return NULL;
    *name = pg_stmts[i].name;
    return pg_stmts[i].sql;
}

const ly_store_ops ly__postgres_ops = {
    .name = "postgres",
    .migrations = ly__migrations_postgres,
    .open = pg_open,
    .close = pg_close,
    .check = pg_check,
    .reset = pg_rollback,
    .migrate_lock = pg_migrate_lock,
    .exec_script = pg_exec_script,
    .migration_applied = pg_migration_applied,
    .migration_record = pg_migration_record,
    .schema_version = pg_schema_version,
    .begin_write = pg_begin_write,
    .begin_read = pg_begin_read,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .program_get = pg_program_get,
    .program_put = pg_program_put,
    .member_insert = pg_member_insert,
    .member_get = pg_member_get,
    .member_find = pg_member_find,
    .member_update = pg_member_update,
    .member_list = pg_member_list,
    .card_attach = pg_card_attach,
    .key_insert = pg_key_insert,
    .key_get = pg_key_get,
    .key_list = pg_key_list,
    .key_revoke = pg_key_revoke,
    .table_counts = pg_table_counts,
    .member_lock = pg_member_lock,
    .member_touch = pg_member_touch,
    .entry_insert = pg_entry_insert,
    .entry_get = pg_entry_get,
    .account_balance = pg_account_balance,
    .lot_insert = pg_lot_insert,
    .lots_open = pg_lots_open,
    .member_balances = pg_member_balances,
    .savepoint = pg_savepoint,
    .lots_of_entry = pg_lots_of_entry,
    .consumption_insert = pg_consumption_insert,
    .lot_forgiven = pg_lot_forgiven,
    .lot_forgive = pg_lot_forgive,
    .consumptions_of_entry = pg_consumptions_of_entry,
    .lots_expired = pg_lots_expired,
    .members_inactive = pg_members_inactive,
    .activity = pg_activity,
    .event_insert = pg_event_insert,
    .event_next_id = pg_event_next_id,
    .event_get = pg_event_get,
    .event_get_by_id = pg_event_get_by_id,
    .event_update = pg_event_update,
    .redemption_insert = pg_redemption_insert,
    .redemption_get = pg_redemption_get,
    .redemption_cancel = pg_redemption_cancel,
    .idem_get = pg_idem_get,
    .idem_put = pg_idem_put,
    .verify = pg_verify,
    .member_purchase = pg_member_purchase,
    .members_by_birthday = pg_members_by_birthday,
    .rule_insert = pg_rule_insert,
    .rule_get = pg_rule_get,
    .rule_list = pg_rule_list,
    .rule_versions = pg_rule_versions,
    .rule_usage_get = pg_rule_usage_get,
    .rule_usage_add = pg_rule_usage_add,
    .event_rule_insert = pg_event_rule_insert,
    .event_rules = pg_event_rules,
    .event_rule_update = pg_event_rule_update,
};
