"""`.env.example` and README's Configuration table list exactly the settings the code
reads, in the same order, and the example's values are the defaults."""

import re
from pathlib import Path

from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def setting_names() -> list[str]:
    """Every environment variable the settings read, in their documented order."""
    return [name.upper() for name in Settings.model_fields]


def env_example() -> list[tuple[str, str]]:
    pairs = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not NAME=value: {line!r}"
            pairs.append((name, value))
    return pairs


def readme_table() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE)


def test_env_example_names_every_setting_in_order():
    assert [name for name, _ in env_example()] == setting_names()


def test_readme_table_names_every_setting_in_the_same_order():
    assert readme_table() == setting_names()


def test_env_example_values_are_the_defaults():
    from_example = Settings.from_env(dict(env_example()))
    assert from_example == Settings.from_env({})
    # Every fixed default is written out, not left for the reader to guess; the three
    # that follow from the API key and plan are left empty, as setting them would pin it.
    derived = {"COINGECKO_API_PLAN", "COINGECKO_BASE_URL", "COINGECKO_CALLS_PER_MONTH"}
    written = {name for name, value in env_example() if value}
    defaults = Settings.from_env({}).model_dump()
    fixed = {name.upper() for name, value in defaults.items() if value is not None}
    assert written == fixed - derived
