"""docs/architecture.md matches the code: every module it names exists and every module is named."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "scoring"
PAGE = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


def _modules_table() -> dict[str, str]:
    section = PAGE.split("## The modules of each package", 1)[1]
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", section, flags=re.MULTILINE)
    return dict(rows)


def test_every_module_of_every_package_is_on_the_page_and_exists() -> None:
    table = _modules_table()
    for package, text in table.items():
        named = set(re.findall(r"`(\w+)`", text)) | set(re.findall(r"`(\w+)/`", text))
        here = {p.stem for p in (PACKAGE / package).glob("*.py") if p.stem != "__init__"}
        here |= {p.name for p in (PACKAGE / package).iterdir() if p.is_dir() and (p / "__init__.py").exists()}
        assert here <= named, f"{package}: not on docs/architecture.md: {sorted(here - named)}"
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subpackages == set(table), "each package of src/scoring has a row of the modules table"


def test_the_layers_on_the_page_are_the_checked_ones() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    checked = [sorted(m.strip().removeprefix("scoring.") for m in layer.split("|")) for layer in layers]
    rows = re.findall(r"^\| (\d+) \| ((?:`scoring\.\w+`(?:, )?)+) \|", PAGE, flags=re.MULTILINE)
    shown = [sorted(re.findall(r"`scoring\.(\w+)`", packages)) for _, packages in rows]
    assert shown == checked
