-- The roofing CRM's tables on SQLite (docs/packs/crm.md). Timestamps are UTC TEXT, YYYY-MM-DD HH:MM:SS.
-- Personal data (names, emails, phones, street addresses, notes) is never exported.

CREATE TABLE IF NOT EXISTS team_members (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS leads (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT,
    phone TEXT NOT NULL,
    street_address TEXT,
    city TEXT NOT NULL,
    market_segment TEXT NOT NULL,
    source TEXT NOT NULL,
    temperature TEXT NOT NULL,
    status TEXT NOT NULL,
    lead_score INTEGER NOT NULL,
    assigned_to INTEGER REFERENCES team_members(id),
    notes TEXT,
    created_at TEXT NOT NULL,
    first_contacted_at TEXT,
    converted_at TEXT
);

CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL REFERENCES leads(id),
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT,
    phone TEXT NOT NULL,
    city TEXT NOT NULL,
    market_segment TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    lead_id INTEGER NOT NULL REFERENCES leads(id),
    source TEXT NOT NULL,
    market_segment TEXT NOT NULL,
    status TEXT NOT NULL,
    contract_value_usd REAL NOT NULL,
    signed_at TEXT NOT NULL,
    completed_at TEXT
);

CREATE TABLE IF NOT EXISTS marketing_spend (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    spent_on TEXT NOT NULL,
    amount_usd REAL NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS leads_created_at ON leads (created_at);
CREATE INDEX IF NOT EXISTS leads_status ON leads (status);
CREATE INDEX IF NOT EXISTS projects_signed_at ON projects (signed_at);
CREATE INDEX IF NOT EXISTS marketing_spend_spent_on ON marketing_spend (spent_on);
