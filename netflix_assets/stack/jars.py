"""Java dependencies resolved from Maven Central into the download cache, once.

Each group is a small POM under stack/poms/. Maven does the resolution (transitive versions,
checksums); we copy the runtime jars into a folder keyed by the POM's hash, so editing a POM
re-resolves and an unchanged POM costs nothing. A damaged jar (a cut download) is detected by
opening it as a zip, and the group is resolved again from a clean slate.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

from netflix_assets import settings
from netflix_assets.stack.errors import StackError
from netflix_assets.stack.process import run

# A cold resolution downloads a few hundred MB; a stalled mirror must still end.
MAVEN_TIMEOUT_S = float(os.environ.get("NETFLIX_ASSETS_MAVEN_TIMEOUT_S", "1800"))

POM_DIR = Path(__file__).resolve().parent / "poms"
GROUPS = ("kafka", "spark", "flink")


def _pom(group: str) -> Path:
    pom = POM_DIR / f"{group}.xml"
    if not pom.is_file():
        raise StackError(f"no jar group '{group}': expected {pom}")
    return pom


def group_dir(group: str) -> Path:
    digest = hashlib.sha256(_pom(group).read_bytes()).hexdigest()[:12]
    return settings.cache_dir() / "jars" / f"{group}-{digest}"


def damaged_jars(folder: Path) -> list[Path]:
    """Jars in a folder that do not open as zip archives."""
    broken = []
    for jar in folder.glob("*.jar"):
        try:
            with zipfile.ZipFile(jar) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError):
            broken.append(jar)
    return broken


def _purge_from_maven_repo(names: list[str]) -> None:
    repo = settings.cache_dir() / "m2"
    for name in names:
        for cached in repo.rglob(name):
            cached.unlink(missing_ok=True)


def _maven(pom: Path, out: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven is not installed: run `make bootstrap` (or apt-get install maven)")
    if shutil.which("java") is None:
        raise StackError(
            "Java is not installed: run `make bootstrap` (apt-get install openjdk-17-jre-headless)"
        )
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={out}",
        "-DincludeScope=runtime",
        f"-Dmaven.repo.local={settings.cache_dir() / 'm2'}",
    ]
    what = f"Maven resolving the '{pom.stem}' jars (NETFLIX_ASSETS_MAVEN_TIMEOUT_S)"
    result = run(cmd, what, MAVEN_TIMEOUT_S)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-2000:]
        raise StackError(
            f"Maven could not resolve the '{pom.stem}' jars from Maven Central:\n{tail}"
        )


def resolve(group: str) -> list[Path]:
    """The group's jars, resolving them on first use; repairs a damaged cache once."""
    out = group_dir(group)
    marker = out / ".complete"
    if marker.is_file() and not damaged_jars(out):
        return _record(group, sorted(out.glob("*.jar")))
    for _attempt in range(2):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        _maven(_pom(group), out)
        broken = damaged_jars(out)
        if not broken:
            marker.write_text("ok\n")
            return _record(group, sorted(out.glob("*.jar")))
        _purge_from_maven_repo([b.name for b in broken])
    raise StackError(f"jars of '{group}' stay damaged after a fresh download: {broken}")


def _record(group: str, found: list[Path]) -> list[Path]:
    """Writes the list the programs read (settings.jars): they take their jars as configuration
    and never resolve them themselves."""
    manifest = settings.jar_manifest(group)
    text = "".join(f"{j}\n" for j in found)
    if not manifest.is_file() or manifest.read_text() != text:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(text)
    return found


def classpath(group: str) -> str:
    return ":".join(str(j) for j in resolve(group))
