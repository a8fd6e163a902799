"""Example requests for every data route, used by the permission matrix test.

Each feature has a module here with ``EXAMPLES``: a dict from ``(METHOD, path
template)`` to a function ``(ctx) -> Request`` that builds a request which a key
holding exactly the route's permissions can make successfully (2xx, or a 404
for a missing record). ``ctx`` is a ``tests.route_examples.base.Context``.
"""

from tests.route_examples.base import Context, ExampleRequest, all_examples

__all__ = ["Context", "ExampleRequest", "all_examples"]
