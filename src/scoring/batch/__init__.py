"""Batch scoring: every enterprise of a snapshot graded by the champions, on DuckDB or on Spark."""
