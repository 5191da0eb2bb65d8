"""Locust load, in its own process (`python -m harness.load`). Importing this package imports no
locust: `records` is plain CSV; `user`, `distributed` and `__main__` import locust (and gevent,
which patches the standard library), so only the load process may import them."""
