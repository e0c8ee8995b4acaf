"""docker-compose.yml builds the image once and passes every setting of the service
through from the host's environment (``make container-test`` runs the stack itself)."""

import re
from pathlib import Path

import yaml

from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Set by the stack itself (its own PostgreSQL and Redis) or meaningless in a container.
STACK_OWN = {"DATABASE_URL", "REDIS_URL"}
NOT_PASSED = {"LISTEN_DATABASE_URL", "DATA_DIR"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_app_passes_every_setting_through_from_the_host():
    environment = compose()["services"]["app"]["environment"]
    names = [name.upper() for name in Settings.model_fields]
    assert list(environment) == [name for name in names if name not in NOT_PASSED]
    passed = {name: value for name, value in environment.items() if name not in STACK_OWN}
    wrong = {
        name: value
        for name, value in passed.items()
        if not re.fullmatch(rf"\$\{{{name}:-[^}}]*\}}", str(value))
    }
    assert not wrong, f"not ${{NAME:-default}}: {wrong}"


def test_one_service_builds_the_image_the_others_run():
    services = compose()["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["migrate"]
    assert services["app"]["image"] == services["migrate"]["image"]
