"""Template and dataset paths: one set of rules for the API, the CLI and the database.

A path names a file of an AgentMark project: relative, ``/``-separated, no
``.`` or ``..`` segments, no empty segments, no backslash, no control
characters, at most ``MAX_PATH_LENGTH`` characters. Templates end in ``.mdx``
or ``.json`` (``agents/support.prompt.mdx``); datasets end in ``.jsonl``, and a
dataset's name is its path without the suffix (``evals/math`` <->
``evals/math.jsonl``).

Paths are only ever database keys here, never file names, but clients write
them to disk (``agentmark pull``), so the rules are those of a safe relative
file path. The checks raise a ``ValueError`` (pydantic's own subclass, so that
the 400 a route answers names the parameter and keeps the message as written).
"""

from __future__ import annotations

import unicodedata

from pydantic_core import PydanticCustomError

from agentmark_gateway.controls import first_refused

MAX_PATH_LENGTH = 1024
TEMPLATE_SUFFIXES = (".mdx", ".json")
DATASET_SUFFIX = ".jsonl"
MAX_DATASET_NAME_LENGTH = MAX_PATH_LENGTH - len(DATASET_SUFFIX)


def check_path(path: str, *, what: str = "path") -> str:
    """``path`` unchanged when it follows the rules, else ``ValueError`` naming the rule broken."""
    _check_relative(path, what)
    leaf = path.rsplit("/", 1)[-1]
    suffix = next((s for s in (*TEMPLATE_SUFFIXES, DATASET_SUFFIX) if leaf.endswith(s)), None)
    if suffix is None:
        raise _invalid(f"{what} must end in .mdx or .json (a template) or .jsonl (a dataset)")
    if leaf == suffix:
        raise _invalid(f"{what} needs a file name before '{suffix}'")
    return path


def check_dataset_name(name: str) -> str:
    """A dataset name is a dataset path without ``.jsonl``: the same rules apply."""
    if name.endswith(DATASET_SUFFIX):
        raise _invalid("dataset name is the path without '.jsonl'; drop the suffix")
    # The name's own segments too: ".." would pass as the file name "...jsonl".
    _check_relative(name, "dataset name")
    check_path(dataset_path(name), what="dataset name")
    return name


def _check_relative(path: str, what: str) -> None:
    if not path:
        raise _invalid(f"{what} must not be empty")
    if len(path) > MAX_PATH_LENGTH:
        raise _invalid(f"{what} must be at most {MAX_PATH_LENGTH} characters")
    if any(unicodedata.category(char) == "Cc" for char in path):
        raise _invalid(f"{what} must not contain control characters")
    refused = first_refused(path)
    if refused is not None:
        # A bidi override makes a path read as another one in a list or a log.
        raise _invalid(f"{what} must not contain bidi-override characters (U+{ord(refused):04X})")
    if any(0xD800 <= ord(char) <= 0xDFFF for char in path):
        raise _invalid(f"{what} must be valid Unicode")
    if "\\" in path:
        raise _invalid(f"{what} must separate folders with '/', not '\\'")
    if path.startswith("/"):
        raise _invalid(f"{what} must be relative (no leading '/')")
    for segment in path.split("/"):
        if segment in (".", ".."):
            raise _invalid(f"{what} must not contain '.' or '..' segments")
        if not segment:
            raise _invalid(f"{what} must not contain empty segments ('//' or a trailing '/')")


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_path", "{message}", {"message": message})


def is_dataset_path(path: str) -> bool:
    return path.endswith(DATASET_SUFFIX)


def dataset_name(path: str) -> str:
    """``evals/math.jsonl`` -> ``evals/math``."""
    return path.removesuffix(DATASET_SUFFIX)


def dataset_path(name: str) -> str:
    """``evals/math`` -> ``evals/math.jsonl``."""
    return name + DATASET_SUFFIX
