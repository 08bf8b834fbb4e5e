"""Pipeline stages (filled in by the ingest chain)."""
