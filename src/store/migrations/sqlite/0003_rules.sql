-- Rules, versioned: every change of a rule is a new row, and what each
-- version gave an event stays pointed at that row. Caps count what a rule
-- used per member or for the whole rule, per period. Members carry their
-- purchase totals, for rules that look at them.

ALTER TABLE members ADD COLUMN lifetime_spend INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN purchase_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN last_purchase_at INTEGER;

-- The totals of the purchases recorded before this migration.
UPDATE members SET lifetime_spend = p.spend, purchase_count = p.n, last_purchase_at = p.last
FROM (SELECT program_id, member_id, SUM(amount - returned_amount) AS spend, count(*) AS n,
             MAX(occurred_at) AS last
      FROM events WHERE type = 'purchase' AND member_id IS NOT NULL
      GROUP BY program_id, member_id) AS p
WHERE members.program_id = p.program_id AND members.id = p.member_id;

-- Members by birthday ("MM-DD" of birthdate), in id order.
CREATE INDEX members_birthday_idx ON members (program_id, substr(birthdate, 6, 5), id);

-- rule_id is compared byte by byte (SQLite's BINARY), as on PostgreSQL.
CREATE TABLE rules (
    id INTEGER PRIMARY KEY,
    program_id INTEGER NOT NULL REFERENCES programs (id),
    rule_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    current INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    CONSTRAINT rules_version_key UNIQUE (program_id, rule_id, version)
);
-- The current version of each rule, listed by rule_id; one per rule.
CREATE UNIQUE INDEX rules_current_key ON rules (program_id, rule_id) WHERE current = 1;

-- member_id 0: the rule's own cap; period_start 0: the rule's lifetime.
CREATE TABLE rule_usage (
    program_id INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    member_id INTEGER NOT NULL,
    period_start INTEGER NOT NULL,
    points INTEGER NOT NULL DEFAULT 0,
    credit INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT rule_usage_pkey PRIMARY KEY (program_id, rule_id, member_id, period_start)
) WITHOUT ROWID;

-- What each rule version gave each event, and what returns took back.
CREATE TABLE event_rules (
    event_id INTEGER NOT NULL REFERENCES events (id),
    rule_row INTEGER NOT NULL REFERENCES rules (id),
    program_id INTEGER NOT NULL,
    points INTEGER NOT NULL DEFAULT 0,
    credit INTEGER NOT NULL DEFAULT 0,
    reversed_points INTEGER NOT NULL DEFAULT 0,
    reversed_credit INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT event_rules_pkey PRIMARY KEY (event_id, rule_row)
) WITHOUT ROWID;
