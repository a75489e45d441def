from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from stellate.config import Config, Environ, EnvironError, undefined


def write(tmp_path: Path, text: str, name: str = ".env") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_env_file_parsing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# a comment\n"
        "\n"
        "   \n"
        "PLAIN=value\n"
        "  SPACED  =  padded value  \n"
        'DOUBLE="quoted # not a comment"\n'
        "SINGLE='single'\n"
        "MISMATCHED='a\"\n"
        'INNER="a "b" c"\n'
        'ONE_QUOTE="\n'
        "EMPTY=\n"
        "EQUALS=a=b=c\n"
        "    # indented comment\n",
    )
    config = Config(path, environ={})
    assert config.file_values == {
        "PLAIN": "value",
        "SPACED": "padded value",
        "DOUBLE": "quoted # not a comment",
        "SINGLE": "single",
        "MISMATCHED": "'a\"",
        "INNER": 'a "b" c',
        "ONE_QUOTE": '"',
        "EMPTY": "",
        "EQUALS": "a=b=c",
    }


@pytest.mark.parametrize("line", ["DEBUG true", "=value", "  = x"])
def test_env_file_line_without_key_or_equals_is_reported(tmp_path: Path, line: str) -> None:
    path = write(tmp_path, f"OK=1\n{line}\n")
    with pytest.raises(ValueError, match=r"line 2: expected 'KEY=value'") as info:
        Config(path, environ={})
    assert str(path) in str(info.value)


def test_env_file_error_does_not_echo_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "s3cr3t-token-pasted-by-mistake\n")
    with pytest.raises(ValueError) as info:
        Config(path, environ={})
    assert "s3cr3t" not in str(info.value)


def test_env_file_encoding(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes("NAME=caf\xe9\n".encode("latin-1"))
    assert Config(path, environ={}, encoding="latin-1")("NAME") == "caf\xe9"
    with pytest.raises(UnicodeDecodeError):
        Config(path, environ={})


def test_missing_env_file_warns_and_uses_environment(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    with pytest.warns(UserWarning, match="nope.env' not found"):
        config = Config(missing, environ={"A": "1"})
    assert config("A") == "1"
    assert config.file_values == {}


def test_environment_wins_over_file_and_file_over_default(tmp_path: Path) -> None:
    path = write(tmp_path, "BOTH=from-file\nFILE_ONLY=file\n")
    config = Config(str(path), environ={"BOTH": "from-env"})
    assert config("BOTH") == "from-env"
    assert config("FILE_ONLY", default="default") == "file"
    assert config("NEITHER", default="default") == "default"


def test_missing_key_without_default_names_the_key() -> None:
    config = Config(environ={})
    with pytest.raises(KeyError, match="'MISSING' is missing"):
        config("MISSING")
    with pytest.raises(KeyError, match="'MISSING'"):
        config.get("MISSING", cast=int)


def test_none_default_is_returned_uncast() -> None:
    config = Config(environ={})
    assert config("X", default=None) is None
    assert config("X", cast=int, default=None) is None


def test_default_is_cast() -> None:
    config = Config(environ={})
    assert config("PORT", cast=int, default="8000") == 8000
    assert config("DEBUG", cast=bool, default="TRUE") is True


def test_undefined_is_the_default_marker() -> None:
    config = Config(environ={})
    with pytest.raises(KeyError):
        config("X", default=undefined)


def test_prefix_applies_to_environment_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "APP_NAME=file\nNAME=unprefixed\n")
    config = Config(path, environ={"APP_PORT": "80", "PORT": "1"}, env_prefix="APP_")
    assert config("PORT", cast=int) == 80
    assert config("NAME") == "file"
    with pytest.raises(KeyError, match="'APP_OTHER'"):
        config("OTHER")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("1", True),
        ("false", False),
        ("False", False),
        ("fAlSe", False),
        ("0", False),
    ],
)
def test_bool_cast(raw: str, expected: bool) -> None:
    assert Config(environ={"FLAG": raw})("FLAG", cast=bool) is expected


@pytest.mark.parametrize("raw", ["yes", "", "2", "truee", "on"])
def test_bool_cast_rejects_other_strings(raw: str) -> None:
    config = Config(environ={"FLAG": raw})
    with pytest.raises(ValueError, match=f"Config 'FLAG' has value '{raw}'. Not a valid bool"):
        config("FLAG", cast=bool)


def test_bool_cast_of_non_string_default_uses_bool() -> None:
    assert Config(environ={})("FLAG", cast=bool, default=0) is False
    assert Config(environ={})("FLAG", cast=bool, default=False) is False


def test_cast_error_names_key_value_and_type() -> None:
    config = Config(environ={"PORT": "eighty"})
    message = r"Config 'PORT' has value 'eighty'\. Not a valid int\.$"
    with pytest.raises(ValueError, match=message) as info:
        config("PORT", cast=int)
    assert isinstance(info.value.__cause__, ValueError)


def test_cast_error_from_callable_without_name() -> None:
    class Caster:
        def __call__(self, value: Any) -> Any:
            raise TypeError("no")

        def __repr__(self) -> str:
            return "<Caster>"

    with pytest.raises(ValueError, match="Not a valid <Caster>"):
        Config(environ={"K": "v"})("K", cast=Caster())


def test_custom_cast_and_exceptions_other_than_value_error_propagate() -> None:
    config = Config(environ={"PATH_LIKE": "/srv"})
    assert config("PATH_LIKE", cast=Path) == Path("/srv")

    def boom(value: str) -> str:
        raise RuntimeError("bug in cast")

    with pytest.raises(RuntimeError, match="bug in cast"):
        config("PATH_LIKE", cast=boom)


def test_unknown_cast_is_a_clear_type_error() -> None:
    config = Config(environ={"PORT": "1"})
    with pytest.raises(TypeError, match="Config 'PORT': cast must be callable, got 'int'"):
        config("PORT", cast="int")  # type: ignore[call-overload]


def test_environ_refuses_changes_to_read_keys() -> None:
    backing: dict[str, str] = {"READ": "1", "UNREAD": "2"}
    env = Environ(backing)
    assert env["READ"] == "1"
    with pytest.raises(EnvironError, match=r"set environ\['READ'\]"):
        env["READ"] = "changed"
    with pytest.raises(EnvironError, match=r"delete environ\['READ'\]"):
        del env["READ"]
    assert backing["READ"] == "1"
    env["UNREAD"] = "3"
    assert backing["UNREAD"] == "3"
    del env["UNREAD"]
    assert "UNREAD" not in backing
    env["NEW"] = "4"
    assert backing["NEW"] == "4"


def test_environ_absent_key_read_is_frozen_too() -> None:
    env = Environ({})
    config = Config(environ=env)
    assert config("LATE", default="d") == "d"
    with pytest.raises(EnvironError):
        env["LATE"] = "too late"


def test_environ_iter_len_and_default_backing(monkeypatch: pytest.MonkeyPatch) -> None:
    env = Environ({"A": "1", "B": "2"})
    assert sorted(env) == ["A", "B"]
    assert len(env) == 2
    assert dict(env) == {"A": "1", "B": "2"}
    monkeypatch.setenv("STELLATE_TEST_CONFIG_VAR", "here")
    assert Environ()["STELLATE_TEST_CONFIG_VAR"] == os.environ["STELLATE_TEST_CONFIG_VAR"]


def test_module_environ_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from stellate import config as config_module

    monkeypatch.setenv("STELLATE_TEST_CONFIG_DEFAULT", "yes")
    assert isinstance(config_module.environ, Environ)
    assert Config()("STELLATE_TEST_CONFIG_DEFAULT") == "yes"


def test_secret_and_comma_separated_strings_are_reexported() -> None:
    from stellate import config as config_module
    from stellate import datastructures

    assert config_module.Secret is datastructures.Secret
    assert config_module.CommaSeparatedStrings is datastructures.CommaSeparatedStrings
    config = Config(environ={"KEY": "hunter2", "HOSTS": "a.com, b.com"})
    secret = config("KEY", cast=config_module.Secret)
    assert "hunter2" not in repr(secret)
    assert str(secret) == "hunter2"
    assert list(config("HOSTS", cast=config_module.CommaSeparatedStrings)) == ["a.com", "b.com"]
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        config_module.Nope  # noqa: B018
