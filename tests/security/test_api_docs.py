"""/docs is Swagger UI from the package: no other origin, the dashboard's policy, no inline code."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from agentmark_gateway.web.route import CONTENT_SECURITY_POLICY


def test_api_docs_load_only_files_of_this_gateway_under_its_policy(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    html = page.text
    assert "<script>" not in html and "<style" not in html  # nothing inline
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert references, html
    for reference in references:
        assert not urlsplit(reference).netloc and reference.startswith("/"), reference
        asset = client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    # The page starts Swagger UI on the gateway's own document.
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert "/static/swagger-ui/swagger-ui-bundle.js" in scripts
    assert 'data-openapi-url="/v1/openapi.json"' in html
    assert client.get("/v1/openapi.json").status_code == 200
