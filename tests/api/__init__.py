"""Tests of lockerd.api."""
