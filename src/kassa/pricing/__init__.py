"""Pricing: USD rates from several sources, aggregated, stored with their quotes, and locked."""
