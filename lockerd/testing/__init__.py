"""Tooling for tests and the demo that production never uses: a private mosquitto, a carrier client."""
