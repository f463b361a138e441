"""The run config: every setting of a run, saved as config.json in its folder.

Its fields, defaults and checks come from the table in tfclf/settings.py.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from tfclf.data import Columns
from tfclf.errors import TfclfError
from tfclf.io import atomic_write_json, read_json_object
from tfclf.settings import RUN, check_all


class _RunConfigMethods:
    def __post_init__(self) -> None:
        self.label_columns = tuple(self.label_columns)
        check_all(dataclasses.asdict(self))

    @property
    def columns(self) -> Columns:
        return Columns(self.text_column, self.label_column, self.label_sep or None, self.label_columns)

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, dataclasses.asdict(self))

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "RunConfig":
        """The config of a run folder; a folder without one is a user mistake, said in one line."""
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise TfclfError(f"{run_dir}: not a tfclf run folder (no config.json)")
        return cls.load(path)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """A saved config; settings it lacks take their defaults, ones this version does not know
        are ignored, and a file that is not a JSON object is said in one line."""
        saved = read_json_object(path, "config.json")
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in saved.items() if k in known})
        except TfclfError as err:
            raise TfclfError(f"{path}: {err}") from None


RunConfig = dataclasses.make_dataclass(
    "RunConfig", [(s.name, s.type | None if s.optional else s.type, dataclasses.field(default=s.default))
                  for s in RUN],
    bases=(_RunConfigMethods,), namespace={"__module__": __name__,
                                           "__doc__": "Every setting of a run (tfclf/settings.py)."})
