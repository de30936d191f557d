"""The scraper pack's folder: its pack.yaml, schema, demo data and declarations."""
