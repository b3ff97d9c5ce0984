"""Instruction-tuning data: Switchboard dialogues and Simple Wikipedia lectures → prompt/reply examples.

* Switchboard: utterances of one speaker in a row form a turn; a turn (after ``context_turns``
  earlier turns, one a line) is the prompt and the other speaker's next turn the reply.
  Backchannel-only turns ("Uh-huh.", SwDA act ``b``) are dropped first, so that the turns
  they interrupted join up again.
* Simple Wikipedia: articles (``= = = Title = = =``) are cut into a lead and sections
  (``= = Section = =`` markers, or the bare headings such as ``History.`` that stay in
  BabyLM's text) and turned into pupil questions and teacher answers by a
  :class:`LectureGenerator`: built-in templates, or a local causal LM.

Every :class:`Example` has the fields of the published CLASS-IT data set: prompt, reply,
source, text. ``build_it`` writes them as JSONL; the sources tokenize them for training.
"""

import json
import logging
import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import torch
from datasets import Dataset, load_from_disk
from lightning.pytorch.utilities import rank_zero_info

from classit.data import sources
from classit.data.chat import IGNORE_INDEX, collate_fn, encode_examples, pack_examples, render
from classit.data.corpus import count_words, read_text
from classit.data.prepare import build_once
from classit.data.source import Source

log = logging.getLogger(__name__)


@dataclass
class Example:
    """One instruction example; ``text`` is the rendered chat (see :mod:`classit.data.chat`)."""
    prompt: str
    reply: str
    source: str
    text: str = ""

    def __post_init__(self):
        self.text = self.text or render(self.prompt, self.reply)

    @property
    def words(self) -> int:
        return count_words(self.prompt) + count_words(self.reply)


# ---------------------------------------------------------------- Switchboard

BACKCHANNEL_ACTS = {"b"}
BACKCHANNEL_WORDS = {"uh-huh", "um-hum", "mm-hmm", "yeah", "right", "oh", "okay", "huh", "um", "uh", "oh yeah",
                     "oh really", "really", "oh okay", "oh uh-huh", "i see", "oh i see"}


@dataclass
class Utterance:
    speaker: str
    text: str
    backchannel: bool


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
        utterances.append(Utterance(speaker, _clean(text), act.strip() in BACKCHANNEL_ACTS))
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
        utterances.append(Utterance(match[1], text, _is_backchannel_text(text)))
    return utterances


def turns(utterances: list[Utterance], drop_backchannels: bool = True) -> list[str]:
    """Merge runs of one speaker into turns; drop backchannel-only turns and merge again."""
    merged: list[list] = []  # [speaker, texts, only backchannels]
    for u in utterances:
        if merged and merged[-1][0] == u.speaker:
            merged[-1][1].append(u.text)
            merged[-1][2] &= u.backchannel
        else:
            merged.append([u.speaker, [u.text], u.backchannel])
    if drop_backchannels:
        kept: list[list] = []
        for speaker, texts, backchannel in merged:
            if backchannel:
                continue
            if kept and kept[-1][0] == speaker:
                kept[-1][1].extend(texts)
            else:
                kept.append([speaker, texts, backchannel])
        merged = kept
    return [" ".join(texts) for _, texts, _ in merged]


def dialogue_pairs(utterances: list[Utterance], context_turns: int = 0, min_words: int = 3,
                   drop_backchannels: bool = True) -> list[Example]:
    """Prompt → reply examples from one conversation (see the module docstring)."""
    said = turns(utterances, drop_backchannels)
    examples = []
    for i in range(1, len(said)):
        if count_words(said[i - 1]) >= min_words and count_words(said[i]) >= min_words:
            prompt = "\n".join(said[max(0, i - 1 - context_turns):i])
            examples.append(Example(prompt, said[i], "switchboard"))
    return examples


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


# ---------------------------------------------------------------- Simple Wikipedia

MARKER = re.compile(r"= = =")
SECTION = re.compile(r"= = ([^\n=]+?) = =")
MAX_TITLE_CHARS, MAX_TITLE_WORDS = 150, 20
SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[\"(]?[A-Z])")
ABBREVIATION = re.compile(r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Mt|No|vs|Gen|Lt|Prof|Rev|Inc|Co|Ltd))\.$")
HEADING = re.compile(r"[A-Z][a-zA-Z'-]*(?: [a-zA-Z'-]+){0,4}\.")
NOT_HEADING = {"He", "She", "It", "They", "We", "I", "You", "This", "That", "These", "Those", "There", "The", "A", "An",
               "His", "Her", "Its", "Their", "Yes", "No"}
VERBS = {"is", "are", "was", "were", "has", "have", "had", "be", "been"}


@dataclass
class Article:
    """A titled article: its sections as (heading, sentences); the lead has heading None."""
    title: str
    sections: list[tuple[str | None, list[str]]]


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph (initials and common abbreviations do not end one)."""
    sentences: list[str] = []
    for piece in SENTENCE_END.split(text.strip()):
        if sentences and ABBREVIATION.search(sentences[-1]):
            sentences[-1] += " " + piece
        elif piece:
            sentences.append(piece)
    return sentences


def _is_heading(sentence: str) -> bool:
    """A bare section heading such as "Early life.": a few words, no verb "to be" or "to have"."""
    words = sentence.rstrip(".").split()
    return bool(HEADING.fullmatch(sentence)) and words[0] not in NOT_HEADING and not VERBS & set(words)


def split_sections(body: str) -> list[tuple[str | None, list[str]]]:
    """Lead and sections: at ``= = Heading = =`` markers if any, else at bare heading sentences."""
    parts = SECTION.split(body)
    if len(parts) > 1:
        headed = [(None, parts[0])] + list(zip(parts[1::2], parts[2::2]))
        return [(h and h.strip(), [s for p in t.split("\n") for s in split_sentences(p)]) for h, t in headed]
    body = re.sub(r" ?= = ?", " ", body)  # a stray marker left by BabyLM's cleaning
    sentences = [s for paragraph in body.split("\n") for s in split_sentences(paragraph)]
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for i, sentence in enumerate(sentences):
        if i + 1 < len(sentences) and _is_heading(sentence):
            sections.append((sentence[:-1], []))
        else:
            sections[-1][1].append(sentence)
    return sections


def _plausible_title(text: str) -> bool:
    """Short, one line, and not ending a sentence: else a ``= = =`` is a lone marker, not a title's."""
    return ("\n" not in text and len(text) <= MAX_TITLE_CHARS and count_words(text) <= MAX_TITLE_WORDS
            and not re.search(r"[a-z]{3}\.(\s|$)", text.strip()))


def _article(title: str, body: str) -> Article:
    body = body.strip()
    if re.match(r"(is|are|was|were) ", body):  # BabyLM's cleaning dropped the subject (a name in brackets)
        body = f"{title} {body}"
    return Article(title, split_sections(body))


def read_articles(path: Path) -> list[Article]:
    """The ``= = = Title = = =`` articles of a Simple Wikipedia file (one long line or many).

    An empty title, or a file without titles, is an error naming the file and line. Text that
    belongs to no title (a file starting mid-article, or a marker BabyLM's cleaning broke) is
    skipped with a warning.
    """
    text = read_text(path)
    marks = list(MARKER.finditer(text))

    def where(offset: int) -> str:
        return f"{path}:{text.count(chr(10), 0, offset) + 1}:{offset - text.rfind(chr(10), 0, offset)}"

    articles, skipped = [], []
    title, start, untitled, i = None, 0, 0, 0  # the open article and where its body starts; untitled text start
    while i <= len(marks):
        end = marks[i].start() if i < len(marks) else len(text)
        between = text[marks[i].end():marks[i + 1].start()] if i + 1 < len(marks) else None
        if title is not None:
            articles.append(_article(title, text[start:end]))
        elif text[untitled:end].strip():
            skipped.append(where(untitled))
        if between is not None and _plausible_title(between):
            if not between.strip():
                raise ValueError(f"{where(marks[i].start())}: article with no title (empty '= = =  = = =' marker)")
            title, start, i = between.strip(), marks[i + 1].end(), i + 2
        else:  # a lone marker (or the end): what follows, up to the next title, has no title
            title, untitled, i = None, marks[i].end() if i < len(marks) else end, i + 1
    if not articles:
        raise ValueError(f"{where(0)}: article with no title: no '= = = Title = = =' marker in this file")
    if skipped:
        log.warning("skipped %d pieces of text outside any '= = = Title = = =' article: %s",
                    len(skipped), ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else ""))
    return articles


def _cap(sentences: list[str], max_words: int) -> str:
    """Whole sentences up to ``max_words`` words (at least one)."""
    kept, words = [], 0
    for sentence in sentences:
        if kept and words + count_words(sentence) > max_words:
            break
        kept.append(sentence)
        words += count_words(sentence)
    return " ".join(kept)


class LectureGenerator(ABC):
    """Turns articles into pupil questions (prompts) and teacher answers (replies)."""

    def __init__(self, min_reply_words: int = 5, max_reply_words: int = 200):
        self.min_reply_words, self.max_reply_words = min_reply_words, max_reply_words

    def passages(self, article: Article) -> list[tuple[str | None, str]]:
        """(heading, text) of the lead and each section, capped at ``max_reply_words``; short ones left out."""
        capped = [(heading, _cap(sentences, self.max_reply_words)) for heading, sentences in article.sections]
        return [(h, t) for h, t in capped if count_words(t) >= self.min_reply_words]

    @abstractmethod
    def generate(self, articles: Iterable[Article]) -> Iterator[Example]:
        """Examples with source ``simple_wiki``."""


class TemplateLectureGenerator(LectureGenerator):
    """Questions from fixed templates:

    * ``What is {title}?`` (``Who is {title}?`` when the lead says "born") → the lead;
    * ``Tell me about the {section} of {title}.`` (``… {title} {section}.`` for a section
      such as "In popular culture") → that section;
    * ``What is {X}?`` for a sentence "X is a/an/the …" (also are/was/were) about something
      other than the title → that sentence.
    """

    DEFINITION = re.compile(r"((?:The |An? )?[A-Z][\w'-]*(?: (?:of |and |de )?[A-Z][\w'-]*){0,4})"
                            r"(?: \([^)]*\))?,? (is|are|was|were) (?:a|an|the) ")
    PRONOUNS = {"It", "He", "She", "They", "This", "That", "These", "Those", "There", "Here", "One", "Some", "Many",
                "Most", "All", "Each", "Both", "What", "Which", "Who", "His", "Her", "Its", "Their"}
    PREPOSITIONS = {"in", "on", "at", "after", "before", "during", "with", "from", "as", "under", "outside"}

    def __init__(self, min_reply_words: int = 5, max_reply_words: int = 200, definitions: bool = True):
        super().__init__(min_reply_words, max_reply_words)
        self.definitions = definitions

    def _definitions(self, article: Article) -> Iterator[tuple[str, str]]:
        sentences = [s for _, section in article.sections for s in section][1:]
        for sentence in sentences:
            match = self.DEFINITION.match(sentence)
            if not match or match[1].split()[0] in self.PRONOUNS or count_words(sentence) < self.min_reply_words:
                continue
            term = re.sub(r"^(The|An?) ", lambda m: m[1].lower() + " ", match[1])
            if re.sub(r"^(the|an?) ", "", term).lower() != article.title.lower():
                yield f"What {match[2]} {term}?", sentence

    def generate(self, articles: Iterable[Article]) -> Iterator[Example]:
        for article in articles:
            pairs = []
            for heading, text in self.passages(article):
                if heading is None:
                    who = "Who" if "(born" in text.split(". ")[0] else "What"
                    pairs.append((f"{who} is {article.title}?", text))
                else:
                    section = heading[0].lower() + heading[1:] if heading[1:2].islower() else heading
                    about = (f"{article.title} {section}" if section.split()[0] in self.PREPOSITIONS
                             else f"the {section} of {article.title}")
                    pairs.append((f"Tell me about {about}.", text))
            if self.definitions:
                pairs += self._definitions(article)
            seen = set()
            for prompt, reply in pairs:
                if prompt not in seen:
                    seen.add(prompt)
                    yield Example(prompt, reply, "simple_wiki")


class LMLectureGenerator(LectureGenerator):
    """Questions written by a local Hugging Face causal LM, one per lead and section; the passage is the reply.

    ``prompt_template`` is filled with ``{title}`` and ``{passage}``; the model's continuation up to
    the first ``?`` (or line end) is the question; empty questions are left out.
    """

    PROMPT = ("{passage}\n\nA pupil has read this text about {title} and asks the teacher a question about it.\n"
              "Question:")

    def __init__(self, model_path: str, prompt_template: str = PROMPT, max_new_tokens: int = 32, batch_size: int = 16,
                 device: str | None = None, min_reply_words: int = 5, max_reply_words: int = 200):
        super().__init__(min_reply_words, max_reply_words)
        self.model_path, self.prompt_template = model_path, prompt_template
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    @staticmethod
    def _question(generated: str) -> str:
        line = generated.strip().split("\n")[0]
        return " ".join((line[:line.index("?") + 1] if "?" in line else line).split())

    @torch.no_grad()
    def generate(self, articles: Iterable[Article]) -> Iterator[Example]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.model_path, padding_side="left")
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.model_path).to(self.device).eval()
        passages = [(a.title, text) for a in articles for _, text in self.passages(a)]
        for b in range(0, len(passages), self.batch_size):
            batch = passages[b:b + self.batch_size]
            inputs = tokenizer([self.prompt_template.format(title=t, passage=p) for t, p in batch],
                               return_tensors="pt", padding=True).to(self.device)
            out = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            texts = tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            for (_, passage), generated in zip(batch, texts):
                if question := self._question(generated):
                    yield Example(question, passage, "simple_wiki")


# ---------------------------------------------------------------- sources

class InstructionSource(Source):
    """Prompt/reply examples of one kind, rendered with the chat template and tokenized once (rank 0) into a
    memory-mapped cache; padded examples, or rows of several examples packed without cross-talk."""

    def __init__(self, pack: bool = False, train_on_prompt: bool = False):
        self.pack, self.train_on_prompt = pack, train_on_prompt

    def input_files(self, split: str) -> list[Path]:
        """The files the split's examples are built from (their content keys the cache)."""
        raise NotImplementedError

    def build_examples(self, split: str) -> list[Example]:
        """The examples of ``train`` or ``val`` (may be empty)."""
        raise NotImplementedError

    def has_split(self, split: str) -> bool:
        return bool(self.input_files(split))

    def options(self) -> dict:
        """What else decides the examples (part of the cache key)."""
        return {}

    def _entry(self, split: str) -> Path:
        options = {"class": type(self).__name__, "split": split, "pack": self.pack,
                   "train_on_prompt": self.train_on_prompt, **self.options()}
        return self.cache_entry("instructions", options, self.input_files(split))

    def encode(self, examples: list[Example]) -> list[dict]:
        """Token ids, labels and words of the examples (packed into rows when ``pack``)."""
        encoded = encode_examples(self.tokenizer, [x.prompt for x in examples], [x.reply for x in examples],
                                  self.train_on_prompt, self.block_size)
        kept = self.tokenizer.batch_decode([e["input_ids"] for e in encoded], skip_special_tokens=True)
        items = [dict(e, source=x.source, words=count_words(text)) for e, x, text in zip(encoded, examples, kept)
                 if any(label != IGNORE_INDEX for label in e["labels"][1:])]  # words: those kept after truncation
        if len(items) < len(encoded):
            rank_zero_info(f"{self.name}: {len(encoded) - len(items)} examples left out: no reply token fits "
                           f"in block_size={self.block_size}")
        return pack_examples(items, self.block_size) if self.pack else items

    def prepare(self) -> None:
        for split in ("train", "val"):
            if not self.has_split(split):
                continue

            def build(tmp: Path, split=split):
                examples = self.build_examples(split)
                rows = self.encode(examples)
                columns = {key: [row[key] for row in rows] for key in (rows[0] if rows else ["input_ids"])}
                Dataset.from_dict(columns).save_to_disk(str(tmp))
                (tmp / "classit.json").write_text(json.dumps({"examples": len(examples), "rows": len(rows),
                                                              "words": sum(r["words"] for r in rows),
                                                              "tokens": sum(len(r["input_ids"]) for r in rows)}))
            build_once(self._entry(split), build)

    def stats(self, split: str = "train") -> dict:
        """``examples``, ``rows``, ``words`` and ``tokens`` of the prepared split."""
        return json.loads((self._entry(split) / "classit.json").read_text())

    def _rows(self, split: str) -> Dataset | None:
        return load_from_disk(str(self._entry(split))) if self.has_split(split) else None

    def train_set(self) -> Dataset:
        return self._rows("train")

    def val_set(self) -> Dataset | None:
        return self._rows("val")

    def collate(self, items: list[dict]) -> dict:
        batch = collate_fn(self.tokenizer.pad_token_id, self.pack)(items)
        batch["words"] = torch.tensor([float(x["words"]) for x in items])
        return batch


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

    def build_examples(self, split: str) -> list[Example]:
        swda = self._swda(split)
        babylm = self.root / self.babylm_file if self.babylm_file and split == "train" else None
        return switchboard_examples(swda if swda is not None and swda.is_dir() else None, babylm, **self.pairing)


class SimpleWikiLectures(InstructionSource):
    """Lecture examples from a Simple Wikipedia file; validation from the dev split's file (never trained on)."""

    def __init__(self, file: str = "babylm-corpus/train_3M/simple_wiki.train",
                 val_file: str | None = "babylm-corpus/dev/simple_wiki.dev", generator: LectureGenerator | None = None,
                 pack: bool = False, train_on_prompt: bool = False):
        """
        Args:
            file: the Simple Wikipedia training file in the data directory.
            val_file: the file whose lectures are the validation set: BabyLM's dev split, which no stage trains on.
            generator: how questions are made; default :class:`TemplateLectureGenerator`.
            pack / train_on_prompt: as in :class:`Switchboard`.
        """
        super().__init__(pack, train_on_prompt)
        self.file, self.val_file = file, val_file
        self.generator = generator or TemplateLectureGenerator()

    def options(self) -> dict:
        return {"generator": type(self.generator).__name__, **vars(self.generator)}

    def input_files(self, split: str) -> list[Path]:
        key, name = ("file", self.file) if split == "train" else ("val_file", self.val_file)
        if not name:
            return []
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(f"data.sources.{self.name}.init_args.{key}: {path} not found")
        read_text(path)  # an empty or non-UTF-8 file stops here, named
        model = getattr(self.generator, "model_path", None)
        return [path] + (sorted(p for p in Path(model).iterdir() if p.is_file()) if model else [])

    def build_examples(self, split: str) -> list[Example]:
        return list(self.generator.generate(read_articles(self.root / (self.file if split == "train" else self.val_file))))


class InstructionFile(InstructionSource):
    """Ready-made instruction examples in the CLASS-IT schema (``prompt``, ``reply``, ``source``, optional ``text``):
    the authors' published set, or what ``classit data build-it`` wrote. A JSONL or Parquet file or a ``datasets``
    folder in the data directory, or (with the Hub reachable) a dataset name for ``datasets.load_dataset``."""

    def __init__(self, path: str, val_path: str | None = None, sources: list[str] | None = None,
                 max_examples: int | None = None, max_words: int | None = None, pack: bool = False,
                 train_on_prompt: bool = False):
        """
        Args:
            path / val_path: training and validation examples: a ``.jsonl`` or ``.parquet`` file or a folder saved by
                ``datasets`` (relative to the data directory), else a Hugging Face Hub dataset name.
            sources: keep only examples whose ``source`` is one of these (e.g. ``[switchboard]``).
            max_examples / max_words: keep the first examples up to this many (training split).
            pack / train_on_prompt: as in :class:`Switchboard`.
        """
        super().__init__(pack, train_on_prompt)
        self.path, self.val_path, self.sources = path, val_path, sources
        self.max_examples, self.max_words = max_examples, max_words

    def options(self) -> dict:
        return {"path": self.path, "val_path": self.val_path, "sources": self.sources,
                "max_examples": self.max_examples, "max_words": self.max_words}

    def _location(self, split: str) -> str | None:
        return self.path if split == "train" else self.val_path

    def input_files(self, split: str) -> list[Path]:
        name = self._location(split)
        if not name:
            return []
        local = self.root / name
        if local.is_dir():
            return sorted(p for p in local.rglob("*") if p.is_file())
        return [local] if local.exists() else []  # a Hub name: keyed by its name (in options)

    def has_split(self, split: str) -> bool:
        return bool(self._location(split))

    def _records(self, split: str) -> Iterator[tuple[str, dict]]:
        """``(where, record)``: ``file:line`` for JSONL, ``file row N`` otherwise."""
        from datasets import load_dataset

        from classit.eval.zero_shot import read_jsonl

        name = self._location(split)
        local = self.root / name
        if local.suffix == ".jsonl" and local.is_file():
            yield from read_jsonl(local)
            return
        if local.is_dir():
            data = load_from_disk(str(local))
        elif local.suffix == ".parquet" and local.is_file():
            data = load_dataset("parquet", data_files=str(local), split="train")
        elif local.exists():
            raise ValueError(f"{local}: instruction data must be .jsonl, .parquet or a datasets folder")
        else:
            data = load_dataset(name, split="train" if split == "train" else "validation")
        where = local if local.exists() else name
        for i, record in enumerate(data):
            yield f"{where} row {i}", record

    def build_examples(self, split: str) -> list[Example]:
        examples, words = [], 0
        for where, record in self._records(split):
            missing = [key for key in ("prompt", "reply") if not isinstance(record.get(key), str)]
            if missing:
                raise ValueError(f"{where}: missing field {missing[0]!r} (the CLASS-IT schema: prompt, reply, source)")
            if self.sources and record.get("source") not in self.sources:
                continue
            example = Example(record["prompt"], record["reply"], record.get("source") or self.name, record.get("text") or "")
            if split == "train" and ((self.max_examples and len(examples) >= self.max_examples)
                                     or (self.max_words and words + example.words > self.max_words)):
                break
            examples.append(example)
            words += example.words
        return examples


# ---------------------------------------------------------------- build-it

def write_jsonl(examples: list[Example], path: Path) -> None:
    """One JSON object (prompt, reply, source, text) a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for example in examples:
            f.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")


def build_it(out: str | None = None, data_dir: str | None = None, swda: str | None = "swda/train",
             switchboard: str | None = None, simple_wiki: str = "babylm-corpus/train_3M/simple_wiki.train",
             lm: str | None = None, context_turns: int = 0, min_words: int = 3, drop_backchannels: bool = True) -> None:
    """Build the CLASS-IT instruction sets and write ``switchboard.jsonl`` and ``simple_wiki.jsonl``.

    Args:
        out: output folder; default ``DATA_DIR/classit-it``.
        data_dir: the data folder; default ``$CLASSIT_DATA_DIR``.
        swda: a folder of SwDA conversations inside ``data_dir`` (None: leave out).
        switchboard: a BabyLM switchboard file inside ``data_dir`` (``A:``/``B:`` lines) to add (None: leave out).
        simple_wiki: the Simple Wikipedia file inside ``data_dir``.
        lm: a local Hugging Face causal LM folder that writes the lecture questions (default: templates).
        context_turns / min_words / drop_backchannels: Switchboard pairing, see :class:`SwitchboardDataModule`.
    """
    root = sources.data_dir(data_dir)
    target = Path(out) if out else root / "classit-it"
    generator = LMLectureGenerator(lm) if lm else TemplateLectureGenerator()
    sets = {
        "switchboard": switchboard_examples(root / swda if swda else None, root / switchboard if switchboard else None,
                                            context_turns, min_words, drop_backchannels),
        "simple_wiki": list(generator.generate(read_articles(root / simple_wiki))),
    }
    for name, examples in sets.items():
        write_jsonl(examples, target / f"{name}.jsonl")
        print(f"{name}: {len(examples):,} examples, {sum(x.words for x in examples):,} words "
              f"-> {target / f'{name}.jsonl'}")
