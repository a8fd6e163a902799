import pytest

from agentmark_gateway.errors import InvalidPermissions
from agentmark_gateway.permissions.catalog import (
    PERMISSION_NAMES,
    PERMISSIONS,
    ROLES,
    groups,
    normalize_permissions,
    resolve_permissions,
    resolve_role,
)


def test_catalog_has_thirteen_permissions_in_eight_groups():
    # No experiment.write: runs are recorded as spans and scores.
    assert len(PERMISSIONS) == 13
    assert [g for g, _ in groups()] == [
        "Traces",
        "Templates",
        "Scores",
        "Spans",
        "Sessions",
        "Datasets",
        "Metrics",
        "Experiments",
    ]
    assert all(p.label and p.description for p in PERMISSIONS)


def test_presets_resolve_from_the_catalog():
    assert resolve_permissions("sdk", []) == {"trace.ingest", "template.read", "score.write"}
    assert resolve_permissions("read-only", []) == {
        "trace.read",
        "span.read",
        "session.read",
        "score.read",
        "dataset.read",
        "metrics.read",
    }
    assert resolve_permissions("full-access", []) == PERMISSION_NAMES
    assert set(ROLES) == {"sdk", "read-only", "full-access", "custom"}


def test_trace_write_is_an_alias_of_trace_ingest():
    assert normalize_permissions(["trace.write", "trace.ingest"]) == ["trace.ingest"]


def test_unknown_permission_is_named_in_the_error():
    with pytest.raises(InvalidPermissions) as caught:
        normalize_permissions(["trace.read", "trace.delete"])
    assert "trace.delete" in caught.value.message


def test_neither_role_nor_permissions_is_refused_with_the_dashboard_message():
    with pytest.raises(InvalidPermissions) as caught:
        resolve_role(None, [])
    assert caught.value.message == "Select a role or at least one permission"
    with pytest.raises(InvalidPermissions):
        resolve_role("custom", [])


def test_permissions_alone_mean_custom_and_presets_ignore_them():
    assert resolve_role(None, ["score.write", "trace.read"]) == (
        "custom",
        ["trace.read", "score.write"],
    )
    assert resolve_role("sdk", ["metrics.read"]) == ("sdk", [])
