"""Intake: a form submission becomes a stored lead and its first job, in one transaction."""
