-- The job-board scraper's tables on MySQL/MariaDB (docs/packs/scraper.md). Timestamps are UTC
-- DATETIME; booleans TINYINT(1). Personal data (jobs.recruiter_name, recruiter_email,
-- description, url; site_executions.error_message; scrape_errors.message, url) is never exported.

CREATE TABLE IF NOT EXISTS scrape_sessions (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    session_id VARCHAR(255) NOT NULL UNIQUE,
    search_term VARCHAR(255) NOT NULL,
    location VARCHAR(255),
    sites VARCHAR(255) NOT NULL,
    max_jobs_per_site INT,
    max_concurrency INT,
    started_at DATETIME NOT NULL,
    completed_at DATETIME,
    duration_seconds DOUBLE,
    total_jobs_found INT NOT NULL DEFAULT 0,
    total_jobs_saved INT NOT NULL DEFAULT 0,
    duplicates_skipped INT NOT NULL DEFAULT 0,
    errors_count INT NOT NULL DEFAULT 0,
    status VARCHAR(255) NOT NULL
);

CREATE TABLE IF NOT EXISTS site_executions (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES scrape_sessions(id),
    site_name VARCHAR(255) NOT NULL,
    started_at DATETIME NOT NULL,
    completed_at DATETIME,
    duration_seconds DOUBLE,
    attempt_number INT NOT NULL DEFAULT 1,
    jobs_scraped INT NOT NULL DEFAULT 0,
    pages_processed INT NOT NULL DEFAULT 0,
    success TINYINT(1) NOT NULL DEFAULT 0,
    error_message TEXT,
    circuit_breaker_state VARCHAR(255),
    circuit_breaker_failures INT NOT NULL DEFAULT 0,
    avg_page_load_time DOUBLE,
    memory_usage_mb DOUBLE,
    cpu_usage_percent DOUBLE
);

CREATE TABLE IF NOT EXISTS session_metrics (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES scrape_sessions(id),
    timestamp DATETIME NOT NULL,
    jobs_per_minute DOUBLE,
    active_scrapers INT NOT NULL DEFAULT 0,
    queue_depth INT NOT NULL DEFAULT 0,
    memory_usage_mb DOUBLE,
    cpu_usage_percent DOUBLE,
    site_response_times VARCHAR(255),
    site_success_rates VARCHAR(255),
    error_counts VARCHAR(255)
);

CREATE TABLE IF NOT EXISTS system_health (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    timestamp DATETIME NOT NULL,
    total_memory_mb DOUBLE,
    available_memory_mb DOUBLE,
    cpu_usage_percent DOUBLE,
    disk_usage_percent DOUBLE,
    active_sessions INT NOT NULL DEFAULT 0,
    total_scrapers_running INT NOT NULL DEFAULT 0,
    database_connections INT NOT NULL DEFAULT 0,
    fastapi_healthy TINYINT(1) NOT NULL DEFAULT 1,
    database_healthy TINYINT(1) NOT NULL DEFAULT 1,
    orchestrator_healthy TINYINT(1) NOT NULL DEFAULT 1,
    indeed_accessible TINYINT(1),
    linkedin_accessible TINYINT(1),
    glassdoor_accessible TINYINT(1)
);

CREATE TABLE IF NOT EXISTS scrape_errors (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES scrape_sessions(id),
    site_name VARCHAR(255) NOT NULL,
    error_type VARCHAR(255) NOT NULL,
    message TEXT,
    url TEXT,
    created_at DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES scrape_sessions(id),
    site_name VARCHAR(255) NOT NULL,
    external_id VARCHAR(255) NOT NULL,
    title VARCHAR(255) NOT NULL,
    company VARCHAR(255),
    location VARCHAR(255),
    salary_min DOUBLE,
    salary_max DOUBLE,
    recruiter_name VARCHAR(255),
    recruiter_email VARCHAR(255),
    description TEXT,
    url TEXT,
    scraped_at DATETIME NOT NULL
);

CREATE INDEX site_executions_site_name ON site_executions (site_name);
CREATE INDEX site_executions_completed_at ON site_executions (completed_at);
CREATE INDEX session_metrics_session_id ON session_metrics (session_id);
CREATE INDEX scrape_sessions_status ON scrape_sessions (status);
CREATE INDEX scrape_errors_created_at ON scrape_errors (created_at);
CREATE INDEX jobs_scraped_at ON jobs (scraped_at);
