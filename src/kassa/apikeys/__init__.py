"""API keys with scopes, stored hashed."""
