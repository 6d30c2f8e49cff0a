"""Monitoring: what the models saw and said each week, drift and data quality, alerts."""
