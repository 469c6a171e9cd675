"""Benchmark reproductions: read the user's data path, run the model, write tables and plots."""
