"""Feature catalog and point-in-time feature snapshots."""
