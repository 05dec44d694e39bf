"""Versioned wire formats and the error tree. Imports nothing else from Hotline."""
