"""The operator's side of the gateway: token check, operator state, live feed, the admin routes
with their OpenAPI document, and the one client of those routes."""
