"""The product under test: an OpenAI-compatible gateway built on resilience_core.

config (the YAML schema), upstream (aiohttp client), routing (the data plane), http (handlers,
stream relay, error mapping), admin/ and dashboard/ (the operator's side), metrics, app (the one
module that wires them), launch (how the harness starts it). Uses resilience_core only.
"""
