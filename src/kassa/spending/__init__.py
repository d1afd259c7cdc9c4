"""Spending: metered usage debits, time-limited activations, account states."""
