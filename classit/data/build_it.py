"""``classit data build-it``: the CLASS-IT instruction sets written as JSONL, to inspect or to publish."""

from dataclasses import asdict
from pathlib import Path

from classit.data import store
from classit.data.lectures import LMLectureGenerator, TemplateLectureGenerator, read_articles
from classit.data.switchboard import switchboard_examples
from classit.files import write_jsonl


def build_it(out: str | None = None, data_dir: str | None = None, swda: str | None = "swda/train",
             switchboard: str | None = None, simple_wiki: str = "babylm-corpus/train_3M/simple_wiki.train",
             lm: str | None = None, context_turns: int = 0, min_words: int = 3, drop_backchannels: bool = True) -> None:
    """Build the CLASS-IT instruction sets (Switchboard, Simple Wikipedia) and write them as JSONL.

    Writes ``OUT/switchboard.jsonl`` and ``OUT/simple_wiki.jsonl``.

    Args:
        out: output folder; default ``DATA_DIR/classit-it``.
        data_dir: the data folder; default ``$CLASSIT_DATA_DIR``.
        swda: a folder of SwDA conversations inside ``data_dir`` (None: leave out).
        switchboard: a BabyLM switchboard file inside ``data_dir`` (``A:``/``B:`` lines) to add (None: leave out).
        simple_wiki: the Simple Wikipedia file inside ``data_dir``.
        lm: a local Hugging Face causal LM folder that writes the lecture questions (default: templates).
        context_turns / min_words / drop_backchannels: Switchboard pairing, see :class:`classit.data.switchboard.Switchboard`.
    """
    root = store.data_dir(data_dir)
    target = Path(out) if out else root / "classit-it"
    generator = LMLectureGenerator(lm) if lm else TemplateLectureGenerator()
    sets = {
        "switchboard": switchboard_examples(root / swda if swda else None, root / switchboard if switchboard else None,
                                            context_turns, min_words, drop_backchannels),
        "simple_wiki": list(generator.generate(read_articles(root / simple_wiki))),
    }
    for name, examples in sets.items():
        write_jsonl(map(asdict, examples), target / f"{name}.jsonl")
        print(f"{name}: {len(examples):,} examples, {sum(x.words for x in examples):,} words "
              f"-> {target / f'{name}.jsonl'}")
