"""sleep resource."""
