"""Inviting a member, over the API and through the dashboard: one rule, one audit event."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from agentmark_gateway.audit.service import list_events
from tests.conftest import Admin, add_user
from tests.integration.test_web_flows import HTMX, web_sign_in


def invite_events(client: TestClient) -> list[dict[str, Any]]:
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def read() -> list[dict[str, Any]]:
        async with gateway.sessionmaker() as session:
            events, _ = await list_events(session, action="member.invite")
            return [
                {
                    "actor": e.actor,
                    "target_type": e.target_type,
                    "target_id": e.target_id,
                    "app_id": e.app_id,
                    "details": e.details,
                }
                for e in events
            ]

    return client.portal.call(read)  # type: ignore[union-attr]


def api_headers(client: TestClient, email: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {add_user(client, email, role)}"}


def member_emails(admin: Admin) -> list[str]:
    listed = admin.client.get("/v1/members", headers=admin.headers).json()["data"]
    return [m["email"] for m in listed]


def test_an_invitation_over_the_api_returns_a_link_and_is_audited(admin, client, settings):
    invited = client.post(
        "/v1/members", json={"email": "New@Example.com", "role": "write"}, headers=admin.headers
    )
    assert invited.status_code == 201, invited.text
    assert invited.headers["cache-control"] == "no-store"
    data = invited.json()["data"]
    assert data["email"] == "new@example.com" and data["role"] == "write" and data["pending"]
    assert data["invite_url"].startswith(f"{settings.base_url}/invite/")
    assert invite_events(client) == [
        {
            "actor": "owner@example.com",
            "target_type": "user",
            "target_id": data["id"],
            "app_id": None,
            "details": {"email": "new@example.com", "role": "write"},
        }
    ]


def test_an_admin_cannot_invite_an_owner_over_the_api(admin, client):
    headers = api_headers(client, "admin@example.com", "admin")
    refused = client.post(
        "/v1/members", json={"email": "boss@example.com", "role": "owner"}, headers=headers
    )
    assert refused.status_code == 403
    assert refused.json() == {
        "error": {"code": "forbidden", "message": "Only the owner can invite another owner"}
    }
    assert "boss@example.com" not in member_emails(admin)
    assert invite_events(client) == []


def test_an_owner_can_invite_an_owner_over_the_api(admin, client):
    invited = client.post(
        "/v1/members", json={"email": "co@example.com", "role": "owner"}, headers=admin.headers
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["data"]["role"] == "owner"


def test_an_unknown_role_or_a_taken_email_is_refused_over_the_api(admin, client):
    unknown = client.post(
        "/v1/members", json={"email": "x@example.com", "role": "boss"}, headers=admin.headers
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"] == {
        "code": "invalid_role",
        "message": "Unknown role 'boss': use owner, admin, write or read",
    }
    taken = client.post(
        "/v1/members", json={"email": "owner@example.com", "role": "read"}, headers=admin.headers
    )
    assert taken.status_code == 409
    assert taken.json()["error"] == {
        "code": "duplicate_user",
        "message": "A user with email owner@example.com exists",
    }
    assert invite_events(client) == []


def members_page_as(client: TestClient, admin: Admin, email: str, role: str) -> tuple[str, str]:
    """The members URL (the organization's, under no app), and a CSRF token of a
    dashboard session as ``email``."""
    admin.create_app()
    add_user(client, email, role)
    return "/settings/members", web_sign_in(client, email)


def test_an_invitation_in_the_dashboard_shows_a_link_and_is_audited(admin, client):
    members, token = members_page_as(client, admin, "admin@example.com", "admin")
    invited = client.post(
        members,
        data={"email": "New@Example.com", "role": "write", "csrf_token": token},
        headers=HTMX,
    )
    assert invited.status_code == 200, invited.text
    assert 'value="http://testserver/invite/' in invited.text
    [event] = invite_events(client)
    assert event["actor"] == "admin@example.com"
    assert event["target_type"] == "user" and event["app_id"] is None
    assert event["details"] == {"email": "new@example.com", "role": "write"}


def test_the_dashboard_shows_the_refusal_next_to_the_field_it_is_about(admin, client):
    members, token = members_page_as(client, admin, "admin@example.com", "admin")

    def invite(email: str, role: str) -> tuple[int, str]:
        answer = client.post(
            members, data={"email": email, "role": role, "csrf_token": token}, headers=HTMX
        )
        return answer.status_code, answer.text

    status, page = invite("boss@example.com", "owner")
    assert status == 403
    assert 'id="invite-role-error">Only the owner can invite another owner<' in page
    status, page = invite("x@example.com", "boss")
    assert status == 400
    assert 'id="invite-role-error">Unknown role &#39;boss&#39;: use owner' in page
    status, page = invite("owner@example.com", "read")
    assert status == 409
    assert 'id="invite-email-error">A user with email owner@example.com exists<' in page
    status, page = invite("not-an-email", "read")
    assert status == 400
    assert 'id="invite-email-error">A valid email address is required<' in page
    assert "boss@example.com" not in member_emails(admin)
    assert invite_events(client) == []


def test_member_changes_made_through_the_service_alone_are_audited(client):
    """As the CLI would: no router or page writes the records."""
    from agentmark_gateway.audit.service import CLI_ACTOR
    from agentmark_gateway.users import service as users

    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def change_then_remove() -> list[tuple[str, str, dict[str, Any]]]:
        async with gateway.sessionmaker() as session:
            member = await users.create_user(
                session, email="m@example.com", role="read", password=None
            )
            await session.commit()
            await users.change_role(session, actor=CLI_ACTOR, user=member, role="write")
            await users.remove_user(session, actor=CLI_ACTOR, user=member)
        async with gateway.sessionmaker() as session:
            events, _ = await list_events(session)
            return [(e.action, e.actor, e.details) for e in reversed(events)]

    assert client.portal.call(change_then_remove) == [  # type: ignore[union-attr]
        (
            "member.role_change",
            "cli",
            {"email": "m@example.com", "before": "read", "after": "write"},
        ),
        ("member.remove", "cli", {"email": "m@example.com", "role": "write"}),
    ]
