"""foods resource."""
