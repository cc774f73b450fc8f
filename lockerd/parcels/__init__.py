"""Parcel flows (the use cases): ports, write-ahead recording, persistence, panel and carrier adapters."""
