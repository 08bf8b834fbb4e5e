"""Per-athlete figures: totals and records (stats) and training zones."""
