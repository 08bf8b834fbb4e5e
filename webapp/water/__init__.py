"""water resource."""
