"""Tests of lockerd.parcels."""
