"""Abuse limits, rate limiting, fault mapping and GraphQL-over-HTTP compliance."""
