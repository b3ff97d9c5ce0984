"""Switchboard dialogues → prompt/reply examples.

Utterances of one speaker in a row form a turn; a turn (after ``context_turns`` earlier turns,
one a line) is the prompt and the other speaker's next turn the reply. Backchannel-only turns
("Uh-huh.", SwDA act ``b``) are dropped first, so that the turns they interrupted join up again.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from classit.data.corpus import count_words, read_text
from classit.data.instructions import Example, InstructionSource

BACKCHANNEL_ACTS = {"b"}
BACKCHANNEL_WORDS = {"uh-huh", "um-hum", "mm-hmm", "yeah", "right", "oh", "okay", "huh", "um", "uh", "oh yeah",
                     "oh really", "really", "oh okay", "oh uh-huh", "i see", "oh i see"}


@dataclass
class Utterance:
    speaker: str
    text: str
    backchannel: bool
    line: int = 0  # its line in its file (from 1)


def _clean(text: str) -> str:
    """One space between words, none before punctuation (SwDA keeps gaps where it removed markup)."""
    text = re.sub(r"\s+([,.?!])", r"\1", " ".join(text.split()))
    return re.sub(r",(?:\s*,)+", ",", text)


def _is_backchannel_text(text: str) -> bool:
    return re.sub(r"[^\w\s'-]", "", text.lower()).strip() in BACKCHANNEL_WORDS


def read_swda(path: Path) -> list[Utterance]:
    """A SwDA conversation file: ``SPEAKER|text|dialogue-act`` a line (speaker A or B)."""
    utterances = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        speaker, _, rest = line.partition("|")
        text, _, act = rest.rpartition("|")
        if speaker not in ("A", "B") or not text.strip() or not act.strip():
            raise ValueError(f"{path}:{number}: malformed SwDA line {line[:80]!r}; "
                             "expected SPEAKER|text|dialogue-act with speaker A or B")
        utterances.append(Utterance(speaker, _clean(text), act.strip() in BACKCHANNEL_ACTS, number))
    return utterances


def read_babylm_switchboard(path: Path) -> list[Utterance]:
    """BabyLM's switchboard file: ``A:<tab>text`` or ``B:<tab>text`` a line, one stream of talk."""
    utterances = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"([AB]):\s+(\S.*)", line)
        if not match:
            raise ValueError(f"{path}:{number}: malformed switchboard line {line[:80]!r}; expected 'A:<tab>text'")
        text = _clean(match[2])
        utterances.append(Utterance(match[1], text, _is_backchannel_text(text), number))
    return utterances


def placed_turns(utterances: list[Utterance], drop_backchannels: bool = True) -> list[tuple[str, int, int]]:
    """Merge runs of one speaker into turns; drop backchannel-only turns and merge again. Each turn with the first
    and last line of its utterances."""
    merged: list[list] = []  # [speaker, texts, only backchannels, first line, last line]
    for u in utterances:
        if merged and merged[-1][0] == u.speaker:
            merged[-1][1].append(u.text)
            merged[-1][2] &= u.backchannel
            merged[-1][4] = u.line
        else:
            merged.append([u.speaker, [u.text], u.backchannel, u.line, u.line])
    if drop_backchannels:
        kept: list[list] = []
        for speaker, texts, backchannel, first, last in merged:
            if backchannel:
                continue
            if kept and kept[-1][0] == speaker:
                kept[-1][1].extend(texts)
                kept[-1][4] = last
            else:
                kept.append([speaker, texts, backchannel, first, last])
        merged = kept
    return [(" ".join(texts), first, last) for _, texts, _, first, last in merged]


def turns(utterances: list[Utterance], drop_backchannels: bool = True) -> list[str]:
    """The turns of :func:`placed_turns`, without their lines."""
    return [text for text, _, _ in placed_turns(utterances, drop_backchannels)]


def placed_pairs(utterances: list[Utterance], context_turns: int = 0, min_words: int = 3,
                 drop_backchannels: bool = True) -> list[tuple[int, int, Example]]:
    """Prompt → reply examples from one conversation (see the module docstring), each with the first line of its
    prompt and the last line of its reply."""
    said = placed_turns(utterances, drop_backchannels)
    examples = []
    for i in range(1, len(said)):
        if count_words(said[i - 1][0]) >= min_words and count_words(said[i][0]) >= min_words:
            first = max(0, i - 1 - context_turns)
            prompt = "\n".join(text for text, _, _ in said[first:i])
            examples.append((said[first][1], said[i][2], Example(prompt, said[i][0], "switchboard")))
    return examples


def dialogue_pairs(utterances: list[Utterance], context_turns: int = 0, min_words: int = 3,
                   drop_backchannels: bool = True) -> list[Example]:
    """The examples of :func:`placed_pairs`, without their lines."""
    return [x for _, _, x in placed_pairs(utterances, context_turns, min_words, drop_backchannels)]


def switchboard_examples(swda_dir: Path | None = None, babylm_file: Path | None = None, context_turns: int = 0,
                         min_words: int = 3, drop_backchannels: bool = True) -> list[Example]:
    """Pairs from every SwDA conversation in ``swda_dir`` (``*.txt``) and from a BabyLM switchboard file."""
    conversations = []
    if swda_dir is not None:
        files = sorted(Path(swda_dir).glob("*.txt"))
        if not files:
            raise FileNotFoundError(f"{swda_dir}: no SwDA conversation files (*.txt)")
        conversations += [read_swda(f) for f in files]
    if babylm_file is not None:
        conversations.append(read_babylm_switchboard(babylm_file))
    return [x for c in conversations for x in dialogue_pairs(c, context_turns, min_words, drop_backchannels)]


class Switchboard(InstructionSource):
    """Conversational examples: SwDA ``train``/``val`` splits (and optionally BabyLM's switchboard file for training)."""

    def __init__(self, swda: str | None = "swda", babylm_file: str | None = None, context_turns: int = 0,
                 min_words: int = 3, drop_backchannels: bool = True, pack: bool = False, train_on_prompt: bool = False):
        """
        Args:
            swda: the SwDA folder (``train``/``val`` subfolders of ``SPEAKER|text|act`` files) in the data directory.
            babylm_file: also train on this BabyLM switchboard file (``A:``/``B:`` lines), e.g.
                ``babylm-corpus/train_3M/switchboard.train`` (it overlaps with SwDA's training split).
            context_turns: earlier turns put before the prompt turn, one a line.
            min_words: least words in a prompt turn and in a reply.
            drop_backchannels: drop turns that are only backchannels ("Uh-huh.").
            pack: concatenate examples into rows of ``block_size`` tokens (they do not attend to each other).
            train_on_prompt: put the loss on the whole text, not only on the reply.
        """
        super().__init__(pack, train_on_prompt)
        if swda is None and babylm_file is None:
            raise ValueError("Switchboard needs swda or babylm_file")
        self.swda, self.babylm_file = swda, babylm_file
        self.pairing = {"context_turns": context_turns, "min_words": min_words, "drop_backchannels": drop_backchannels}

    def corpus_path(self) -> str | None:
        return self.babylm_file

    def read_corpus(self, path: str) -> None:
        self.babylm_file = path

    def options(self) -> dict:
        return self.pairing

    def _swda(self, split: str) -> Path | None:
        return self.root / self.swda / split if self.swda else None

    def input_files(self, split: str) -> list[Path]:
        swda = self._swda(split)
        files = sorted(swda.glob("*.txt")) if swda is not None and swda.is_dir() else []
        if split == "train" and self.babylm_file:
            files.append(self.root / self.babylm_file)
        if split == "train" and not files:  # no validation files only means no validation loss
            raise FileNotFoundError(f"data.sources.{self.name}.init_args.swda: no SwDA files in {swda}; SwDA is not "
                                    "bundled: copy swda_data/{train,val,test} of NathanDuran/Switchboard-Corpus to "
                                    f"{self.swda}/ of a data folder (CLASSIT_DATA_DIR; see the README), or give "
                                    "babylm_file")
        return files

    def placed_examples(self, split: str) -> list[tuple[str, Example]]:
        """The examples of :meth:`build_examples`, each at ``file:first-last`` (its prompt's first line to its reply's
        last)."""
        babylm = self.root / self.babylm_file if self.babylm_file else None
        return [(f"{f}:{first}-{last}", x) for f in self.input_files(split)
                for first, last, x in placed_pairs((read_babylm_switchboard if f == babylm else read_swda)(f),
                                                   **self.pairing)]

    def build_examples(self, split: str) -> list[Example]:
        swda = self._swda(split)
        babylm = self.root / self.babylm_file if self.babylm_file and split == "train" else None
        return switchboard_examples(swda if swda is not None and swda.is_dir() else None, babylm, **self.pairing)
