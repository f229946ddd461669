"""Datasets: the five TextGCN benchmarks by name, or a user's own JSONL/CSV files."""
