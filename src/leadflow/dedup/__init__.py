"""The ``lead.dedup`` step: one person, one lead."""
