from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient


@dataclass
class ExampleRequest:
    method: str
    url: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What an example may use: the client, the app id and a full-access key to seed data."""

    client: TestClient
    app_id: str
    full_key: str

    @property
    def full_headers(self) -> dict[str, str]:
        return {"Authorization": self.full_key, "X-Agentmark-App-Id": self.app_id}


Example = Callable[[Context], ExampleRequest]


def all_examples() -> dict[tuple[str, str], Example]:
    examples: dict[tuple[str, str], Example] = {}
    package = importlib.import_module("tests.route_examples")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name == "base":
            continue
        loaded = importlib.import_module(f"tests.route_examples.{module.name}")
        examples.update(getattr(loaded, "EXAMPLES", {}))
    return examples
