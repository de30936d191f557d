-- The roofing CRM's tables on MySQL/MariaDB (docs/packs/crm.md). Timestamps are UTC DATETIME.
-- Personal data (names, emails, phones, street addresses, notes) is never exported.

CREATE TABLE IF NOT EXISTS team_members (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    email VARCHAR(255) NOT NULL,
    phone VARCHAR(255),
    role VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS leads (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    first_name VARCHAR(255) NOT NULL,
    last_name VARCHAR(255) NOT NULL,
    email VARCHAR(255),
    phone VARCHAR(255) NOT NULL,
    street_address VARCHAR(255),
    city VARCHAR(255) NOT NULL,
    market_segment VARCHAR(255) NOT NULL,
    source VARCHAR(255) NOT NULL,
    temperature VARCHAR(255) NOT NULL,
    status VARCHAR(255) NOT NULL,
    lead_score INT NOT NULL,
    assigned_to BIGINT REFERENCES team_members(id),
    notes VARCHAR(255),
    created_at DATETIME NOT NULL,
    first_contacted_at DATETIME,
    converted_at DATETIME
);

CREATE TABLE IF NOT EXISTS customers (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    lead_id BIGINT NOT NULL REFERENCES leads(id),
    first_name VARCHAR(255) NOT NULL,
    last_name VARCHAR(255) NOT NULL,
    email VARCHAR(255),
    phone VARCHAR(255) NOT NULL,
    city VARCHAR(255) NOT NULL,
    market_segment VARCHAR(255) NOT NULL,
    created_at DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS projects (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers(id),
    lead_id BIGINT NOT NULL REFERENCES leads(id),
    source VARCHAR(255) NOT NULL,
    market_segment VARCHAR(255) NOT NULL,
    status VARCHAR(255) NOT NULL,
    contract_value_usd DECIMAL(12,2) NOT NULL,
    signed_at DATETIME NOT NULL,
    completed_at DATETIME
);

CREATE TABLE IF NOT EXISTS marketing_spend (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    source VARCHAR(255) NOT NULL,
    spent_on DATETIME NOT NULL,
    amount_usd DECIMAL(12,2) NOT NULL,
    created_at DATETIME NOT NULL
);

CREATE INDEX leads_created_at ON leads (created_at);
CREATE INDEX leads_status ON leads (status);
CREATE INDEX projects_signed_at ON projects (signed_at);
CREATE INDEX marketing_spend_spent_on ON marketing_spend (spent_on);
