"""Data layer: raw sources -> normalized JSONL records + a content-addressed image store."""
