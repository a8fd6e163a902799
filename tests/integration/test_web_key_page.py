"""The key page (Settings > API Keys > a key): usage over time, permissions used vs
granted, last client, history, and "Shrink to what's used" applied as an ordinary edit."""

from __future__ import annotations

import json
import re
from html import unescape

from fastapi.testclient import TestClient

from agentmark_gateway.app import create_app
from tests.conftest import add_user
from tests.integration.test_web_flows import HTMX, web_sign_in

TEMPLATE = {"path": "missing.prompt.mdx"}


def _page_url(key) -> str:
    return f"/apps/{key['app_id']}/settings/api-keys/{key['id']}"


def _use_for_templates(admin, key, key_headers, times: int) -> None:
    for _ in range(times):
        response = admin.client.get("/v1/templates", params=TEMPLATE, headers=key_headers(key))
        assert response.status_code == 404  # admitted: template.read was exercised


def _chart(html: str) -> dict:
    found = re.search(r"data-chart='([^']*)'", html)
    assert found, "the page carries no chart data"
    return json.loads(unescape(found.group(1)))


def _refused(html: str) -> int:
    found = re.search(r'data-refused="(\d+)"', html)
    assert found, html
    return int(found.group(1))


def test_the_key_page_shows_usage_by_outcome_permissions_last_client_and_history(
    admin, settings, key_headers
):
    key = admin.create_key(admin.create_app(), role="sdk", name="ci-sdk")
    # A request from another process first, from a known address and SDK.
    with TestClient(create_app(settings), client=("203.0.113.9", 4000)) as other:
        other.headers["User-Agent"] = "agentmark-sdk-python/1.2"
        assert other.get("/v1/traces", headers=key_headers(key)).status_code == 403
        other.portal.call(other.app.state.gateway.usage.flush)
    _use_for_templates(admin, key, key_headers, 2)
    web_sign_in(admin.client, "owner@example.com")

    page = admin.client.get(_page_url(key))

    assert page.status_code == 200, page.text
    html = page.text
    assert '<h2 id="key-heading" tabindex="-1">ci-sdk</h2>' in html
    # Counted requests, with the one made a moment ago (written before the read).
    assert "3 requests in the last 24 hours: Other 4xx 2, 403 1." in html
    chart = _chart(html)
    assert chart["bucket"] == "hour" and len(chart["x"]) in (24, 25)
    by_label = {series["label"]: sum(series["values"]) for series in chart["series"]}
    assert by_label == {"2xx": 0, "Other 4xx": 2, "401": 0, "403": 1, "429": 0, "5xx": 0}
    # The same numbers as a table, for screen readers.
    assert re.search(r'<table class="data-table usage-table">', html)
    # Permissions used vs granted: template.read twice; the rest of the SDK preset unused.
    row = re.search(r'<tr data-permission="template.read">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["2", "2"]
    assert re.search(r'<tr data-permission="trace.ingest" class="unused">', html)
    assert re.search(r'<tr data-refused="trace.read">.*?<td class="num">1</td>', html, re.S)
    # The last request came from this process, whose address is not an IP: the
    # address stays the last one known, the user agent is this one's.
    assert '<dd class="last-agent"><code>testclient</code>' in html
    assert '<dd class="last-address"><code>203.0.113.9</code>' in html
    # Last used is live: not "Never", though the batch writer has not run yet.
    assert re.search(r'<dd class="last-used"><time datetime="[^"]+"', html)
    assert 'data-action="api_key.create"' in html
    # An owner gets the actions: the list's dialogs, and the shrink.
    for action in ("edit", "roll", "delete", "shrink"):
        assert f'hx-get="{_page_url(key)}/{action}"' in html
    # The list's name of the key leads here.
    listed = admin.client.get(f"/apps/{key['app_id']}/settings/api-keys").text
    assert f'<a href="{_page_url(key)}">ci-sdk</a>' in listed


def test_the_range_selector_reads_minutes_hours_or_days(admin, key_headers):
    key = admin.create_key(admin.create_app(), role="sdk")
    _use_for_templates(admin, key, key_headers, 1)
    web_sign_in(admin.client, "owner@example.com")
    month = admin.client.get(_page_url(key), params={"range": "30d"}).text
    assert _chart(month)["bucket"] == "day"
    assert 'id="range-30d" href=' in month and 'aria-current="true">30 days, by day' in month
    minutes = admin.client.get(
        f"{_page_url(key)}/panel", params={"range": "24h-minutes"}, headers=HTMX
    )
    assert minutes.status_code == 200
    assert minutes.headers["hx-replace-url"] == f"{_page_url(key)}?range=24h-minutes"
    chart = _chart(minutes.text)
    assert chart["bucket"] == "minute" and len(chart["x"]) in (1440, 1441)
    assert sum(sum(series["values"]) for series in chart["series"]) == 1
    # An unknown range (an old link) shows the default, not an error.
    assert _chart(admin.client.get(_page_url(key), params={"range": "1y"}).text)["bucket"] == (
        "hour"
    )


def test_another_apps_key_is_404_a_rolled_one_leads_to_its_successor_a_deleted_one_back(admin):
    key = admin.create_key(admin.create_app(), role="sdk")
    other = admin.create_app()
    token = web_sign_in(admin.client, "owner@example.com")
    base = f"/apps/{other}/settings/api-keys/{key['id']}"
    for url in (base, f"{base}/panel", f"{base}/shrink", f"{base}/shrink/preview"):
        assert admin.client.get(url).status_code == 404, url
    refused = admin.client.post(
        f"{base}/shrink", data={"permissions": "trace.ingest", "csrf_token": token}
    )
    assert refused.status_code == 404
    assert admin.client.get(_page_url(key)).status_code == 200
    # Rolled: the old key's page says it is being retired and leads to the new one,
    # whose history starts with the roll; a retiring key is not shrunk.
    rolled = admin.client.post(
        f"/apps/{key['app_id']}/settings/api-keys/{key['id']}/roll",
        data={"grace_seconds": "3600", "csrf_token": token},
    )
    assert rolled.status_code == 200
    old_page = admin.client.get(_page_url(key)).text
    assert "Being retired" in old_page and f"{_page_url(key)}/shrink" not in old_page
    successor = re.search(
        r'<a href="/apps/[^/]+/settings/api-keys/(key_[^"]+)">The key that', old_page
    )
    assert successor
    new_page = admin.client.get(_page_url({**key, "id": successor.group(1)})).text
    assert 'data-action="api_key.roll"' in new_page
    assert admin.client.get(f"{_page_url(key)}/shrink").status_code == 400
    # Deleted from a dialog on its own page: the page goes back to the list.
    deleted = admin.client.post(
        f"/apps/{key['app_id']}/settings/api-keys/{key['id']}/delete",
        data={"csrf_token": token},
        headers=HTMX,
    )
    assert deleted.status_code == 200
    panel = admin.client.get(f"{_page_url(key)}/panel", headers=HTMX)
    assert panel.headers["hx-redirect"] == f"/apps/{key['app_id']}/settings/api-keys"
    assert admin.client.get(_page_url(key)).status_code == 404


def test_a_reader_sees_the_page_but_no_way_to_change_the_key(admin, key_headers):
    key = admin.create_key(admin.create_app(), role="full-access")
    _use_for_templates(admin, key, key_headers, 1)
    add_user(admin.client, "reader@example.com", "read")
    token = web_sign_in(admin.client, "reader@example.com")
    page = admin.client.get(_page_url(key))
    assert page.status_code == 200
    assert "shrink it to template.read" in page.text  # the advice is there to read
    assert "Shrink to what&#39;s used" not in page.text
    for action in ("/edit", "/roll", "/delete", "/shrink"):
        assert f"{_page_url(key)}{action}" not in page.text
    assert admin.client.get(f"{_page_url(key)}/shrink").status_code == 403
    refused = admin.client.post(
        f"{_page_url(key)}/shrink", data={"permissions": "template.read", "csrf_token": token}
    )
    assert refused.status_code == 403
    shown = admin.client.get(
        f"/v1/api-keys/{key['id']}", headers={**admin.headers, "X-Agentmark-App-Id": key["app_id"]}
    )
    assert shown.json()["data"]["role"] == "full-access"


def test_the_preview_counts_what_a_set_would_refuse_and_a_presets_set_saves_as_it(
    admin, key_headers
):
    key = admin.create_key(admin.create_app(), role="full-access")
    _use_for_templates(admin, key, key_headers, 3)
    token = web_sign_in(admin.client, "owner@example.com")

    dialog = admin.client.get(f"{_page_url(key)}/shrink", headers=HTMX)

    assert dialog.status_code == 200
    ticked = re.findall(r'name="permissions" value="([a-z.]+)" checked', dialog.text)
    assert ticked == ["template.read"]  # the advised set
    assert _refused(dialog.text) == 0
    preview_url = f"{_page_url(key)}/shrink/preview"
    own = admin.client.get(preview_url, params={"permissions": "trace.ingest"}, headers=HTMX)
    assert _refused(own.text) == 3
    assert "of the 3 requests this key was allowed in the last 7 days" in own.text
    sdk = admin.client.get(
        preview_url,
        params={"permissions": ["trace.ingest", "template.read", "score.write"]},
        headers=HTMX,
    )
    assert _refused(sdk.text) == 0 and "Saved as the SDK preset" in sdk.text
    assert "Tick at least one permission" in admin.client.get(preview_url, headers=HTMX).text
    assert admin.client.get(preview_url, params={"permissions": "nope"}).status_code == 400
    # Nothing ticked is refused; exactly a preset's set is saved as that preset.
    url = f"{_page_url(key)}/shrink"
    empty = admin.client.post(url, data={"csrf_token": token}, headers=HTMX)
    assert empty.status_code == 400 and "Select at least one permission" in empty.text
    preset = admin.client.post(
        url,
        data={"permissions": ["score.write", "template.read", "trace.ingest"], "csrf_token": token},
        follow_redirects=False,
    )
    assert preset.status_code == 303 and preset.headers["location"] == _page_url(key)
    headers = {**admin.headers, "X-Agentmark-App-Id": key["app_id"]}
    shown = admin.client.get(f"/v1/api-keys/{key['id']}", headers=headers).json()["data"]
    assert shown["role"] == "sdk"


def test_shrink_saves_the_set_as_an_audited_edit_and_the_key_is_held_to_it(admin, key_headers):
    key = admin.create_key(admin.create_app(), role="full-access", name="ingest-only")
    _use_for_templates(admin, key, key_headers, 2)
    token = web_sign_in(admin.client, "owner@example.com")

    applied = admin.client.post(
        f"{_page_url(key)}/shrink",
        data={"permissions": "template.read", "csrf_token": token},
        headers=HTMX,
    )

    assert applied.status_code == 200, applied.text
    assert applied.headers["hx-trigger"] == "keys-changed, close-modal"
    headers = {**admin.headers, "X-Agentmark-App-Id": key["app_id"]}
    shown = admin.client.get(f"/v1/api-keys/{key['id']}", headers=headers).json()["data"]
    assert (shown["role"], shown["permissions"]) == ("custom", ["template.read"])
    events = admin.client.get(
        "/v1/audit-log",
        params={"app_id": key["app_id"], "action": "api_key.update"},
        headers=headers,
    ).json()["data"]
    assert len(events) == 1 and events[0]["actor"] == "owner@example.com"
    assert events[0]["details"]["permissions_added"] == []
    assert "trace.ingest" in events[0]["details"]["permissions_removed"]
    # The key keeps its value and what it used; the rest is refused.
    _use_for_templates(admin, key, key_headers, 1)
    assert admin.client.get("/v1/traces", headers=key_headers(key)).status_code == 403
    page = admin.client.get(_page_url(key)).text
    assert 'data-action="api_key.update"' in page
    assert "used every permission it holds (1)" in page
