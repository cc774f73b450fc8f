"""Tooling production never uses (tests, benches, demo): mosquitto, carrier client, sync on an open log."""
