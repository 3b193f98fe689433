"""All SQL of deduplication, by concern: keys and locks, candidates, pairs and merges.

The stage reads it as one module, ``from leadflow.dedup import repository``.
"""

from leadflow.dedup.repository.candidates import (
    APART,
    CANDIDATES,
    Candidate,
    Found,
    candidates,
    candidates_and_pairs,
    found_for,
    store_and_find,
)
from leadflow.dedup.repository.keys import holds_locks, lock_keys, lock_lead
from leadflow.dedup.repository.pairs import (
    duplicate_counts,
    matches_between,
    matches_of,
    merge_record,
    move_submissions,
    possible_pairs,
    record_match,
    save_match,
    survivors,
)

__all__ = [
    "APART",
    "CANDIDATES",
    "Candidate",
    "Found",
    "candidates",
    "candidates_and_pairs",
    "duplicate_counts",
    "found_for",
    "holds_locks",
    "lock_keys",
    "lock_lead",
    "matches_between",
    "matches_of",
    "merge_record",
    "move_submissions",
    "possible_pairs",
    "record_match",
    "save_match",
    "store_and_find",
    "survivors",
]
