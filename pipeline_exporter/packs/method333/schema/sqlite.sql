-- The 333 Method pipeline tables on SQLite as the contract (pipeline-db.md) defines them.
-- Timestamps are UTC TEXT in datetime('now') form, YYYY-MM-DD HH:MM:SS.
-- No CHECK constraints on status-like columns: their value sets are open.

CREATE TABLE IF NOT EXISTS keywords (
    id         INTEGER PRIMARY KEY,
    keyword    TEXT NOT NULL UNIQUE,
    location   TEXT,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS sites (
    id                INTEGER PRIMARY KEY,
    keyword_id        INTEGER REFERENCES keywords(id),
    domain            TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'found',
    error_type        TEXT,
    error_message     TEXT,
    score             REAL,
    status_changed_at TEXT NOT NULL DEFAULT (datetime('now')),
    created_at        TEXT NOT NULL DEFAULT (datetime('now')),
    updated_at        TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS site_status_history (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    changed_at  TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS outreaches (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites(id),
    channel      TEXT NOT NULL,
    contact      TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'queued',
    created_at   TEXT NOT NULL DEFAULT (datetime('now')),
    sent_at      TEXT,
    delivered_at TEXT,
    replied_at   TEXT
);

CREATE TABLE IF NOT EXISTS sales (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    outreach_id INTEGER REFERENCES outreaches(id),
    channel     TEXT NOT NULL,
    amount_usd  REAL NOT NULL,
    sold_at     TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS conversations (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites(id),
    outreach_id INTEGER,
    channel     TEXT NOT NULL,
    direction   TEXT NOT NULL,
    sentiment   TEXT,
    is_read     INTEGER NOT NULL DEFAULT 0,
    sender      TEXT,
    body        TEXT,
    created_at  TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS opt_outs (
    id         INTEGER PRIMARY KEY,
    channel    TEXT NOT NULL,
    contact    TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS llm_usage (
    id                INTEGER PRIMARY KEY,
    site_id           INTEGER,
    stage             TEXT NOT NULL,
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS cron_jobs (
    name             TEXT PRIMARY KEY,
    description      TEXT,
    interval_seconds INTEGER NOT NULL,
    enabled          INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS cron_job_logs (
    id            INTEGER PRIMARY KEY,
    job_name      TEXT NOT NULL REFERENCES cron_jobs(name),
    started_at    TEXT NOT NULL DEFAULT (datetime('now')),
    finished_at   TEXT,
    status        TEXT NOT NULL DEFAULT 'running',
    duration_ms   INTEGER,
    error_message TEXT
);

CREATE TABLE IF NOT EXISTS http_errors (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    stage       TEXT,
    status_code INTEGER NOT NULL,
    url         TEXT,
    created_at  TEXT NOT NULL DEFAULT (datetime('now'))
);

-- Indexes the pipeline's own queries (and the exporter's) lean on.
CREATE INDEX IF NOT EXISTS idx_sites_status ON sites(status, status_changed_at);
CREATE INDEX IF NOT EXISTS idx_sites_error_type ON sites(error_type) WHERE error_type IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_sites_keyword ON sites(keyword_id);
CREATE INDEX IF NOT EXISTS idx_sites_domain ON sites(domain);
CREATE INDEX IF NOT EXISTS idx_site_status_history_site ON site_status_history(site_id, changed_at);
CREATE INDEX IF NOT EXISTS idx_site_status_history_changed ON site_status_history(changed_at);
CREATE INDEX IF NOT EXISTS idx_outreaches_channel_status ON outreaches(channel, status);
CREATE INDEX IF NOT EXISTS idx_outreaches_site ON outreaches(site_id);
CREATE INDEX IF NOT EXISTS idx_sales_site ON sales(site_id);
CREATE INDEX IF NOT EXISTS idx_sales_outreach ON sales(outreach_id);
CREATE INDEX IF NOT EXISTS idx_conversations_site ON conversations(site_id);
CREATE INDEX IF NOT EXISTS idx_conversations_unread ON conversations(direction, is_read);
CREATE INDEX IF NOT EXISTS idx_opt_outs_contact ON opt_outs(channel, contact);
CREATE INDEX IF NOT EXISTS idx_llm_usage_created ON llm_usage(created_at);
CREATE INDEX IF NOT EXISTS idx_cron_job_logs_job ON cron_job_logs(job_name, started_at);
CREATE INDEX IF NOT EXISTS idx_http_errors_created ON http_errors(created_at);
CREATE INDEX IF NOT EXISTS idx_http_errors_source ON http_errors(source, status_code, created_at);
