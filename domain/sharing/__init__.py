"""Public share links of activities (``/a/<token>``): creating and revoking them, and what the page shows."""
