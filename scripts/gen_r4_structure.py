#!/usr/bin/env python
"""Generate mockehr/fhir/r4_structure.json from the fhirclient R4 (4.0.1) models.

Dev-time only: the server never imports fhirclient or fhir.resources; it reads
the JSON this script writes (see mockehr/fhir/validate.py).

Output (compact, sorted keys, deterministic):

    {"fhirVersion": "4.0.1",
     "resourceTypes": ["Account", ...],          # concrete R4 resource types
     "types": {"Patient": {"birthDate": {"type": "date"}, ...}, ...}}

Every resource type and complex datatype, BackboneElements included (keyed by
the fhirclient class name, e.g. "PatientContact"; fhirclient's FHIRReference is
keyed "Reference"), maps each JSON element name, inherited ones flattened in,
to {"type", "list": true?, "required": true?, "choice": "value"?}; false flags
are omitted. "type" is a complex type key, "Resource" (any resource, dispatch
on resourceType) or a FHIR primitive name (primitives start lowercase).

Where the primitive type comes from:
  * fhirclient keeps only the Python type: bool, float (decimal) and the
    FHIRDate/FHIRDateTime/FHIRInstant/FHIRTime classes map exactly;
  * choice elements carry their type in the name (valueCode -> code);
  * the rest (str: string/code/id/uri/url/canonical/markdown/oid/uuid/
    base64Binary/xhtml; int: integer/positiveInt/unsignedInt) is taken from the
    same element in fhir.resources.R4B (4.3.0) when it exists there with a
    type of the same family (R4B kept R4's datatypes and most resources);
  * otherwise (R4-only resources such as MedicinalProduct*, EffectEvidence-
    Synthesis, and Evidence*, which R4B redesigned) the loosest member of the
    family: "string" / "integer", so a valid R4 value is never rejected.
Run with --stats to see how many elements each rule decided.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
import typing
from collections import Counter
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "mockehr" / "fhir" / "r4_structure.json"

ABSTRACT = {"Resource", "DomainResource", "MetadataResource"}
# Resources R4B redesigned: same names, different elements, so not a source.
R4B_REDESIGNED = ("Evidence",)  # Evidence*, EvidenceVariable*

STR_FAMILY = {"string", "code", "id", "uri", "url", "canonical", "markdown",
              "oid", "uuid", "base64Binary", "xhtml"}
INT_FAMILY = {"integer", "positiveInt", "unsignedInt"}
PRIMITIVES = STR_FAMILY | INT_FAMILY | {"boolean", "decimal", "date", "dateTime",
                                        "instant", "time"}


def _fhirclient_classes() -> dict[str, type]:
    import fhirclient.models as models
    from fhirclient.models.fhirabstractbase import FHIRAbstractBase

    found = {}
    for info in sorted(pkgutil.iter_modules(models.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"fhirclient.models.{info.name}")
        for name, cls in vars(mod).items():
            if (inspect.isclass(cls) and issubclass(cls, FHIRAbstractBase)
                    and cls.__module__ == mod.__name__
                    and not name.startswith("FHIRAbstract")):
                found[name] = cls
    return found


def _r4b_primitive(r4b_cls, jsname: str) -> str | None:
    """FHIR primitive name of an R4B element, read off its pydantic metadata."""
    if r4b_cls is None:
        return None
    field = next((f for f in r4b_cls.model_fields.values() if f.alias == jsname), None)
    if field is None:
        return None
    stack = [field.annotation]
    while stack:
        ann = stack.pop()
        if ann is bool:
            return "boolean"
        for meta in getattr(ann, "__metadata__", ()):
            name = type(meta).__name__
            name = name[0].lower() + name[1:]
            if name in PRIMITIVES:
                return name
        stack.extend(typing.get_args(ann))
    return None


def _r4b_class(name: str):
    from fhir.resources.R4B import get_fhir_model_class

    if name.startswith(R4B_REDESIGNED):
        return None
    try:
        return get_fhir_model_class(name)
    except (KeyError, ValueError, AttributeError, ImportError):
        return None


def _primitive(py_type: type, r4b_cls, jsname: str, of_many: str | None,
               stats: Counter) -> str:
    from fhirclient.models.fhirdate import FHIRDate
    from fhirclient.models.fhirdatetime import FHIRDateTime
    from fhirclient.models.fhirinstant import FHIRInstant
    from fhirclient.models.fhirtime import FHIRTime

    # Subclasses first: FHIRDateTime/FHIRInstant/FHIRTime all extend FHIRDate.
    exact = [(bool, "boolean"), (float, "decimal"), (FHIRDateTime, "dateTime"),
             (FHIRInstant, "instant"), (FHIRTime, "time"), (FHIRDate, "date")]
    for cls, name in exact:
        if py_type is cls:
            stats["exact (python type)"] += 1
            return name
    family, loose = (STR_FAMILY, "string") if py_type is str else (INT_FAMILY, "integer")
    if py_type not in (str, int):
        raise TypeError(f"unexpected primitive python type {py_type!r} for {jsname}")
    if of_many:
        suffix = jsname[len(of_many):]
        name = suffix[:1].lower() + suffix[1:]
        if name in family:
            stats["exact (choice suffix)"] += 1
            return name
    name = _r4b_primitive(r4b_cls, jsname)
    if name in family:
        stats["from fhir.resources.R4B"] += 1
        return name
    stats[f"fallback {loose}"] += 1
    return loose


def build(stats: Counter | None = None) -> dict:
    from fhirclient.models.fhirabstractbase import FHIRAbstractBase
    from fhirclient.models.resource import Resource

    stats = Counter() if stats is None else stats
    classes = _fhirclient_classes()

    def key(cls: type) -> str:
        return "Reference" if cls.__name__ == "FHIRReference" else cls.__name__

    types: dict[str, dict] = {}
    for name in sorted(classes):
        cls = classes[name]
        if key(cls) in types or name in ABSTRACT:
            continue
        r4b_cls = _r4b_class(key(cls))
        elements = {}
        for _, jsname, typ, is_list, of_many, required in cls().elementProperties():
            if typ is Resource:
                tname = "Resource"
            elif issubclass(typ, FHIRAbstractBase):
                tname = key(typ)
            else:
                tname = _primitive(typ, r4b_cls, jsname, of_many, stats)
            spec = {"type": tname}
            if is_list:
                spec["list"] = True
            if required:
                spec["required"] = True
            if of_many:
                spec["choice"] = of_many
            elements[jsname] = spec
        types[key(cls)] = elements

    resource_types = sorted(n for n, c in classes.items()
                            if issubclass(c, Resource) and n not in ABSTRACT)
    return {"fhirVersion": "4.0.1", "resourceTypes": resource_types, "types": types}


def render(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--stats", action="store_true",
                        help="print how each primitive type was decided")
    args = parser.parse_args(argv)
    stats: Counter = Counter()
    blob = render(build(stats))
    args.out.write_bytes(blob)
    print(f"wrote {args.out} ({len(blob)} bytes)", file=sys.stderr)
    if args.stats:
        for rule, count in sorted(stats.items()):
            print(f"  {rule}: {count}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
