"""Tests of lockerd.drivers."""
