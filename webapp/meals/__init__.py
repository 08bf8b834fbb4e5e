"""meals resource."""
