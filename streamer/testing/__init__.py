"""Helpers for tests of this project and of code built on it (real servers, no mocks)."""
