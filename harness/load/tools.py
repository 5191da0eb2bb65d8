"""The tool a request offers when a scenario sets `load.tool_share`: a model offered a tool
answers with a call of it, the answer inside its JSON arguments, so a client checks the call it
got as it checks text (reading.py). No locust import here: the simulation sends it too."""

from __future__ import annotations

from typing import Any

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look something up.",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
        },
    }
]
