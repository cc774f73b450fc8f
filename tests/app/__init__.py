"""Tests of lockerd.app."""
