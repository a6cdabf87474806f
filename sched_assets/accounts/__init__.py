"""Many accounts: the accounts file (`SCHED_ACCOUNTS_FILE`) and the per-key lock (docs/accounts.md)."""

from sched_assets.accounts.registry import (
    ACCOUNT_COLUMN,
    ACCOUNTS_FILE_ENV,
    Account,
    AccountRegistry,
    AccountsFileError,
    accounts_file_from_env,
    load_accounts,
)

__all__ = [
    "ACCOUNTS_FILE_ENV",
    "ACCOUNT_COLUMN",
    "Account",
    "AccountRegistry",
    "AccountsFileError",
    "accounts_file_from_env",
    "load_accounts",
]
