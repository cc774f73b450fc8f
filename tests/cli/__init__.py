"""Tests of lockerd.cli."""
