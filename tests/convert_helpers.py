"""Domain → protobuf for submits, for tests that build requests from domain values (the API itself
uses the same functions to show a schedule's template: `shared.edge.convert_submits`)."""

from __future__ import annotations

from shared.edge.convert_submits import definition_to_proto, options_to_proto, set_field, step_to_proto, submit_to_proto

__all__ = ["definition_to_proto", "options_to_proto", "set_field", "step_to_proto", "submit_to_proto"]
