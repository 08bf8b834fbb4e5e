"""fitdecode's FIT profile tables and base types, for the fast decoder: the one module that reads them.

:mod:`domain.algorithms.parsing.fitfast` must name, scale and expand fields exactly as fitdecode does, so it reads
fitdecode's own tables instead of a copy of the FIT profile. Those are not fitdecode's documented interface:
``fitdecode.profile`` is generated from the FIT SDK and ``fitdecode.types`` exports nothing (``__all__ = []``).
setup.cfg therefore pins fitdecode exactly, and :func:`check_internals` (called by a test) names any table or
attribute a new release renamed or removed, instead of the decoder failing somewhere in a file.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import fitdecode
from fitdecode import profile as _profile
from fitdecode import reader as _reader
from fitdecode import types as _types

__all__ = [
    "BASE_TYPES",
    "BASE_TYPE_BYTE",
    "FIELD_NUM_HR_EVENT_TIMESTAMP_12",
    "FIELD_NUM_TIMESTAMP",
    "MESG_NUM_HR",
    "MESSAGE_TYPES",
    "BaseType",
    "FitdecodeInternalsError",
    "check_internals",
]


class FitdecodeInternalsError(RuntimeError):
    """The installed fitdecode lacks a table or attribute the fast FIT decoder reads."""


def _require(owner: object, name: str, where: str) -> Any:
    try:
        return getattr(owner, name)
    except AttributeError:
        raise FitdecodeInternalsError(
            f"fitdecode {fitdecode.__version__} has no {where}.{name}, which the fast FIT decoder reads "
            "(domain/algorithms/parsing/fitprofile.py); install the version setup.cfg pins or adapt that module"
        ) from None


#: What :mod:`fitfast` reads, per module (the base types and field classes' attributes are listed below).
_MODULE_NAMES = {
    "fitdecode.types": (_types, ("BASE_TYPES", "BASE_TYPE_BYTE")),
    "fitdecode.profile": (_profile, ("MESSAGE_TYPES", "MESG_NUM_HR", "FIELD_NUM_TIMESTAMP",
                                     "FIELD_NUM_HR_EVENT_TIMESTAMP_12")),
    # fit.LenientSizeReader narrows fitdecode's error handling around these two reader methods.
    "fitdecode.reader.FitReader": (_reader.FitReader, ("_read_definition_message", "_get_dev_type")),
}
_BASE_TYPE_ATTRS = ("identifier", "fmt", "size", "parse")
_MESSAGE_ATTRS = ("fields",)
_FIELD_ATTRS = ("name", "type", "scale", "offset", "components", "subfields", "render")
_SUBFIELD_ATTRS = ("name", "type", "scale", "offset", "components", "ref_fields", "render")
_REFERENCE_ATTRS = ("def_num", "raw_value")
_COMPONENT_ATTRS = ("def_num", "scale", "offset", "accumulate")
_FIELD_TYPE_ATTRS = ("enum",)

#: A value of BASE_TYPES, for annotations (fitdecode ships no type information).
BaseType: TypeAlias = Any
#: Base type number → BaseType (``identifier``, struct ``fmt``, ``size`` and the ``parse`` of raw values).
BASE_TYPES: dict[int, Any] = _require(_types, "BASE_TYPES", "fitdecode.types")
BASE_TYPE_BYTE: Any = _require(_types, "BASE_TYPE_BYTE", "fitdecode.types")
#: Global message number → MessageType, whose ``fields`` map field numbers to Field (name, type, scale, offset,
#: components, subfields with their ref_fields).
MESSAGE_TYPES: dict[int, Any] = _require(_profile, "MESSAGE_TYPES", "fitdecode.profile")
MESG_NUM_HR: int = _require(_profile, "MESG_NUM_HR", "fitdecode.profile")
FIELD_NUM_TIMESTAMP: int = _require(_profile, "FIELD_NUM_TIMESTAMP", "fitdecode.profile")
FIELD_NUM_HR_EVENT_TIMESTAMP_12: int = _require(_profile, "FIELD_NUM_HR_EVENT_TIMESTAMP_12", "fitdecode.profile")


def _check_attrs(obj: object, names: tuple[str, ...], where: str) -> None:
    for name in names:
        _require(obj, name, where)


def check_internals() -> None:
    """Raise :class:`FitdecodeInternalsError` naming the first table or attribute the installed fitdecode lacks.

    Reads the modules afresh (not this module's bindings) and looks at real table entries, so a release that
    keeps a table but renames what its entries hold is caught too.
    """
    for where, (module, names) in _MODULE_NAMES.items():
        _check_attrs(module, names, where)
    base_types = _types.BASE_TYPES
    for base in (_types.BASE_TYPE_BYTE, *base_types.values()):
        _check_attrs(base, _BASE_TYPE_ATTRS, "fitdecode.types.BaseType")
    messages = _profile.MESSAGE_TYPES
    record = messages.get(20)
    if record is None:
        raise FitdecodeInternalsError(f"fitdecode {fitdecode.__version__}'s MESSAGE_TYPES has no record message (20)")
    found = {"component": False, "subfield": False, "reference": False}
    for message in messages.values():
        _check_attrs(message, _MESSAGE_ATTRS, "fitdecode.types.MessageType")
        for fld in message.fields.values():
            _check_attrs(fld, _FIELD_ATTRS, "fitdecode.types.Field")
            _check_attrs(fld.type, _FIELD_TYPE_ATTRS, "fitdecode.types.FieldType")
            for sub in fld.subfields or ():
                found["subfield"] = True
                _check_attrs(sub, _SUBFIELD_ATTRS, "fitdecode.types.SubField")
                for ref in sub.ref_fields or ():
                    found["reference"] = True
                    _check_attrs(ref, _REFERENCE_ATTRS, "fitdecode.types.ReferenceField")
            for comp in fld.components or ():
                found["component"] = True
                _check_attrs(comp, _COMPONENT_ATTRS, "fitdecode.types.ComponentField")
    missing = [kind for kind, seen in found.items() if not seen]
    if missing:
        raise FitdecodeInternalsError(
            f"fitdecode {fitdecode.__version__}'s MESSAGE_TYPES holds no {', '.join(missing)} entries any more")
