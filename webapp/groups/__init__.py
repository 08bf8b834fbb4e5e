"""Groups (clubs): membership with roles, open or approval-based joining, a discussion feed and a weekly board."""
