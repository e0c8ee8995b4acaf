from pathlib import Path

import pytest

from infrastructure.settings import PRO_BASE_URL, PUBLIC_BASE_URL, Settings, SettingsError

SECRET = "s" * 32


def test_defaults_need_nothing():
    s = Settings.from_env({})
    assert (s.database_url, s.redis_url, s.jwt_secret) == (None, None, None)
    assert s.coingecko_base_url == PUBLIC_BASE_URL and s.coingecko_api_plan == "public"
    assert (s.coingecko_calls_per_minute, s.jwt_expires_seconds) == (30, 3600)
    assert (s.price_poll_interval_seconds, s.history_limit, s.bcrypt_rounds) == (30.0, 100, 12)
    assert s.price_poller_enabled and s.data_dir == Path("data")


def test_reads_everything():
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgres://u@db:5432/x",
            "REDIS_URL": "redis://r:6379/0",
            "COINGECKO_API_KEY": "CG-abc",
            "COINGECKO_API_PLAN": "PRO",
            "COINGECKO_CALLS_PER_MINUTE": "500",
            "JWT_SECRET": SECRET,
            "JWT_EXPIRES_SECONDS": "60",
            "PRICE_POLL_INTERVAL_SECONDS": "2.5",
            "HISTORY_LIMIT": "7",
            "BCRYPT_ROUNDS": "4",
            "PRICE_POLLER_ENABLED": "false",
            "DATA_DIR": "/tmp/x",
        }
    )
    assert s.coingecko_api_plan == "pro" and s.coingecko_base_url == PRO_BASE_URL
    assert (s.coingecko_calls_per_minute, s.jwt_expires_seconds, s.history_limit) == (500, 60, 7)
    assert s.price_poll_interval_seconds == 2.5 and s.bcrypt_rounds == 4
    assert not s.price_poller_enabled and s.jwt_secret == SECRET


def test_a_key_alone_means_demo_and_base_url_wins():
    s = Settings.from_env(
        {"COINGECKO_API_KEY": "CG-x", "COINGECKO_BASE_URL": "http://127.0.0.1:9/"}
    )
    assert s.coingecko_api_plan == "demo"
    assert s.coingecko_base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    "env, names",
    [
        ({"JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"HISTORY_LIMIT": "0"}, "HISTORY_LIMIT"),
        ({"HISTORY_LIMIT": "ten"}, "HISTORY_LIMIT"),
        ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS"),
        ({"PRICE_POLL_INTERVAL_SECONDS": "-1"}, "PRICE_POLL_INTERVAL_SECONDS"),
        ({"COINGECKO_CALLS_PER_MINUTE": "0"}, "COINGECKO_CALLS_PER_MINUTE"),
        ({"JWT_EXPIRES_SECONDS": "1.5"}, "JWT_EXPIRES_SECONDS"),
        ({"COINGECKO_API_PLAN": "gold"}, "COINGECKO_API_PLAN"),
        ({"COINGECKO_API_PLAN": "pro"}, "COINGECKO_API_KEY"),
        ({"COINGECKO_BASE_URL": "ftp://x"}, "COINGECKO_BASE_URL"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"PRICE_POLLER_ENABLED": "maybe"}, "PRICE_POLLER_ENABLED"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_bad_values_stop_start_up_naming_the_setting(env, names):
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


@pytest.mark.parametrize("blank", ["   ", "\t", " \t\n "])
def test_a_jwt_secret_of_blanks_is_refused_not_taken_as_unset(blank, monkeypatch):
    """Unset, the server would make up a secret of its own: a secret of spaces must
    stop it instead, from a mapping and from the process environment alike."""
    with pytest.raises(SettingsError, match="JWT_SECRET") as refused:
        Settings.from_env({"JWT_SECRET": blank})
    assert "32 bytes" in str(refused.value)
    monkeypatch.setenv("JWT_SECRET", blank)
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        Settings.from_env()


def test_an_empty_jwt_secret_is_unset(monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "")
    assert Settings.from_env().jwt_secret is None
    assert Settings.from_env({"JWT_SECRET": ""}).jwt_secret is None


def test_a_mapping_is_the_only_source_the_environment_is_not_read(monkeypatch):
    # pydantic-settings reads the environment even in model_validate.
    monkeypatch.setenv("HISTORY_LIMIT", "0")
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    s = Settings.from_env({"LOG_FORMAT": "json"})
    assert (s.history_limit, s.log_level, s.log_format) == (100, "INFO", "json")


@pytest.mark.parametrize(
    ("env", "calls"),
    [
        ({}, 0),  # keyless: no monthly budget
        ({"COINGECKO_API_KEY": "CG-abc"}, 10_000),  # the demo plan's credits
        ({"COINGECKO_API_KEY": "CG-abc", "COINGECKO_CALLS_PER_MONTH": "0"}, 0),
        ({"COINGECKO_API_KEY": "CG-abc", "COINGECKO_API_PLAN": "pro"}, 0),
        ({"COINGECKO_CALLS_PER_MONTH": "500000"}, 500_000),
    ],
)
def test_the_monthly_budget_follows_the_plan_unless_set(env, calls):
    assert Settings.from_env(env).coingecko_calls_per_month == calls


def test_a_negative_monthly_budget_is_refused():
    with pytest.raises(SettingsError, match="COINGECKO_CALLS_PER_MONTH"):
        Settings.from_env({"COINGECKO_CALLS_PER_MONTH": "-1"})
