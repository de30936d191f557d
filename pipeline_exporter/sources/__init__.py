"""Sources beside the SQL packs: report files, the database's own health, and the host."""
