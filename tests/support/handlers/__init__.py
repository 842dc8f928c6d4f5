"""Small handler programs the end-to-end tests start as processes (stdlib ``http.server`` only)."""
