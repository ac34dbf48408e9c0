"""Shipped data, not code: column maps (YAML), channel map, free-mail list."""
