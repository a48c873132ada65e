"""Persistence: SQLModel tables, the engine, the unit of work and migrations."""
