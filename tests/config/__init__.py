"""Tests of lockerd.config."""
