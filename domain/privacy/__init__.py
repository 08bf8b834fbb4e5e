"""Privacy zones and hidden start/end: the settings, the hidden points, and the non-owner views kept in step."""
