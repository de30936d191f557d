"""prometheus_client collectors: they read the snapshot and build fresh families on every scrape."""
