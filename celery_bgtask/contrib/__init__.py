"""Integrations built on the public API (Prometheus, Flask, Django, a dashboard). Nothing in the
package imports them: each is opt-in, and may depend on everything below it."""
