"""The consent ledger: what each person agreed to, under which policy text, and when."""
