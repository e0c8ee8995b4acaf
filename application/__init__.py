"""Use cases: one per user action, plus the poll cycle. They depend on domain ports only."""
