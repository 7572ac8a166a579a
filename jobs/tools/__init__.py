"""Helper tools that are not pipeline stages (fake data sets and the like)."""
