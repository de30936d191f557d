"""The crm pack's folder: its pack.yaml, schema, demo data and declarations."""
