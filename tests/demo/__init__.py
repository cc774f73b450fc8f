"""Tests of lockerd.demo."""
