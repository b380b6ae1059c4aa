-- The ledger: accounts and their balances, journal entries and their
-- postings, lots and what consumed them, events as received, redemptions
-- and idempotency keys. Amounts are integers (points, or minor units of the
-- program's currency). An optional id or time is NULL when absent (0 in the
-- store's structs).

ALTER TABLE members ADD COLUMN last_activity_at INTEGER;

-- A member account has kind 'member' and its member's id; program accounts
-- have member_id 0. Created on first posting.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    program_id INTEGER NOT NULL REFERENCES programs (id),
    member_id INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    asset TEXT NOT NULL,
    balance INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT accounts_key UNIQUE (program_id, member_id, kind, asset)
);

CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    program_id INTEGER NOT NULL,
    member_id INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    event_id INTEGER,
    ref_entry_id INTEGER,
    memo TEXT,
    data TEXT,
    effective_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX entries_member_idx ON entries (program_id, member_id, id);

-- Small rows read by their key: no rowid.
CREATE TABLE postings (
    entry_id INTEGER NOT NULL REFERENCES entries (id),
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL,
    CONSTRAINT postings_pkey PRIMARY KEY (entry_id, account_id)
) WITHOUT ROWID;
CREATE INDEX postings_account_idx ON postings (account_id, entry_id);

CREATE TABLE lots (
    id INTEGER PRIMARY KEY,
    program_id INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    asset TEXT NOT NULL,
    entry_id INTEGER NOT NULL REFERENCES entries (id),
    amount INTEGER NOT NULL,
    remaining INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    CONSTRAINT lots_remaining_check CHECK (remaining >= 0 AND remaining <= amount AND amount > 0)
);
-- Open lots in spending order, and lots to expire.
CREATE INDEX lots_open_idx ON lots (program_id, member_id, asset, expires_at) WHERE remaining > 0;
-- Pending lots of a member, found without reading its other lots.
CREATE INDEX lots_pending_idx ON lots (program_id, member_id, asset, available_at)
    WHERE remaining > 0;
CREATE INDEX lots_expiry_idx ON lots (program_id, expires_at)
    WHERE remaining > 0 AND expires_at IS NOT NULL;
CREATE INDEX lots_entry_idx ON lots (entry_id);

CREATE TABLE lot_consumptions (
    id INTEGER PRIMARY KEY,
    program_id INTEGER NOT NULL,
    entry_id INTEGER NOT NULL REFERENCES entries (id),
    lot_id INTEGER NOT NULL REFERENCES lots (id),
    amount INTEGER NOT NULL
);
CREATE INDEX lot_consumptions_entry_idx ON lot_consumptions (entry_id);
CREATE INDEX lot_consumptions_lot_idx ON lot_consumptions (lot_id);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    program_id INTEGER NOT NULL,
    ext_id TEXT NOT NULL,
    type TEXT NOT NULL,
    member_id INTEGER,
    amount INTEGER NOT NULL DEFAULT 0,
    currency TEXT,
    occurred_at INTEGER NOT NULL,
    original_id INTEGER,
    points INTEGER NOT NULL DEFAULT 0,
    credit INTEGER NOT NULL DEFAULT 0,
    returned_amount INTEGER NOT NULL DEFAULT 0,
    reversed_points INTEGER NOT NULL DEFAULT 0,
    reversed_credit INTEGER NOT NULL DEFAULT 0,
    returned_items TEXT,
    entry_id INTEGER,
    body TEXT,
    request_hash TEXT,
    result TEXT,
    created_at INTEGER NOT NULL,
    CONSTRAINT events_ext_id_key UNIQUE (program_id, ext_id)
);
CREATE INDEX events_member_idx ON events (program_id, member_id, id);

CREATE TABLE redemptions (
    id INTEGER PRIMARY KEY,
    program_id INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    asset TEXT NOT NULL,
    amount INTEGER NOT NULL,
    entry_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    cancel_entry_id INTEGER,
    created_at INTEGER NOT NULL,
    cancelled_at INTEGER
);

CREATE TABLE idempotency_keys (
    program_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    route TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (program_id, key)
);
