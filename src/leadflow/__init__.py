"""Leadflow: every web form submission becomes a lead that is validated,
deduplicated, consented, scored, routed, synced and followed up."""

__version__ = "0.1.0"
