-- Programs, their members and cards, and API keys. Every table is keyed by
-- program_id so the schema can be distributed by it later. Times are integer
-- milliseconds since the Unix epoch, UTC.

CREATE TABLE programs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    timezone TEXT NOT NULL,
    point_value_minor INTEGER NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- AUTOINCREMENT: a member id is never given out twice.
CREATE TABLE members (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id INTEGER NOT NULL REFERENCES programs (id),
    external_id TEXT,
    email TEXT,
    phone TEXT,
    name TEXT,
    birthdate TEXT,
    attributes TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT members_external_id_key UNIQUE (program_id, external_id),
    CONSTRAINT members_email_key UNIQUE (program_id, email),
    CONSTRAINT members_phone_key UNIQUE (program_id, phone)
);

CREATE TABLE member_cards (
    program_id INTEGER NOT NULL,
    card TEXT NOT NULL,
    member_id INTEGER NOT NULL REFERENCES members (id),
    created_at INTEGER NOT NULL,
    CONSTRAINT member_cards_pkey PRIMARY KEY (program_id, card)
);
CREATE INDEX member_cards_member_id_idx ON member_cards (program_id, member_id, created_at, card);

CREATE TABLE api_keys (
    id TEXT NOT NULL,
    program_id INTEGER NOT NULL REFERENCES programs (id),
    scope TEXT NOT NULL,
    name TEXT,
    hash BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id)
);
CREATE INDEX api_keys_program_id_idx ON api_keys (program_id, created_at);

INSERT INTO programs (id, name, currency, timezone, point_value_minor, settings, created_at,
                      updated_at)
VALUES (1, 'My loyalty program', 'USD', 'UTC', 1, '{}',
        CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER),
        CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER));
