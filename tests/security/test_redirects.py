"""Sign-in redirects stay on this site, whatever ``next`` says and however it is sent."""

from __future__ import annotations

import pytest

from tests.conftest import add_user
from tests.integration.test_web_security import PASSWORD, csrf

# Each is read by some browser as another site, or cannot be a header value at all.
HOSTILE_NEXT = [
    "//evil.example/x",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/%09/ok\x00",
    "/\x0b/evil.example",
    "/\x7f/evil.example",
    "/\u3000/x",
    "/\u2028/x",
    "https://evil.example/",
    "javascript:alert(1)",
    " /x",
]


PLAIN = "/apps/app_x/settings/api-keys?tab=2"


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_sign_in_follows_next_only_to_a_plain_local_path(client, htmx):
    add_user(client, "n@example.com", "read")
    headers = {"HX-Request": "true"} if htmx else {}
    for target in [*HOSTILE_NEXT, PLAIN]:
        form = client.get("/login", params={"next": target})
        assert form.status_code == 200
        response = client.post(
            "/login",
            data={
                "email": "n@example.com",
                "password": PASSWORD,
                "next": target,
                "csrf_token": csrf(form.text),
            },
            headers=headers,
            follow_redirects=False,
        )
        where = response.headers["hx-redirect" if htmx else "location"]
        assert where == (PLAIN if target == PLAIN else "/"), (target, response.status_code)
        client.cookies.clear()
