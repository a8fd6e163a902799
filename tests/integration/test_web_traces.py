"""The dashboard's data pages over plain HTTP: traces (filters, keyset pages, the poll),
a trace's waterfall and span panel, sessions, templates, and the read role."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmark_gateway.auth import service as auth
from agentmark_gateway.users import service as users
from agentmark_gateway.web import trace_pages
from tests.conftest import Admin
from tests.fixtures.otlp.payloads import at, llm_trace, post
from tests.integration.test_web_security import PASSWORD

HTMX = {"HX-Request": "true"}


def web_session(client: TestClient, email: str, role: str | None = None) -> None:
    """A dashboard session cookie for ``email`` (made first when ``role`` is given), as
    signing in gives; these pages only read, so no form and no CSRF token are needed."""
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def start() -> str:
        async with gateway.sessionmaker() as session:
            if role is not None:
                await users.create_user(session, email=email, role=role, password=PASSWORD)
                await session.commit()
            user = await users.get_by_email(session, email)
            assert user is not None
            token = await auth.start_session(session, user=user, ttl_seconds=3600)
            await session.commit()
            return token

    client.cookies.clear()
    client.cookies.set("agentmark_session", client.portal.call(start))  # type: ignore[union-attr]


@pytest.fixture
def shop(admin: Admin, client: TestClient, key_headers: Any) -> dict[str, Any]:
    """An app with traces sent through the ingest API, and its owner signed in to the dashboard."""
    app_id = admin.create_app("shop")
    key = admin.create_key(app_id, role="full-access")
    headers = key_headers(key)
    ids: dict[str, str] = {}
    ids["old"], spans = llm_trace(
        name="answer",
        start_ns=at("2025-03-01T10:00:00Z"),
        user_id="u-1",
        session_id="s-1",
        session_name="Onboarding chat",
    )
    post(client, headers, spans)
    ids["failed"], spans = llm_trace(
        name="refund", start_ns=at("2025-03-02T10:00:00Z"), user_id="u-2", error=True
    )
    post(client, headers, spans)
    ids["new"], spans = llm_trace(
        name="answer", start_ns=at("2025-03-03T10:00:00Z"), user_id="u-1", session_id="s-1"
    )
    post(client, headers, spans)
    scored = client.post(
        "/v1/scores",
        json={"resource_id": ids["new"], "name": "accuracy", "score": 0.9, "label": "good"},
        headers=headers,
    )
    assert scored.status_code in (200, 201), scored.text
    web_session(client, "owner@example.com")
    return {"app_id": app_id, "ids": ids, "headers": headers, "base": f"/apps/{app_id}"}


def _trace_ids(html: str) -> list[str]:
    return re.findall(r'href="/apps/[^/"]+/traces/([0-9a-f]{32})"', html)


FILTERS = [
    ("status=ERROR", ["failed"]),
    ("name=answer", ["new", "old"]),
    ("user=u-1", ["new", "old"]),
    ("session=s-1", ["new", "old"]),
    ("scored=yes", ["new"]),
    ("scored=no", ["failed", "old"]),
    ("range=24h", []),
    ("name=answer&user=u-1&scored=no", ["old"]),
]


def test_the_list_shows_traces_newest_first_and_each_filter_narrows_it(client, shop):
    page = client.get(f"{shop['base']}/traces")
    assert page.status_code == 200
    ids = shop["ids"]
    assert _trace_ids(page.text) == [ids["new"], ids["failed"], ids["old"]]
    assert "refund" in page.text and "ERROR" in page.text and "u-2" in page.text
    assert '/sessions/s-1"' in page.text
    assert page.text.count('data-label="Tokens" class="num">150<') == 3
    for query, expected in FILTERS:
        filtered = client.get(f"{shop['base']}/traces?{query}")
        assert filtered.status_code == 200, query
        assert _trace_ids(filtered.text) == [ids[label] for label in expected], query
    assert "No traces match" in client.get(f"{shop['base']}/traces?range=1h").text
    assert client.get(f"{shop['base']}/traces?status=BAD").status_code == 400


def test_pages_follow_the_keyset_cursor_and_the_open_list_polls(client, shop, monkeypatch):
    monkeypatch.setattr(trace_pages, "PAGE_SIZE", 2)
    first = client.get(f"{shop['base']}/traces")
    assert _trace_ids(first.text) == [shop["ids"]["new"], shop["ids"]["failed"]]
    older = re.search(r'href="([^"]+before=[^"]+)">Older', first.text)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert _trace_ids(second.text) == [shop["ids"]["old"]]
    assert ">Older<" not in second.text and ">Newest<" in second.text
    assert client.get(f"{shop['base']}/traces?before=junk").status_code == 400
    assert "hx-trigger" not in second.text  # only the newest page refreshes itself

    poll = re.search(r'hx-get="([^"]+/traces/rows[^"]*)"', first.text)
    assert poll
    url = poll.group(1).replace("&amp;", "&")
    assert client.get(url, headers=HTMX).status_code == 204
    arrived, spans = llm_trace(name="late")
    post(client, shop["headers"], spans)
    fresh = client.get(url, headers=HTMX)
    assert fresh.status_code == 200
    assert _trace_ids(fresh.text)[0] == arrived


def test_a_new_app_shows_the_three_settings_an_sdk_needs(client, admin):
    empty = admin.create_app("fresh")
    web_session(client, "owner@example.com")
    page = client.get(f"/apps/{empty}/traces")
    assert page.status_code == 200
    assert "AGENTMARK_API_KEY=" in page.text
    assert f"AGENTMARK_APP_ID={empty}" in page.text
    assert "AGENTMARK_BASE_URL=http://testserver" in page.text
    assert "sk_agentmark_" not in page.text


def test_the_trace_page_draws_the_waterfall_scores_and_a_span_s_details(client, shop):
    trace_id = shop["ids"]["old"]
    page = client.get(f"{shop['base']}/traces/{trace_id}")
    assert page.status_code == 200
    assert page.text.count('<svg class="bar') == 2
    assert 'class="span-name depth-1"' in page.text  # the model call under its root
    assert f'href="/apps/{shop["app_id"]}/sessions/s-1"' in page.text
    assert "agentmark.trace_name" in page.text  # the root span's attributes, shown first
    assert "No scores on this trace" in page.text

    chat = re.search(r'href="\?span=([0-9a-f]{16})"[^>]*>chat<', page.text)
    assert chat
    link = f"{shop['base']}/traces/{trace_id}?span={chat.group(1)}"
    # A waterfall link followed by htmx: the span's panel alone.
    panel = client.get(link, headers={**HTMX, "HX-Target": "span-detail"})
    assert panel.status_code == 200
    assert "<html" not in panel.text
    assert "gpt-4o-mini" in panel.text and "hello" in panel.text
    assert "&#34;prompt&#34;: &#34;hi&#34;" in panel.text  # the input, pretty-printed JSON
    assert "150" in panel.text
    # Without htmx the same link opens the trace page on that span.
    whole = client.get(link)
    assert "<html" in whole.text and "gpt-4o-mini" in whole.text
    assert f'href="?span={chat.group(1)}" data-span-link aria-current="true"' in whole.text

    scored = client.get(f"{shop['base']}/traces/{shop['ids']['new']}")
    assert "accuracy" in scored.text and "0.9" in scored.text and "good" in scored.text


def test_a_long_waterfall_opens_with_its_first_rows_and_loads_the_rest(client, shop, monkeypatch):
    monkeypatch.setattr(trace_pages, "WATERFALL_CHUNK", 1)
    trace_id = shop["ids"]["old"]
    page = client.get(f"{shop['base']}/traces/{trace_id}")
    assert page.text.count("data-span-link") == 1
    more = re.search(r'<tr class="more-rows" hx-get="([^"]+)"', page.text)
    assert more
    rest = client.get(more.group(1).replace("&amp;", "&"), headers=HTMX)
    assert rest.status_code == 200
    assert rest.text.count("data-span-link") == 1 and ">chat<" in rest.text
    assert "more-rows" not in rest.text  # two spans: nothing left to load
    # Without script, the link in the same row shows every span at once.
    every = re.search(r'<a href="([^"]+all=1)"', page.text)
    assert every
    assert client.get(every.group(1).replace("&amp;", "&")).text.count("data-span-link") == 2


def test_sessions_list_and_a_session_s_traces_in_order(client, shop):
    sessions = client.get(f"{shop['base']}/sessions")
    assert sessions.status_code == 200
    assert "Onboarding chat" in sessions.text
    one = client.get(f"{shop['base']}/sessions/s-1")
    assert one.status_code == 200
    assert _trace_ids(one.text) == [shop["ids"]["old"], shop["ids"]["new"]]
    assert client.get(f"{shop['base']}/sessions/no-such").status_code == 404
    assert "No sessions match" in client.get(f"{shop['base']}/sessions?search=zzz").text


TEMPLATE = {
    "type": "root",
    "children": [
        {"type": "yaml", "value": "name: greet\ntext_config:\n  model_name: gpt-4o"},
        {
            "type": "mdxJsxFlowElement",
            "name": "User",
            "attributes": [],
            "children": [
                {
                    "type": "paragraph",
                    "children": [
                        {"type": "text", "value": "Say hello to "},
                        {"type": "mdxTextExpression", "value": "props.name"},
                    ],
                }
            ],
        },
    ],
}


def test_templates_show_front_matter_and_readable_source(client, shop):
    put = client.put(
        "/v1/templates", params={"path": "greet.prompt.mdx"}, json=TEMPLATE, headers=shop["headers"]
    )
    assert put.status_code in (200, 201), put.text
    listing = client.get(f"{shop['base']}/templates")
    assert listing.status_code == 200
    assert "greet.prompt.mdx" in listing.text and ">greet<" in listing.text
    page = client.get(f"{shop['base']}/templates/greet.prompt.mdx")
    assert page.status_code == 200
    assert "model_name: gpt-4o" in page.text
    assert "&lt;User&gt;\nSay hello to {props.name}\n&lt;/User&gt;" in page.text
    assert client.get(f"{shop['base']}/templates/nope.prompt.mdx").status_code == 404


def test_a_read_member_sees_every_page(client, shop):
    web_session(client, "reader@example.com", role="read")
    base, trace_id = shop["base"], shop["ids"]["old"]
    for path in (
        "/traces",
        f"/traces/{trace_id}",
        "/sessions",
        "/sessions/s-1",
        "/templates",
    ):
        page = client.get(base + path)
        assert page.status_code == 200, path
        assert (
            'method="post"' not in page.text.replace('action="/logout"', "").split("</header>")[1]
        ), path


def test_pages_need_a_signed_in_user(client):
    for path in ("traces", "traces/" + "0" * 32, "sessions", "sessions/s-1", "templates"):
        response = client.get(f"/apps/app_x/{path}", follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login"), path
