-- BotFlow's tables on SQLite (docs/packs/botflow.md). Timestamps are UTC TEXT, YYYY-MM-DD HH:MM:SS.
-- Personal data (customer_phone, customer_name, sender_phone, content, error_message) is never exported.

CREATE TABLE IF NOT EXISTS organizations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS bots (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    bot_id INTEGER NOT NULL REFERENCES bots(id),
    customer_phone TEXT NOT NULL,
    customer_name TEXT,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_message_at TEXT NOT NULL,
    ended_at TEXT
);

CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    bot_id INTEGER NOT NULL REFERENCES bots(id),
    direction TEXT NOT NULL,
    sender_phone TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    response_time_ms INTEGER,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS conversation_metrics (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    bot_id INTEGER NOT NULL REFERENCES bots(id),
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    outcome TEXT NOT NULL,
    message_count INTEGER NOT NULL,
    knowledge_base_hits INTEGER NOT NULL,
    tokens_used INTEGER NOT NULL,
    estimated_cost_usd REAL NOT NULL,
    duration_seconds INTEGER NOT NULL,
    satisfaction_score INTEGER,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS bot_performance_metrics (
    id INTEGER PRIMARY KEY,
    bot_id INTEGER NOT NULL REFERENCES bots(id),
    day TEXT NOT NULL,
    total_conversations INTEGER NOT NULL,
    total_messages INTEGER NOT NULL,
    p50_response_ms INTEGER,
    p95_response_ms INTEGER,
    p99_response_ms INTEGER,
    success_rate REAL,
    error_rate REAL,
    fallback_rate REAL,
    handoff_rate REAL,
    total_cost_usd REAL NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS usage_analytics (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    hour_start TEXT NOT NULL,
    messages_sent INTEGER NOT NULL,
    messages_received INTEGER NOT NULL,
    conversations_started INTEGER NOT NULL,
    active_users INTEGER NOT NULL,
    active_bots INTEGER NOT NULL,
    api_calls INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS aggregation_jobs (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error_message TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);

CREATE INDEX IF NOT EXISTS messages_created_at ON messages (created_at);
CREATE INDEX IF NOT EXISTS messages_conversation_id ON messages (conversation_id);
CREATE INDEX IF NOT EXISTS conversations_status ON conversations (status);
CREATE INDEX IF NOT EXISTS conversation_metrics_created_at ON conversation_metrics (created_at);
CREATE INDEX IF NOT EXISTS aggregation_jobs_status ON aggregation_jobs (status);
