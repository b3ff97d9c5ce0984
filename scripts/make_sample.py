"""Rebuild classit's bundled data sample (classit/sample/sample.tar.xz) from a BabyLM data folder.

    python scripts/make_sample.py --data $CLASSIT_DATA_DIR

Takes the start of the Gutenberg (public domain) and Simple Wikipedia (CC BY-SA) files of
``babylm-corpus/train_3M`` and ``babylm-corpus/dev``, whole documents from the first
``= = = Title = = =`` marker on, the last one cut at a sentence end so that each file holds at
most the requested number of words; and the first lines of every fast BLiMP and EWoK file.
The same input gives the same archive, byte for byte.
"""

import argparse
import io
import os
import re
import tarfile
from pathlib import Path

from classit.data.corpus import TITLE, count_words
from classit.layout import FAST_EVAL

CORPUS = {"babylm-corpus/train_3M": ".train", "babylm-corpus/dev": ".dev"}
DOMAINS = ("gutenberg", "simple_wiki")
EVAL_SETS = (f"{FAST_EVAL}/blimp_fast", f"{FAST_EVAL}/ewok_fast")
SENTENCE_END = re.compile(r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)[.!?][\"'’”)\]]*(?=\s)")
README = """\
# classit's bundled data sample

A small subset of the BabyLM data, so that `classit fit --config configs/demo.yaml` runs without
downloading anything. It is laid out like a classit data folder (CLASSIT_DATA_DIR). It is far too
small for real results: `classit data download --out DIR` fetches the full BabyLM corpus and
evaluation sets, then `export CLASSIT_DATA_DIR=DIR`.

| files | words / items | source | licence |
|---|---|---|---|
{rows}

How it was cut: from each corpus file, whole documents from its first `= = = Title = = =` marker
on (the last cut at a sentence end); from each BLiMP and EWoK file, its first lines. Made by
classit's `scripts/make_sample.py` from the BabyLM 2025 data (https://osf.io/ryjfm/).

Sources and licences:
- Gutenberg: books of Project Gutenberg (https://www.gutenberg.org), public domain in the USA, as
  preprocessed by the BabyLM Challenge (Project Gutenberg headers and licence text removed).
- Simple Wikipedia: articles of the Simple English Wikipedia (https://simple.wikipedia.org) by its
  contributors, licensed CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/);
  changed: preprocessed by the BabyLM Challenge and cut to a subset here. This text (and only
  this text) stays under CC BY-SA 4.0.
- BLiMP: Warstadt et al. (2020), "BLiMP: The Benchmark of Linguistic Minimal Pairs for English",
  CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); the BabyLM 2025 fast subset, cut further.
- EWoK: Ivanova et al. (2024), "Elements of World Knowledge", CC BY 4.0; the BabyLM 2025 fast
  subset, cut further. For evaluation only: do not train on it.
"""


def head_words(text: str, words: int) -> str:
    """The documents of ``text`` from its first title marker on, up to ``words`` words; a document
    that does not fit whole is cut at its last sentence end within the budget."""
    first = TITLE.search(text)
    if first is None:
        raise ValueError("no '= = = Title = = =' marker: not a BabyLM corpus file")
    text = text[first.start():].strip()
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    if len(ends) <= words:
        return text
    cut = ends[words - 1]
    last = list(TITLE.finditer(text, 0, cut))[-1]  # the marker of the document the budget ends in
    sentences = [m.end() for m in SENTENCE_END.finditer(text, last.end(), cut)]
    return text[:sentences[-1] if sentences else last.start() or cut].rstrip()


def sample_files(data: Path, train_words: int, dev_words: int, blimp_items: int, ewok_items: int) -> dict[str, str]:
    """Relative path → text of every file of the sample, README.md included."""
    files, rows = {}, []
    for folder, suffix in CORPUS.items():
        for domain in DOMAINS:
            path = f"{folder}/{domain}{suffix}"
            text = head_words((data / path).read_text(encoding="utf-8"), train_words if suffix == ".train" else dev_words)
            files[path] = text + "\n"
            licence = "public domain" if domain == "gutenberg" else "CC BY-SA 4.0"
            rows.append(f"| `{path}` | {count_words(text):,} words | BabyLM 2025 corpus, {domain} | {licence} |")
    for folder, items in zip(EVAL_SETS, (blimp_items, ewok_items)):
        sources = sorted((data / folder).glob("*.jsonl"))
        if not sources:
            raise FileNotFoundError(f"{data / folder}: no *.jsonl files")
        for source in sources:
            with open(source, encoding="utf-8") as f:
                files[f"{folder}/{source.name}"] = "".join(line for _, line in zip(range(items), f))
        name = "BLiMP" if "blimp" in folder else "EWoK"
        rows.append(f"| `{folder}/*.jsonl` ({len(sources)} files) | {items} items each, "
                    f"{len(sources) * items:,} in all | BabyLM 2025 fast evaluation, {name} | CC BY 4.0 |")
    files["README.md"] = README.format(rows="\n".join(rows))
    return files


def write_archive(files: dict[str, str], out: Path) -> None:
    """A reproducible .tar.xz: sorted members, fixed times, owners and modes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    with tarfile.open(part, "w:xz", format=tarfile.PAX_FORMAT, preset=9) as tar:
        for name in sorted(files):
            data = files[name].encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    os.replace(part, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("CLASSIT_DATA_DIR"),
                        help="BabyLM data folder (default $CLASSIT_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "classit" / "sample" / "sample.tar.xz")
    parser.add_argument("--train_words", type=int, default=150_000, help="words per training file")
    parser.add_argument("--dev_words", type=int, default=15_000, help="words per dev file")
    parser.add_argument("--blimp_items", type=int, default=5, help="lines kept of each BLiMP file")
    parser.add_argument("--ewok_items", type=int, default=20, help="lines kept of each EWoK file")
    args = parser.parse_args()
    if not args.data:
        parser.error("give --data DIR or set CLASSIT_DATA_DIR")
    files = sample_files(Path(args.data), args.train_words, args.dev_words, args.blimp_items, args.ewok_items)
    write_archive(files, args.out)
    print(f"{args.out}: {len(files)} files, {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
