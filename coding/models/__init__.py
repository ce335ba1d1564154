"""All models of the coding app, in the order of the data flow."""

from .audit import AuditEvent
from .codebook import Code, Codebook, CodebookVersion, CodeMapping, ProjectUpgrade
from .codings import (
    CodeApplication,
    Coding,
    CodingEvent,
    ExampleProposal,
    GoldEvent,
    GoldLabel,
    Quote,
)
from .corpus import ForumSource, ImportRun, Post, Tag, Thread
from .hub import HubModel, ModelTypeRule
from .open_codes import (
    BoardCard,
    BoardEvent,
    BoardGroup,
    OpenCode,
    OpenCodeMapping,
    OpenCodeQuote,
    ProvisionalCode,
)
from .projects import (
    Assignment,
    Membership,
    Project,
    ProjectQuerySet,
    QueueCount,
    Role,
    Round,
    Unit,
)
from .sessions import Session

__all__ = [
    "Assignment",
    "AuditEvent",
    "BoardCard",
    "BoardEvent",
    "BoardGroup",
    "Code",
    "CodeApplication",
    "CodeMapping",
    "Codebook",
    "CodebookVersion",
    "Coding",
    "CodingEvent",
    "ExampleProposal",
    "ForumSource",
    "GoldEvent",
    "GoldLabel",
    "HubModel",
    "ImportRun",
    "Membership",
    "ModelTypeRule",
    "OpenCode",
    "OpenCodeMapping",
    "OpenCodeQuote",
    "Post",
    "Project",
    "ProjectQuerySet",
    "ProjectUpgrade",
    "ProvisionalCode",
    "QueueCount",
    "Quote",
    "Role",
    "Round",
    "Session",
    "Tag",
    "Thread",
    "Unit",
]
