-- The job-board scraper's tables on SQLite (docs/packs/scraper.md). Timestamps are UTC TEXT,
-- YYYY-MM-DD HH:MM:SS; booleans are 0/1. Personal data (jobs.recruiter_name, recruiter_email,
-- description, url; site_executions.error_message; scrape_errors.message, url) is never exported.

CREATE TABLE IF NOT EXISTS scrape_sessions (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE,
    search_term TEXT NOT NULL,
    location TEXT,
    sites TEXT NOT NULL,
    max_jobs_per_site INTEGER,
    max_concurrency INTEGER,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    duration_seconds REAL,
    total_jobs_found INTEGER NOT NULL DEFAULT 0,
    total_jobs_saved INTEGER NOT NULL DEFAULT 0,
    duplicates_skipped INTEGER NOT NULL DEFAULT 0,
    errors_count INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS site_executions (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES scrape_sessions(id),
    site_name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    duration_seconds REAL,
    attempt_number INTEGER NOT NULL DEFAULT 1,
    jobs_scraped INTEGER NOT NULL DEFAULT 0,
    pages_processed INTEGER NOT NULL DEFAULT 0,
    success INTEGER NOT NULL DEFAULT 0,
    error_message TEXT,
    circuit_breaker_state TEXT,
    circuit_breaker_failures INTEGER NOT NULL DEFAULT 0,
    avg_page_load_time REAL,
    memory_usage_mb REAL,
    cpu_usage_percent REAL
);

CREATE TABLE IF NOT EXISTS session_metrics (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES scrape_sessions(id),
    timestamp TEXT NOT NULL,
    jobs_per_minute REAL,
    active_scrapers INTEGER NOT NULL DEFAULT 0,
    queue_depth INTEGER NOT NULL DEFAULT 0,
    memory_usage_mb REAL,
    cpu_usage_percent REAL,
    site_response_times TEXT,
    site_success_rates TEXT,
    error_counts TEXT
);

CREATE TABLE IF NOT EXISTS system_health (
    id INTEGER PRIMARY KEY,
    timestamp TEXT NOT NULL,
    total_memory_mb REAL,
    available_memory_mb REAL,
    cpu_usage_percent REAL,
    disk_usage_percent REAL,
    active_sessions INTEGER NOT NULL DEFAULT 0,
    total_scrapers_running INTEGER NOT NULL DEFAULT 0,
    database_connections INTEGER NOT NULL DEFAULT 0,
    fastapi_healthy INTEGER NOT NULL DEFAULT 1,
    database_healthy INTEGER NOT NULL DEFAULT 1,
    orchestrator_healthy INTEGER NOT NULL DEFAULT 1,
    indeed_accessible INTEGER,
    linkedin_accessible INTEGER,
    glassdoor_accessible INTEGER
);

CREATE TABLE IF NOT EXISTS scrape_errors (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES scrape_sessions(id),
    site_name TEXT NOT NULL,
    error_type TEXT NOT NULL,
    message TEXT,
    url TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES scrape_sessions(id),
    site_name TEXT NOT NULL,
    external_id TEXT NOT NULL,
    title TEXT NOT NULL,
    company TEXT,
    location TEXT,
    salary_min REAL,
    salary_max REAL,
    recruiter_name TEXT,
    recruiter_email TEXT,
    description TEXT,
    url TEXT,
    scraped_at TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS site_executions_site_name ON site_executions (site_name);
CREATE INDEX IF NOT EXISTS site_executions_completed_at ON site_executions (completed_at);
CREATE INDEX IF NOT EXISTS session_metrics_session_id ON session_metrics (session_id);
CREATE INDEX IF NOT EXISTS scrape_sessions_status ON scrape_sessions (status);
CREATE INDEX IF NOT EXISTS scrape_errors_created_at ON scrape_errors (created_at);
CREATE INDEX IF NOT EXISTS jobs_scraped_at ON jobs (scraped_at);
