"""Simple Wikipedia lectures → pupil questions and teacher answers.

Articles (``= = = Title = = =``) are cut into a lead and sections (``= = Section = =`` markers, or
the bare headings such as ``History.`` that stay in BabyLM's text) and turned into questions and
answers by a :class:`LectureGenerator`: built-in templates, or a local causal LM.
"""

import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import torch

from classit.data.corpus import count_words, read_text
from classit.data.instructions import Example, InstructionSource
from classit.runtime import resolve_device

log = logging.getLogger(__name__)


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
        self.device = resolve_device(device or "auto")

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

    def corpus_path(self) -> str | None:
        return self.file

    def read_corpus(self, path: str) -> None:
        self.file = path

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
