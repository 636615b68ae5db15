"""Saved queries: the built-in library (YAML + an equivalent Python implementation per query),
team queries stored as SavedQuery nodes, and the runner that executes either on any store."""
