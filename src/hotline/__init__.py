"""Hotline: a secure, records-compliant direct line for heads of state and senior officials."""

from __future__ import annotations

__version__ = "0.1.0"
