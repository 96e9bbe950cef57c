"""The state store's Lua scripts, kept as files (``*.lua`` beside this module) and read as package data.

A script may hold markers ``@NAME@`` (capitals and underscores) for values only Python knows: the
state hash's field names and their order (``service.codec.STATE_FIELDS``), or the per-object body
that ``many_objects.lua`` runs. :func:`render` fills them in and refuses a marker left unfilled, so a
renamed field cannot silently reach Redis as a literal ``@MODEL_VERSION@``.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

__all__ = ["render", "source"]

_MARKER = re.compile(r"@([A-Z_]+)@")


@functools.cache
def source(name: str) -> str:
    """The text of ``<name>.lua``."""
    return resources.files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


def render(text: str, **values: str) -> str:
    """``text`` with every ``@NAME@`` replaced by ``values[NAME]``.

    Examples
    --------
    >>> render("return redis.call('HGET', KEYS[1], '@FIELD@')", FIELD="ids")
    "return redis.call('HGET', KEYS[1], 'ids')"
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"Lua marker @{name}@ has no value")
        return values[name]

    return _MARKER.sub(fill, text)
