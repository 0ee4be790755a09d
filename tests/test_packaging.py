"""The wheel a plain ``pip install .`` makes, as deploy/*.Dockerfile install it.

The dev venv holds an editable install (the repository itself on sys.path), so a package or data
file left out of the wheel goes unnoticed by every other test while the images fail at start with
``ModuleNotFoundError``. Here the wheel is built from a copy of the Docker build context (the
repository less what .dockerignore drops), offline, with the venv's own setuptools; then it is
checked against the source tree and the services are imported from it, unpacked, in a subprocess
whose ``PYTHONPATH`` puts the unpacked wheel ahead of the editable install.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
#: The top-level packages the wheel ships; everything under them ships too.
PACKAGES = ("protos", "shared", "api_service", "executor_service", "sentinel_cli", "sentinel_client")
#: What the images start: the console script's module, the health probe and the two servers.
ENTRY_MODULES = ("sentinel_cli.main", "sentinel_cli.healthcheck", "api_service.server", "executor_service.server")
#: Build output that is no part of the sources, wherever it lies.
BYPRODUCTS = ("__pycache__", "*.pyc")

#: Run inside the unpacked wheel: argv[1] is its directory, argv[2:] the top-level packages
#: (ENTRY_MODULES and LUA_SCRIPTS are filled in before).
IMPORT_CHECK = """
import importlib
import pkgutil
import sys
from importlib.metadata import distributions
from pathlib import Path

site = Path(sys.argv[1]).resolve()
packages = sys.argv[2:]


def fail(name):
    raise ImportError(f"cannot import {name}")


for name in packages:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, prefix=name + ".", onerror=fail):
        importlib.import_module(info.name)

for name in ENTRY_MODULES:
    importlib.import_module(name)

outside = sorted(
    f"{name} ({module.__file__})"
    for name, module in sys.modules.items()
    if name.split(".")[0] in packages
    and not Path(module.__file__ or "").resolve().is_relative_to(site)
)
assert not outside, f"imported from outside the wheel: {outside}"

# The data files the code reads at run time, found where the code looks for them.
from api_service.http.context import DASHBOARD_DIR
from sentinel_cli.dev import DEMO_SITE
from shared import scripts

for name in LUA_SCRIPTS:
    assert scripts.source(name), name
for directory in (DASHBOARD_DIR, DEMO_SITE):
    assert directory.resolve().is_relative_to(site), directory
    assert (directory / "index.html").is_file(), directory

# The console script the images run (`sentinel api`, `sentinel executor`), from the wheel's metadata.
(sentinel,) = [
    entry
    for dist in distributions(path=[str(site)])
    for entry in dist.entry_points
    if entry.group == "console_scripts" and entry.name == "sentinel"
]
try:
    sentinel.load()(["--help"])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print("ok")
"""


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.lstrip().startswith("#")]


def dockerignored(relative: PurePosixPath, patterns: list[str]) -> bool:
    """Whether .dockerignore drops `relative` (the last matching pattern wins; `!` keeps)."""
    ignored = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        body = pattern.removeprefix("!").removeprefix("/")
        if body.startswith("**/"):
            matched = fnmatch.fnmatchcase(relative.name, body.removeprefix("**/"))
        else:
            matched = fnmatch.fnmatchcase(relative.as_posix(), body)
        if matched:
            ignored = not keep
    return ignored


def copy_build_context(dest: Path) -> None:
    """Copy what `COPY . .` puts in the image's build stage: the repository less .dockerignore."""
    patterns = dockerignore_patterns()

    def ignore(directory: str, names: list[str]) -> set[str]:
        base = PurePosixPath(Path(directory).relative_to(ROOT).as_posix())
        return {
            name
            for name in names
            if dockerignored(base / name, patterns) or any(fnmatch.fnmatchcase(name, p) for p in BYPRODUCTS)
        }

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)


def source_files(package: str) -> set[str]:
    """The files of a top-level package's source tree, as paths inside the wheel."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and not any(fnmatch.fnmatchcase(part, p) for part in path.relative_to(ROOT).parts for p in BYPRODUCTS)
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip install .` builds, made offline with the venv's setuptools."""
    base = tmp_path_factory.mktemp("packaging")
    context = base / "context"
    copy_build_context(context)
    for package in PACKAGES:
        assert (context / package / "__init__.py").is_file(), f".dockerignore drops {package}"
    out = base / "dist"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run(
        [*command, "--quiet", "--wheel-dir", str(out), str(context)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout}\n{result.stderr}"
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def unpacked(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_wheel_holds_every_package_and_file_of_the_sources(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == set(PACKAGES), "the wheel's top-level packages"

    source = set().union(*(source_files(package) for package in PACKAGES))
    source_packages = {str(PurePosixPath(f).parent) for f in source if f.endswith("/__init__.py")}
    wheel_packages = {str(PurePosixPath(f).parent) for f in names if f.endswith("/__init__.py")}
    missing = sorted(source_packages - wheel_packages)
    assert not missing, f"packages missing from the wheel: {missing}"
    # Modules, Lua scripts, the dashboard, the demo site, .proto/.pyi files, py.typed: all of it ships.
    missing = sorted(source - names)
    assert not missing, f"files missing from the wheel: {missing}"


def from_wheel(unpacked: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python *args` with the unpacked wheel first on the path, in its folder (not the checkout's)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=unpacked,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(unpacked), "PYTHONDONTWRITEBYTECODE": "1", **env},
        timeout=240,
        check=False,
    )


def test_services_import_from_the_unpacked_wheel(unpacked: Path) -> None:
    lua = sorted(path.stem for path in (ROOT / "shared" / "scripts").glob("*.lua"))
    assert lua, "no Lua scripts in shared/scripts"
    script = IMPORT_CHECK.replace("ENTRY_MODULES", repr(ENTRY_MODULES)).replace("LUA_SCRIPTS", repr(lua))
    result = from_wheel(unpacked, "-c", script, str(unpacked), *PACKAGES, PYTHONWARNINGS="error")
    assert result.returncode == 0, f"importing from the wheel failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.rstrip().endswith("ok")


def test_health_probe_runs_from_the_unpacked_wheel(unpacked: Path) -> None:
    """The images' HEALTHCHECK command, `python -m sentinel_cli.healthcheck`, starts from the wheel."""
    result = from_wheel(unpacked, "-m", "sentinel_cli.healthcheck", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: python -m sentinel_cli.healthcheck" in result.stdout
