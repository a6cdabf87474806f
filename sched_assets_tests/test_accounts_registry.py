"""The accounts file (`SCHED_ACCOUNTS_FILE`): what parses, and a clear error for everything that does not.

Every invalid file raises `AccountsFileError` naming the entry and what to do; every problem of a file
is reported at once; no message ever carries a key's value.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sched_assets.accounts import (
    ACCOUNT_COLUMN,
    ACCOUNTS_FILE_ENV,
    Account,
    AccountRegistry,
    AccountsFileError,
    accounts_file_from_env,
    load_accounts,
)

SECRET = "secret-value-123"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(AccountsFileError) as info:
        load_accounts(write(tmp_path, text))
    message = str(info.value)
    assert str(tmp_path / "accounts.yaml") in message, "the message names the file"
    return message


# ---- valid files -------------------------------------------------------------------------------


def test_valid_file_parses_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
accounts:
  - name: zeta
    api_key_env: SCHED_API_KEY__ZETA
    base_url: https://api.cal.com/v2/
  - name: acme
    api_key_env: SCHED_API_KEY__ACME
  - name: 0-team_b
    api_key_env: _KEY2
    base_url: http://127.0.0.1:8080/v2//
""",
    )

    registry = load_accounts(path)

    assert isinstance(registry, AccountRegistry)
    assert registry.path == path
    assert registry.names == ["zeta", "acme", "0-team_b"]  # file order, not sorted
    assert registry.accounts == (
        Account("zeta", "SCHED_API_KEY__ZETA", "https://api.cal.com/v2"),  # trailing slash stripped
        Account("acme", "SCHED_API_KEY__ACME", None),  # base_url is optional
        Account("0-team_b", "_KEY2", "http://127.0.0.1:8080/v2"),
    )
    assert registry.get("acme").api_key_env == "SCHED_API_KEY__ACME"


def test_load_accounts_takes_a_string_path(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts:\n  - {name: a, api_key_env: K}\n")

    assert load_accounts(str(path)).names == ["a"]


def test_longest_valid_name_is_63_characters(tmp_path: Path) -> None:
    name = "a" * 63
    path = write(tmp_path, f"accounts:\n  - name: {name}\n    api_key_env: K\n")

    assert load_accounts(path).names == [name]


def test_get_of_an_unknown_account_names_it_and_the_file(tmp_path: Path) -> None:
    registry = load_accounts(write(tmp_path, "accounts:\n  - {name: acme, api_key_env: K}\n"))

    with pytest.raises(AccountsFileError, match="'globex' is not in") as info:
        registry.get("globex")
    assert str(registry.path) in str(info.value)


def test_account_column_is_account() -> None:
    assert ACCOUNT_COLUMN == "account"


# ---- the file itself ---------------------------------------------------------------------------


def test_missing_file_names_the_path_and_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(AccountsFileError) as info:
        load_accounts(path)

    message = str(info.value)
    assert str(path) in message
    assert ACCOUNTS_FILE_ENV in message
    assert "No such file" in message


def test_a_directory_is_not_an_accounts_file(tmp_path: Path) -> None:
    with pytest.raises(AccountsFileError, match="cannot read the accounts file"):
        load_accounts(tmp_path)


def test_bad_yaml(tmp_path: Path) -> None:
    message = error_for(tmp_path, "accounts:\n  - name: acme\n   api_key_env: [unclosed\n")

    assert "not valid YAML" in message
    assert "line" in message  # where to look


def test_bad_yaml_never_quotes_a_key_from_the_broken_line(tmp_path: Path) -> None:
    # A key pasted into the file (the mistake the file format forbids) on the very line that breaks the
    # YAML: PyYAML's own message quotes that line, so it must not be passed through as it is.
    message = error_for(
        tmp_path,
        f'accounts:\n  - name: acme\n    api_key_env: SCHED_API_KEY__ACME\n    api_key: "{SECRET}\n',
    )

    assert "not valid YAML" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty file
        "# only a comment\n",
        "accounts:\n",  # null
        "accounts: []\n",  # empty list
        "accounts: {name: acme, api_key_env: K}\n",  # a mapping, not a list
        "accounts: acme\n",
        "- name: acme\n  api_key_env: K\n",  # a top-level list without `accounts:`
        "account:\n  - {name: acme, api_key_env: K}\n",  # misspelt
    ],
    ids=["empty", "comment", "null", "empty-list", "mapping", "string", "top-level-list", "misspelt"],
)
def test_no_accounts_list(tmp_path: Path, text: str) -> None:
    message = error_for(tmp_path, text)

    assert "non-empty list under `accounts:`" in message
    assert "name" in message and "api_key_env" in message  # what an entry needs


# ---- entries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "got"),
    [("acme", "str"), ("42", "int"), ("[a, b]", "list"), ("null", "NoneType")],
)
def test_non_mapping_entry(tmp_path: Path, entry: str, got: str) -> None:
    message = error_for(tmp_path, f"accounts:\n  - {{name: ok, api_key_env: K}}\n  - {entry}\n")

    assert "entry 2:" in message
    assert "expected a mapping with `name` and `api_key_env`" in message
    assert got in message


@pytest.mark.parametrize(
    ("yaml_name", "shown"),
    [
        ("Acme", "'Acme'"),  # uppercase
        ("'acme corp'", "'acme corp'"),  # space
        ("-acme", "'-acme'"),  # starts with '-'
        ("_acme", "'_acme'"),  # starts with '_'
        ("a" * 64, "'" + "a" * 64 + "'"),  # too long
        ("42", "42"),  # an int, not a string
        ("true", "True"),
        ("''", "''"),  # empty
        ("acme.corp", "'acme.corp'"),
        ("acmé", "'acmé'"),
    ],
    ids=[
        "upper",
        "space",
        "dash-first",
        "underscore-first",
        "too-long",
        "int",
        "bool",
        "empty",
        "dot",
        "accent",
    ],
)
def test_invalid_name(tmp_path: Path, yaml_name: str, shown: str) -> None:
    message = error_for(tmp_path, f"accounts:\n  - name: {yaml_name}\n    api_key_env: K\n")

    assert f"entry 1: name {shown} is not a valid account name" in message
    # The fix: what a name may be.
    assert "1-63 lowercase letters, digits, '-' or '_'" in message
    assert "partition key" in message


def test_missing_name(tmp_path: Path) -> None:
    message = error_for(tmp_path, "accounts:\n  - api_key_env: K\n")

    assert "entry 1: name None is not a valid account name" in message


def test_duplicate_names(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        "accounts:\n"
        "  - {name: acme, api_key_env: A}\n"
        "  - {name: globex, api_key_env: G}\n"
        "  - {name: acme, api_key_env: B}\n",
    )

    assert "entry 3: name 'acme' appears twice" in message
    assert "unique" in message


@pytest.mark.parametrize(
    "env",
    ["1KEY", "'MY KEY'", "SCHED-KEY", "''", "42", "[A]", "pasted_key_abc123"],
    ids=["digit-first", "space", "dash", "empty", "int", "list", "lower-case-key-like"],
)
def test_bad_api_key_env(tmp_path: Path, env: str) -> None:
    message = error_for(tmp_path, f"accounts:\n  - name: acme\n    api_key_env: {env}\n")

    # The value itself need not be repeated (it may be a pasted key: see below).
    assert "entry 1 (acme): api_key_env must be the NAME of the environment variable" in message
    assert "never the key itself" in message
    assert "SCHED_API_KEY__ACME" in message  # an example of a good one


def test_missing_api_key_env(tmp_path: Path) -> None:
    message = error_for(tmp_path, "accounts:\n  - name: acme\n")

    assert "entry 1 (acme): api_key_env must be the NAME of the environment variable" in message


def test_a_key_pasted_into_api_key_env_is_not_echoed(tmp_path: Path) -> None:
    # The likeliest way a key lands in the file: as the value of api_key_env instead of a variable name.
    message = error_for(tmp_path, f"accounts:\n  - name: acme\n    api_key_env: {SECRET}\n")

    assert "entry 1 (acme): api_key_env" in message
    assert SECRET not in message


def test_unknown_field_such_as_the_key_itself(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        f"accounts:\n  - name: acme\n    api_key_env: SCHED_API_KEY__ACME\n    api_key: {SECRET}\n",
    )

    assert "entry 1: unknown field(s) api_key" in message
    assert "allowed: name, api_key_env, base_url" in message
    assert "a key never goes in the file" in message
    assert SECRET not in message


def test_several_unknown_fields_are_listed_sorted(tmp_path: Path) -> None:
    message = error_for(
        tmp_path, "accounts:\n  - {name: acme, api_key_env: K, zone: x, Base_URL: y, token: z}\n"
    )

    assert "unknown field(s) Base_URL, token, zone" in message


@pytest.mark.parametrize(
    "url",
    ["ftp://api.cal.com/v2", "api.cal.com/v2", "https://", "'http:///v2'", "42", "''", "[https://a.b]"],
    ids=["ftp", "no-scheme", "no-host", "empty-host", "int", "empty", "list"],
)
def test_bad_base_url(tmp_path: Path, url: str) -> None:
    message = error_for(tmp_path, f"accounts:\n  - name: acme\n    api_key_env: K\n    base_url: {url}\n")

    assert "entry 1 (acme): base_url must be an http(s) URL such as https://api.cal.com/v2" in message


def test_bad_base_url_is_not_echoed(tmp_path: Path) -> None:
    # A URL may carry credentials; the message says what is wrong without repeating it.
    message = error_for(
        tmp_path, f"accounts:\n  - name: acme\n    api_key_env: K\n    base_url: ftp://u:{SECRET}@h/\n"
    )

    assert SECRET not in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = error_for(
        tmp_path,
        f"""
accounts:
  - name: acme
    api_key_env: SCHED_API_KEY__ACME
  - name: Bad Name
    api_key_env: K1
  - name: globex
    api_key_env: 9NOPE
  - just a string
  - name: initech
    api_key_env: K3
    api_key: {SECRET}
    base_url: ftp://x
  - name: acme
    api_key_env: K4
""",
    )

    lines = message.splitlines()
    assert lines[0].endswith("is invalid:")
    problems = [line for line in lines[1:] if line.startswith("- ")]
    assert len(problems) == 6, message
    assert problems[0].startswith("- entry 2: name 'Bad Name'")
    assert problems[1].startswith("- entry 3 (globex): api_key_env ")
    assert problems[2].startswith("- entry 4: expected a mapping")
    assert problems[3].startswith("- entry 5: unknown field(s) api_key")
    assert problems[4].startswith("- entry 5 (initech): base_url")
    assert problems[5].startswith("- entry 6: name 'acme' appears twice")
    assert SECRET not in message


# ---- the key ------------------------------------------------------------------------------------


def test_api_key_comes_from_the_named_variable() -> None:
    account = Account("acme", "SCHED_API_KEY__ACME")

    assert account.api_key({"SCHED_API_KEY__ACME": f"  {SECRET}\n"}) == SECRET  # stripped


def test_api_key_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHED_TEST_KEY__ACME", SECRET)

    assert Account("acme", "SCHED_TEST_KEY__ACME").api_key() == SECRET


@pytest.mark.parametrize(
    "environ",
    [{}, {"SCHED_API_KEY__ACME": ""}, {"SCHED_API_KEY__ACME": "   "}, {"OTHER": SECRET}],
    ids=["missing", "empty", "blank", "other-variable"],
)
def test_missing_or_empty_key_names_the_variable_and_no_value(environ: dict[str, str]) -> None:
    account = Account("acme", "SCHED_API_KEY__ACME")

    with pytest.raises(AccountsFileError) as info:
        account.api_key(environ)

    message = str(info.value)
    assert "account 'acme'" in message
    assert "environment variable SCHED_API_KEY__ACME" in message
    assert "is not set or empty" in message
    assert ACCOUNTS_FILE_ENV in message
    assert SECRET not in message


# ---- SCHED_ACCOUNTS_FILE ------------------------------------------------------------------------


def test_accounts_file_from_env() -> None:
    assert accounts_file_from_env({}) is None
    assert accounts_file_from_env({ACCOUNTS_FILE_ENV: ""}) is None
    assert accounts_file_from_env({ACCOUNTS_FILE_ENV: "  \t"}) is None
    assert accounts_file_from_env({ACCOUNTS_FILE_ENV: "/etc/sched/accounts.yaml"}) == Path(
        "/etc/sched/accounts.yaml"
    )
    assert accounts_file_from_env({ACCOUNTS_FILE_ENV: " rel/a.yaml "}) == Path("rel/a.yaml")
    assert accounts_file_from_env({ACCOUNTS_FILE_ENV: "~/a.yaml"}) == Path.home() / "a.yaml"


def test_accounts_file_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ACCOUNTS_FILE_ENV, raising=False)
    assert accounts_file_from_env() is None

    monkeypatch.setenv(ACCOUNTS_FILE_ENV, "/x/accounts.yaml")
    assert accounts_file_from_env() == Path("/x/accounts.yaml")


def test_the_file_named_by_the_variable_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts:\n  - {name: acme, api_key_env: K}\n")

    found = accounts_file_from_env({ACCOUNTS_FILE_ENV: str(path)})

    assert found is not None
    assert load_accounts(found).names == ["acme"]
