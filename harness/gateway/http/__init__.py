"""The gateway's HTTP surface: OpenAI-compatible handlers, the stream relay, error mapping."""
