"""The tables. Import from here so every model is registered on ``Base.metadata``."""

from leadflow.models.activity import Activity
from leadflow.models.base import Base
from leadflow.models.consent import ConsentRecord
from leadflow.models.event import LeadEvent
from leadflow.models.job_attempt import JobAttempt
from leadflow.models.lead import Lead, LeadStatus
from leadflow.models.match import Account, LeadMatch, LeadMatchKey, MatchStatus
from leadflow.models.routing import Assignment, OwnerAbsence, RoutingTurn
from leadflow.models.submission import Submission
from leadflow.models.worker import WorkerHeartbeat

__all__ = [
    "Account",
    "Activity",
    "Assignment",
    "Base",
    "ConsentRecord",
    "JobAttempt",
    "Lead",
    "LeadEvent",
    "LeadMatch",
    "LeadMatchKey",
    "LeadStatus",
    "MatchStatus",
    "OwnerAbsence",
    "RoutingTurn",
    "Submission",
    "WorkerHeartbeat",
]
