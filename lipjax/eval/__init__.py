"""Evaluation: metrics, scoring beside the baselines, reports, the paper's tables."""
