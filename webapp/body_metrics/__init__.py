"""body metrics resource."""
