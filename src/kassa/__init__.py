"""Kassa: a self-hosted crypto payment and withdrawal gateway."""
