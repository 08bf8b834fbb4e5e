"""Insights: training load, the fitness series, planned workouts, weekly summaries and insight cards."""
