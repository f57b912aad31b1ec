"""pyproject.toml and environment.yml list the same packages; the setup files are wired up."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT

#: What a build needs from the checkout (the rest of the tree is not packaged).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "rlbreakout")
#: Text that means setuptools (or pip relaying it) warned about how the project is declared.
BUILD_WARNING = re.compile(r"SetuptoolsDeprecationWarning|BuildBackendWarning|SetuptoolsWarning|is deprecated",
                           re.IGNORECASE)


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_packages() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        names |= {_name(r) for r in extra}
    return names


def environment_yml_packages() -> set[str]:
    names, in_pip = set(), False
    for line in (REPO_ROOT / "environment.yml").read_text().splitlines():
        stripped = line.strip()
        if stripped == "- pip:":
            in_pip = True
            continue
        if in_pip and stripped.startswith("- ") and not stripped.startswith("- -e"):
            names.add(_name(stripped[2:]))
    return names


def test_environment_yml_matches_pyproject() -> None:
    assert environment_yml_packages() == pyproject_packages()


def test_runtime_dependencies_named_by_the_foundation_issue() -> None:
    required = {"gymnasium", "ale-py", "stable-baselines3", "torch", "tensorboard", "optuna",
                "opencv-python-headless", "imageio", "numpy", "tqdm", "rich"}
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert required <= {_name(r) for r in project["dependencies"]}
    assert {"dev", "retro", "postgres"} <= set(project["optional-dependencies"])
    assert "python=3.11" in (REPO_ROOT / "environment.yml").read_text()


def copy_build_inputs(destination: Path) -> Path:
    destination.mkdir()
    for name in BUILD_INPUTS:
        copy = shutil.copytree if (REPO_ROOT / name).is_dir() else shutil.copy2
        copy(REPO_ROOT / name, destination / name)
    return destination


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_gitignore_keeps_runs_and_venv_out() -> None:
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "runs/" in ignored and ".venv/" in ignored


def test_license_is_an_spdx_string_with_its_file() -> None:
    toml = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert toml["project"]["license"] == "MIT"
    assert all((REPO_ROOT / name).is_file() for name in toml["project"]["license-files"])
    assert "setuptools>=77" in toml["build-system"]["requires"]


@pytest.mark.slow
def test_wheel_builds_without_setuptools_warnings(tmp_path: Path) -> None:
    """Build the wheel as `pip install -e .` would (isolated, the newest setuptools it may take).

    setuptools' deprecations (a TOML-table license, say) become build errors after their
    deadline, and before that they are the first thing a learner sees; pip relays them on
    its output, so any of them there fails this test. The build runs on a copy, so no
    build/ or egg-info folder lands in the checkout.
    """
    source = copy_build_inputs(tmp_path / "source")
    wheels = tmp_path / "wheels"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)],
                            capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert not BUILD_WARNING.search(output), output[-3000:]
    (wheel,) = wheels.glob("rlbreakout-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        assert "License-Expression: MIT" in metadata
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in archive.namelist())


#: Build the editable wheel as `make install` does, any setuptools warning (deprecation or
#: the "Editable installation" box) turned into an error.
EDITABLE_BUILD = """
import sys, warnings
from setuptools.warnings import SetuptoolsWarning
warnings.simplefilter("error", SetuptoolsWarning)
from setuptools import build_meta
print(build_meta.build_editable(sys.argv[1]))
"""


@pytest.mark.slow
def test_editable_install_builds_without_setuptools_warnings(tmp_path: Path) -> None:
    source = copy_build_inputs(tmp_path / "source")
    result = subprocess.run([sys.executable, "-c", EDITABLE_BUILD, str(tmp_path / "wheels")], cwd=source,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("rlbreakout-*.editable-*.whl")
    with zipfile.ZipFile(wheel) as archive:  # a plain .pth file pointing at the checkout
        assert any(name.endswith(".pth") for name in archive.namelist())
