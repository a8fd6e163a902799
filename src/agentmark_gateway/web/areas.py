"""The app's data pages beside its settings, in the order the navigation shows them."""

from __future__ import annotations

# (path under /apps/{id}/, label). Pages still to come take their place here.
AREAS = (
    ("traces", "Traces"),
    ("sessions", "Sessions"),
    ("experiments", "Experiments"),
    ("templates", "Templates"),
    ("datasets", "Datasets"),
    ("scores", "Scores"),
    ("metrics", "Metrics"),
)

Crumb = tuple[str, str | None]  # label, link (None: the page itself)
