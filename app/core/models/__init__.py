"""The tables. Every one of them comes from a migration in `migrations/versions/`.

Times are timezone-aware UTC in Python (`utcnow()`); SQLModel stores them so on both databases.
Importing this package registers every table on SQLModel.metadata.
"""

from app.core.models.base import table, utcnow
from app.core.models.flow import (
    OPEN_STATUSES,
    REPLAYABLE_STATUSES,
    Account,
    Attempt,
    Checkpoint,
    EventStatus,
    InboxEvent,
    LedgerEntry,
    ProductMapping,
    ReviewLink,
    ReviewRequest,
    WebhookRejection,
)
from app.core.models.operations import (
    ACTIVE_RUN_STATES,
    AdminSession,
    Alert,
    Lease,
    RateLimitBucket,
    Run,
    RunJournal,
    RunState,
    SignInFailure,
)

__all__ = [
    "ACTIVE_RUN_STATES",
    "OPEN_STATUSES",
    "REPLAYABLE_STATUSES",
    "Account",
    "AdminSession",
    "Alert",
    "Attempt",
    "Checkpoint",
    "EventStatus",
    "InboxEvent",
    "Lease",
    "LedgerEntry",
    "ProductMapping",
    "RateLimitBucket",
    "ReviewLink",
    "ReviewRequest",
    "Run",
    "RunJournal",
    "RunState",
    "SignInFailure",
    "WebhookRejection",
    "table",
    "utcnow",
]
