"""Every table, imported once so the metadata is whole (for Alembic and tests)."""

from agentmark_gateway.api_keys.changes import KeyChange
from agentmark_gateway.api_keys.models import ApiKey
from agentmark_gateway.apps.models import App
from agentmark_gateway.audit.models import AuditEvent
from agentmark_gateway.auth.models import LoginFailure, UserSession
from agentmark_gateway.datasets.models import Dataset, DatasetRow
from agentmark_gateway.db.base import Base
from agentmark_gateway.ratelimit.models import RateLimitCounter
from agentmark_gateway.scores.models import Score
from agentmark_gateway.templates.models import Template
from agentmark_gateway.traces.models import Span, Trace, TraceTag
from agentmark_gateway.usage.models import KeyUsage
from agentmark_gateway.users.models import OneTimeToken, User

__all__ = [
    "ApiKey",
    "App",
    "AuditEvent",
    "Base",
    "Dataset",
    "DatasetRow",
    "KeyChange",
    "KeyUsage",
    "LoginFailure",
    "OneTimeToken",
    "RateLimitCounter",
    "Score",
    "Span",
    "Template",
    "Trace",
    "TraceTag",
    "User",
    "UserSession",
]
