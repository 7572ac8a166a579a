"""Check a mapping from a settings file against the Kubernetes API's own description of an object.

The official client's models (``kubernetes.client.V1Affinity`` ...) carry the API's field names
(``attribute_map``), their types (``openapi_types``) and which fields are required (their constructors
refuse None). Walking them finds a misspelt field (``nodeAfinity``), a wrong type or a missing required
field in the user's ``affinity`` or ``tolerations`` when the settings are read, with the field's path,
rather than as a 422 from the API server in the middle of a sweep. Without the client installed (a
machine that never talks to a cluster) only the top level is checked.
"""

from __future__ import annotations

import re
from typing import Any

from controller.kubernetes import api as k8s_api

_models = k8s_api.models()

_PRIMITIVES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float),
                                            "object": (object,), "datetime": (str,), "date": (str,)}


class ObjectError(ValueError):
    """``path``: where below the checked object; ``expected``: what is allowed; ``given``: what was found."""

    def __init__(self, path: str, expected: str, given: Any):
        super().__init__(f"{path}: expected {expected}, got {given!r}")
        self.path, self.expected, self.given = path, expected, given


def check(value: Any, model: str, path: str = "") -> None:
    """Raise ``ObjectError`` where ``value`` is not a valid ``model`` (``V1Affinity``, ``list[V1Toleration]``)."""
    if _models is None:
        if not isinstance(value, (dict, list)):
            raise ObjectError(path or "(top)", f"a {model} mapping", value)
        return
    _walk(value, model, path)


def _walk(value: Any, tp: str, path: str) -> None:
    if m := re.fullmatch(r"[Ll]ist\[(.+)\]", tp):  # (the client writes List[...] or list[...] by version)
        if not isinstance(value, list):
            raise ObjectError(path, "a list", value)
        for i, item in enumerate(value):
            _walk(item, m.group(1), f"{path}[{i}]")
        return
    if m := re.fullmatch(r"(?:dict\(str, (.+)\)|Dict\[str, (.+)\])", tp):
        if not isinstance(value, dict):
            raise ObjectError(path, "a mapping", value)
        for key, item in value.items():
            _walk(item, m.group(1) or m.group(2), f"{path}.{key}")
        return
    if tp in _PRIMITIVES:
        if tp != "bool" and isinstance(value, bool) or not isinstance(value, _PRIMITIVES[tp]):
            raise ObjectError(path, {"str": "a string", "int": "an integer", "bool": "true or false",
                                     "float": "a number"}.get(tp, tp), value)
        return
    cls = getattr(_models, tp)
    if not isinstance(value, dict):
        raise ObjectError(path, f"a mapping ({tp[2:]})", value)
    fields = {cls.attribute_map[attr]: (attr, cls.openapi_types[attr]) for attr in cls.openapi_types}
    for key, item in value.items():
        if key not in fields:
            raise ObjectError(f"{path}.{key}".lstrip("."), f"a field of {tp[2:]}: {', '.join(fields)}", key)
        _walk(item, fields[key][1], f"{path}.{key}".lstrip("."))
    try:  # the model's own checks: required fields, enumerations
        cls(**{fields[k][0]: v for k, v in value.items()})
    except ValueError as e:
        attr, why = _first_error(e)
        api_name = attr if attr in cls.attribute_map.values() else cls.attribute_map.get(attr, attr)
        where = f"{path}.{api_name}".strip(".")
        raise ObjectError(where, why, value.get(api_name)) from None


def _first_error(e: ValueError) -> tuple[str, str]:
    """(field, what was expected) from a model's refusal: pydantic's ``ValidationError`` (client 35+) or the
    older generated models' ``Invalid value for `key`, must not be `None```."""
    found = getattr(e, "errors", None)
    if callable(found):
        first = found()[0]
        loc = str(first["loc"][0]) if first.get("loc") else ""
        return loc, "a value (required)" if first.get("type") == "missing" else str(first.get("msg", e)).lower()
    m = re.search(r"`(\w+)`", str(e))
    return (m.group(1) if m else ""), "a value (required)" if "None" in str(e) else str(e)
