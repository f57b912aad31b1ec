"""pyproject.toml and environment.yml list the same packages; the setup files are wired up."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO_ROOT


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


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_gitignore_keeps_runs_and_venv_out() -> None:
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert "runs/" in ignored and ".venv/" in ignored
