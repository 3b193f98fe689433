"""The lead record: reading leads, and the timeline every step appends to."""
