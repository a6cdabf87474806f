"""The accounts file: which accounts exist, and which environment variable holds each one's key.

```yaml
accounts:
  - name: acme                       # partition key: lowercase letters, digits, '-' and '_'
    api_key_env: SCHED_API_KEY__ACME # the key itself never appears in the file
    base_url: https://api.cal.com/v2 # optional; default SCHED_API_BASE_URL, else the public API
```

Read when the definitions load (the names become the partitions) and again when a run starts (so a
run uses the file as it is then). Every problem is reported at once, with the entry and what to do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ACCOUNTS_FILE_ENV = "SCHED_ACCOUNTS_FILE"
ACCOUNT_COLUMN = "account"  # leading column of every table in this mode, part of every key

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# Upper case only: a lower-case "name" is far more likely a key pasted by mistake (`cal_live_...`).
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_FIELDS = {"name", "api_key_env", "base_url"}


class AccountsFileError(ValueError):
    """The accounts file is missing, unreadable or invalid; the message says where and how to fix it."""


@dataclass(frozen=True)
class Account:
    """One scheduling account: its partition key, where its key comes from, and its API root."""

    name: str
    api_key_env: str
    base_url: str | None = None

    def api_key(self, environ: Mapping[str, str] = os.environ) -> str:
        """The key from the environment, or an error naming the variable (never a value)."""
        value = environ.get(self.api_key_env, "").strip()
        if not value:
            raise AccountsFileError(
                f"account {self.name!r}: environment variable {self.api_key_env} (its api_key_env in "
                f"{ACCOUNTS_FILE_ENV}) is not set or empty. Set it to the account's API key in the "
                "environment of the run (a Kubernetes Secret, the .env file of `dagster dev`, ...)."
            )
        return value


@dataclass(frozen=True)
class AccountRegistry:
    """The accounts of one accounts file, in file order."""

    path: Path
    accounts: tuple[Account, ...]

    @property
    def names(self) -> list[str]:
        return [account.name for account in self.accounts]

    def get(self, name: str) -> Account:
        for account in self.accounts:
            if account.name == name:
                return account
        raise AccountsFileError(
            f"account {name!r} is not in {self.path}; add it there (the run reads the file as it is now)."
        )


def accounts_file_from_env(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The accounts file named by SCHED_ACCOUNTS_FILE, or None for the single-account mode."""
    value = environ.get(ACCOUNTS_FILE_ENV, "").strip()
    return Path(value).expanduser() if value else None


def load_accounts(path: str | Path) -> AccountRegistry:
    """Read and validate the accounts file; raise `AccountsFileError` listing every problem."""
    import yaml

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AccountsFileError(
            f"cannot read the accounts file {path} ({ACCOUNTS_FILE_ENV}): {exc.strerror or exc}"
        ) from None
    except yaml.YAMLError as exc:
        # Never str(exc): PyYAML quotes the broken line, which may hold a key pasted by mistake.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise AccountsFileError(f"the accounts file {path} is not valid YAML{where}: {problem}") from None
    entries = document.get("accounts") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise AccountsFileError(
            f"the accounts file {path} must have a non-empty list under `accounts:` "
            "(entries with `name` and `api_key_env`; see docs/accounts.md)"
        )
    problems: list[str] = []
    accounts: list[Account] = []
    seen: set[str] = set()
    for position, entry in enumerate(entries, start=1):
        account = _account(entry, f"entry {position}", problems)
        if account is None:
            continue
        if account.name in seen:
            problems.append(f"entry {position}: name {account.name!r} appears twice; names must be unique")
            continue
        seen.add(account.name)
        accounts.append(account)
    if problems:
        raise AccountsFileError(f"the accounts file {path} is invalid:\n- " + "\n- ".join(problems))
    return AccountRegistry(path=path, accounts=tuple(accounts))


def _account(entry: object, where: str, problems: list[str]) -> Account | None:
    if not isinstance(entry, dict):
        problems.append(
            f"{where}: expected a mapping with `name` and `api_key_env`, got {type(entry).__name__}"
        )
        return None
    before = len(problems)
    unknown = sorted(str(key) for key in entry if key not in _FIELDS)
    if unknown:
        problems.append(
            f"{where}: unknown field(s) {', '.join(unknown)} (allowed: name, api_key_env, base_url; "
            "a key never goes in the file, only the name of the variable that holds it)"
        )
    name, env, base_url = entry.get("name"), entry.get("api_key_env"), entry.get("base_url")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(
            f"{where}: name {name!r} is not a valid account name (1-63 lowercase letters, digits, '-' or "
            "'_', starting with a letter or digit); it is the partition key"
        )
    else:
        where = f"{where} ({name})"
    if not isinstance(env, str) or not _ENV_NAME.fullmatch(env):
        # The value is not repeated: if it is not a variable name, it may well be the key itself.
        problems.append(
            f"{where}: api_key_env must be the NAME of the environment variable holding the key (upper-case "
            "letters, digits and '_', e.g. SCHED_API_KEY__ACME), never the key itself"
        )
    if base_url is not None and not _valid_url(base_url):
        problems.append(f"{where}: base_url must be an http(s) URL such as https://api.cal.com/v2")
    if len(problems) > before:
        return None
    return Account(name=name, api_key_env=env, base_url=base_url.rstrip("/") if base_url else None)


def _valid_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
