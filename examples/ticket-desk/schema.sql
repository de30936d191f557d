-- A small help desk: customers open tickets, agents and customers reply, agents resolve them.
-- SQLite DDL; timestamps are ISO-8601 text in UTC ('2026-12-07T20:15:00Z').
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    channel TEXT NOT NULL,            -- email, chat, phone
    priority TEXT NOT NULL,           -- low, normal, high, urgent
    status TEXT NOT NULL,             -- open, pending, resolved
    subject TEXT,                     -- free text: never selected by the pack
    first_response_at TEXT,
    resolved_at TEXT
);
CREATE INDEX IF NOT EXISTS tickets_created_at ON tickets (created_at);

CREATE TABLE IF NOT EXISTS replies (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    created_at TEXT NOT NULL,
    author TEXT NOT NULL,             -- agent, customer
    body TEXT                         -- free text: never selected by the pack
);
