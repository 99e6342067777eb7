"""The Dockerfile (no Docker engine runs here, so the file is checked, not built): the image holds
every package the distribution installs, or its `supportbridge` command cannot start."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO as ROOT


def test_the_image_holds_every_package_the_distribution_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.MULTILINE))

    assert sorted(packages - copied) == []
