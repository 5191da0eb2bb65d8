"""The chaos harness: simulated endpoints, Toxiproxy, the gateway, Locust load and runs."""

__all__: list[str] = []
