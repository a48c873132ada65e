"""Use cases. The only code that opens a unit of work and commits it."""
