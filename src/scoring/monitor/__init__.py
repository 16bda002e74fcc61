"""Monitoring: the current feature snapshot and scores against the champion's training population."""
