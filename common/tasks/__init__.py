"""Tasks: the product's core resource, with its list query, locking and caching rules."""
