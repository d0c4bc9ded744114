"""The converter: raw Assistants objects -> one `migrator.session/v1` record. Pure, no I/O.

    record = convert_thread(bundle, ConversionOptions(citations="strip"))
    findings = validate_session(record)

See session.py for the `sources` format and codes.py for the warning codes.
"""

from __future__ import annotations

from migrator.convert.bundle import FileInfo, ThreadBundle, bundle_from_json, bundle_to_json
from migrator.convert.codes import WARNING_CODES
from migrator.convert.options import ConversionOptions
from migrator.convert.session import FORMAT, convert_thread, session_tool_definitions
from migrator.convert.tokens import count_tokens, load_encoding
from migrator.convert.tools import EMULATED_TOOLS
from migrator.convert.validate import FINDING_CODES, Finding, validate_session

__all__ = [
    "EMULATED_TOOLS",
    "FINDING_CODES",
    "FORMAT",
    "WARNING_CODES",
    "ConversionOptions",
    "FileInfo",
    "Finding",
    "ThreadBundle",
    "bundle_from_json",
    "bundle_to_json",
    "convert_thread",
    "count_tokens",
    "load_encoding",
    "session_tool_definitions",
    "validate_session",
]
