-- The 333 Method pipeline tables on MySQL 8 / MariaDB 10.5+ as the contract (pipeline-db.md) defines them.
-- Timestamps are DATETIME holding UTC. Indexes are declared inline because MySQL has no
-- CREATE INDEX IF NOT EXISTS; indexed text columns are VARCHAR because TEXT needs a prefix.
-- No CHECK constraints on status-like columns: their value sets are open.
-- utf8mb4_bin: label values compare exactly as on SQLite and PostgreSQL ('Email' is not 'email',
-- 'found ' is not 'found'); MySQL's default collation would merge them.

CREATE TABLE IF NOT EXISTS keywords (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    keyword    VARCHAR(255) NOT NULL,
    location   VARCHAR(255),
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY uq_keywords_keyword (keyword)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sites (
    id                BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    keyword_id        BIGINT,
    domain            VARCHAR(255) NOT NULL,
    status            VARCHAR(64) NOT NULL DEFAULT 'found',
    error_type        VARCHAR(64),
    error_message     TEXT,
    score             DOUBLE,
    status_changed_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_at        DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at        DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_sites_status (status, status_changed_at),
    KEY idx_sites_error_type (error_type),
    KEY idx_sites_domain (domain),
    CONSTRAINT fk_sites_keyword FOREIGN KEY (keyword_id) REFERENCES keywords(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS site_status_history (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id     BIGINT NOT NULL,
    from_status VARCHAR(64),
    to_status   VARCHAR(64) NOT NULL,
    changed_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_site_status_history_site (site_id, changed_at),
    KEY idx_site_status_history_changed (changed_at),
    CONSTRAINT fk_site_status_history_site FOREIGN KEY (site_id) REFERENCES sites(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS outreaches (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id      BIGINT NOT NULL,
    channel      VARCHAR(32) NOT NULL,
    contact      VARCHAR(255) NOT NULL,
    status       VARCHAR(32) NOT NULL DEFAULT 'queued',
    created_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    sent_at      DATETIME NULL,
    delivered_at DATETIME NULL,
    replied_at   DATETIME NULL,
    KEY idx_outreaches_channel_status (channel, status),
    KEY idx_outreaches_site (site_id),
    CONSTRAINT fk_outreaches_site FOREIGN KEY (site_id) REFERENCES sites(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sales (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id     BIGINT NOT NULL,
    outreach_id BIGINT,
    channel     VARCHAR(32) NOT NULL,
    amount_usd  DOUBLE NOT NULL,
    sold_at     DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_sales_site (site_id),
    KEY idx_sales_outreach (outreach_id),
    CONSTRAINT fk_sales_site FOREIGN KEY (site_id) REFERENCES sites(id),
    CONSTRAINT fk_sales_outreach FOREIGN KEY (outreach_id) REFERENCES outreaches(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS conversations (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id     BIGINT NOT NULL,
    outreach_id BIGINT,
    channel     VARCHAR(32) NOT NULL,
    direction   VARCHAR(16) NOT NULL,
    sentiment   VARCHAR(32),
    is_read     INT NOT NULL DEFAULT 0,
    sender      VARCHAR(255),
    body        TEXT,
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_conversations_site (site_id),
    KEY idx_conversations_unread (direction, is_read),
    CONSTRAINT fk_conversations_site FOREIGN KEY (site_id) REFERENCES sites(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS opt_outs (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    channel    VARCHAR(32) NOT NULL,
    contact    VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_opt_outs_contact (channel, contact)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS llm_usage (
    id                BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id           BIGINT,
    stage             VARCHAR(64) NOT NULL,
    provider          VARCHAR(64) NOT NULL,
    model             VARCHAR(128) NOT NULL,
    prompt_tokens     INT NOT NULL DEFAULT 0,
    completion_tokens INT NOT NULL DEFAULT 0,
    cost_usd          DOUBLE NOT NULL DEFAULT 0,
    created_at        DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_llm_usage_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS cron_jobs (
    name             VARCHAR(128) NOT NULL PRIMARY KEY,
    description      TEXT,
    interval_seconds INT NOT NULL,
    enabled          INT NOT NULL DEFAULT 1
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS cron_job_logs (
    id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_name      VARCHAR(128) NOT NULL,
    started_at    DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at   DATETIME NULL,
    status        VARCHAR(32) NOT NULL DEFAULT 'running',
    duration_ms   BIGINT,
    error_message TEXT,
    KEY idx_cron_job_logs_job (job_name, started_at),
    CONSTRAINT fk_cron_job_logs_job FOREIGN KEY (job_name) REFERENCES cron_jobs(name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS http_errors (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    source      VARCHAR(64) NOT NULL,
    stage       VARCHAR(64),
    status_code INT NOT NULL,
    url         TEXT,
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_http_errors_created (created_at),
    KEY idx_http_errors_source (source, status_code, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
