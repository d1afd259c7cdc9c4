"""The refund and withdrawal policy engine: policy files, presets, and decisions with reasons."""
