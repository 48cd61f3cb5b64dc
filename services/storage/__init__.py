"""SQL, one module per table (or per small group of tables that are always used together)."""
