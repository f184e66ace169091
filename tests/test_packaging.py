"""The root pyproject is the development install of the three packages; each member releases on its own."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = ("jpcurate", "jpmoe", "jpalign")


def _project(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))["project"]


def _reqs(lines: list[str]) -> dict[str, Requirement]:
    out = {}
    for line in lines:
        req = Requirement(line)
        out[(req.name.lower().replace("_", "-"), str(req.marker))] = req
    return out


@pytest.mark.parametrize("member", MEMBERS)
def test_root_declares_member_dependencies(member):
    root = _project(ROOT / "pyproject.toml")
    mine = _project(ROOT / "src" / member / "pyproject.toml")
    root_deps = _reqs(root["dependencies"])
    for key, req in _reqs(mine.get("dependencies", [])).items():
        assert key in root_deps, f"{member} needs {req} but the root pyproject does not declare it"
        assert root_deps[key].specifier == req.specifier, f"{member}: {req} vs root {root_deps[key]}"
    for extra, lines in mine.get("optional-dependencies", {}).items():
        root_extra = _reqs(root.get("optional-dependencies", {}).get(extra, []))
        for key, req in _reqs(lines).items():
            assert key in root_extra, f"{member}[{extra}] needs {req}; the root's [{extra}] extra lacks it"
            assert root_extra[key].specifier == req.specifier


def test_root_installs_every_member_package():
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert sorted(wheel["packages"]) == sorted(f"src/{m}" for m in MEMBERS)


@pytest.mark.slow
@pytest.mark.parametrize("member", MEMBERS)
def test_member_wheel_holds_only_its_package(member, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
         str(ROOT / "src" / member)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob(f"{member}-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {member, next(t for t in tops if t.endswith(".dist-info"))}, tops
    assert f"{member}/__init__.py" in names
    assert not any(n.endswith("pyproject.toml") for n in names)
