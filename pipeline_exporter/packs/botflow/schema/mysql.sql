-- BotFlow's tables on MySQL/MariaDB (docs/packs/botflow.md). Timestamps are UTC DATETIME.
-- Personal data (customer_phone, customer_name, sender_phone, content, error_message) is never exported.

CREATE TABLE IF NOT EXISTS organizations (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS bots (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    name VARCHAR(255) NOT NULL,
    status VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS conversations (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    bot_id BIGINT NOT NULL REFERENCES bots(id),
    customer_phone VARCHAR(255) NOT NULL,
    customer_name VARCHAR(255),
    status VARCHAR(255) NOT NULL,
    started_at DATETIME NOT NULL,
    last_message_at DATETIME NOT NULL,
    ended_at DATETIME
);

CREATE TABLE IF NOT EXISTS messages (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    bot_id BIGINT NOT NULL REFERENCES bots(id),
    direction VARCHAR(255) NOT NULL,
    sender_phone VARCHAR(255) NOT NULL,
    content VARCHAR(255) NOT NULL,
    status VARCHAR(255) NOT NULL,
    response_time_ms INT,
    created_at DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS conversation_metrics (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    bot_id BIGINT NOT NULL REFERENCES bots(id),
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    outcome VARCHAR(255) NOT NULL,
    message_count INT NOT NULL,
    knowledge_base_hits INT NOT NULL,
    tokens_used INT NOT NULL,
    estimated_cost_usd DECIMAL(12,6) NOT NULL,
    duration_seconds INT NOT NULL,
    satisfaction_score INT,
    created_at DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS bot_performance_metrics (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    bot_id BIGINT NOT NULL REFERENCES bots(id),
    day VARCHAR(255) NOT NULL,
    total_conversations INT NOT NULL,
    total_messages INT NOT NULL,
    p50_response_ms INT,
    p95_response_ms INT,
    p99_response_ms INT,
    success_rate DOUBLE,
    error_rate DOUBLE,
    fallback_rate DOUBLE,
    handoff_rate DOUBLE,
    total_cost_usd DECIMAL(12,6) NOT NULL,
    created_at DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS usage_analytics (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    hour_start DATETIME NOT NULL,
    messages_sent INT NOT NULL,
    messages_received INT NOT NULL,
    conversations_started INT NOT NULL,
    active_users INT NOT NULL,
    active_bots INT NOT NULL,
    api_calls INT NOT NULL,
    cost_usd DECIMAL(12,6) NOT NULL,
    created_at DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS aggregation_jobs (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    queue VARCHAR(255) NOT NULL,
    status VARCHAR(255) NOT NULL,
    attempts INT NOT NULL,
    error_message VARCHAR(255),
    created_at DATETIME NOT NULL,
    finished_at DATETIME
);

CREATE INDEX messages_created_at ON messages (created_at);
CREATE INDEX messages_conversation_id ON messages (conversation_id);
CREATE INDEX conversations_status ON conversations (status);
CREATE INDEX conversation_metrics_created_at ON conversation_metrics (created_at);
CREATE INDEX aggregation_jobs_status ON aggregation_jobs (status);
