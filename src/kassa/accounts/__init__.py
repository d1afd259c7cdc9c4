"""Customer accounts: the host service's users and their USD balances."""
