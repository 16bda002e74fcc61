"""Platform data: record schemas, the synthetic generator, validated ingestion."""
