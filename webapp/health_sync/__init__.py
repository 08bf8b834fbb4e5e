"""health sync resource."""
