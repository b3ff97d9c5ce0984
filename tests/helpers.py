"""Helpers shared by the tests: the one tiny run (``tiny_fit_config``, run by ``classit`` in a subprocess or by
``main``), the one line a bad command stops with, small data folders, the one JSONL writer, and the small sets in the official formats that complete the
bundled sample where the real data folder is absent (see ``complete_sample`` and the ``data_root`` fixture)."""

import csv
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from classit.cli import main

ROOT = Path(__file__).parent.parent
CONFIGS = ROOT / "configs"
DEMO = CONFIGS / "demo.yaml"
TINY_MODEL = {"n_layer": 1, "n_embd": 32, "n_head": 2, "intermediate_size": 64}


def tiny_fit_config(tmp: Path, name: str, data: Path, tokenizer: str | None, *, callbacks=(), checkpoint_every=100,
                    keep_checkpoints=False, guard="stop", model=None, data_args=None, **trainer) -> Path:
    """The demo config, tiny: a 1-layer model over ``data`` (the small corpus: ``train``/``dev``), the given
    tokenizer folder, 6 steps of 4 sequences of 32 tokens, no validation or zero-shot scoring; logs under
    ``tmp/logs/NAME``; a checkpoint every ``checkpoint_every`` steps (``keep_checkpoints``: each one kept, not only
    the last). ``model``, ``data_args`` and ``trainer`` (``accumulate_grad_batches`` gives the micro-batch) change
    it; ``callbacks`` are added to the demo's. Written to a new file in ``tmp``."""
    config = yaml.safe_load(DEMO.read_text())
    entry = {c["class_path"].rsplit(".", 1)[-1]: c for c in config["trainer"]["callbacks"]}
    entry["RunCheckpoint"]["init_args"]["every_n_train_steps"] = checkpoint_every
    if keep_checkpoints:
        entry["RunCheckpoint"]["init_args"]["save_top_k"] = -1
    entry["NonFiniteGuard"]["init_args"] = {"action": guard}
    accumulate = trainer.pop("accumulate_grad_batches", 1)  # derived from the global batch: 4 = accumulate × micro
    config["trainer"].update({"max_steps": 6, "log_every_n_steps": 1, "limit_val_batches": 0, **trainer})
    config["trainer"]["logger"]["init_args"].update(save_dir=str(tmp / "logs"), name=name)
    kept = [c for c in config["trainer"]["callbacks"] if "MinimalPairEval" not in c["class_path"]]
    config["trainer"]["callbacks"] = kept + list(callbacks)
    config["model"].update({**TINY_MODEL, "warmup": 0.3, **(model or {})})
    config["data"].update(data_dir=str(data), tokenizer=tokenizer, block_size=32, batch_size=4,
                          micro_batch_size=4 // accumulate, num_workers=0)
    config["data"]["sources"]["pretrain"]["init_args"] = {"train_dir": "train", "val_dir": "dev", "num_proc": 1}
    config["data"].update(data_args or {})
    path = tmp / f"{name}-{len(list(tmp.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass(frozen=True)


class TinyRuns:
    """Tiny fit configs (``tiny_fit_config``) in ``tmp`` over the small corpus ``data``, with ``tokenizer``; the
    ``tiny_runs`` fixture gives one for each test."""
    tmp: Path
    data: Path
    tokenizer: str

    def config(self, name: str, **changes) -> Path:
        return tiny_fit_config(self.tmp, name, self.data, self.tokenizer, **changes)

    def run_dir(self, name: str, version: int = 0) -> Path:
        return self.tmp / "logs" / name / f"version_{version}"


def _as_a_shell_starts_it() -> None:
    """In the child: ctrl-C and SIGTERM at their defaults and no signal blocked, as a shell starts a command, whatever
    the test process holds (a child inherits ignored and blocked signals across exec)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def classit(*args: str, cwd: Path, env: dict | None = None, wait=True, job=False):
    """``python -m classit.cli ARGS`` in a real subprocess that can load the tests' probes (``probes.py``), its
    stdout and stderr together; ``job``: in a process group of its own, as a terminal's foreground job or a batch
    job. Waited for: (output, return code); else the running process."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    process = subprocess.Popen([sys.executable, "-m", "classit.cli", *args], cwd=cwd,
                               env={**os.environ, "PYTHONPATH": path, **(env or {})}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=job,
                               preexec_fn=_as_a_shell_starts_it)
    if not wait:
        return process
    out, _ = process.communicate(timeout=600)
    return out, process.returncode


def error_line(argv: list[str]) -> str:
    """The one line `classit ARGV` stops with, without its ``classit: error: `` prefix."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    message = str(done.value.code)
    assert message.startswith("classit: error: ") and "\n" not in message, message
    return message.removeprefix("classit: error: ")


def fit(config: Path, *args: str, **kwargs):
    """``classit fit --config CONFIG ARGS`` in a real subprocess (see ``classit``), in the config's folder."""
    return classit("fit", "--config", str(config), *args, cwd=config.parent, **kwargs)


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard recorded in ``log_dir``: tag → [(step, value)]."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def babylm_file(data_root: Path, rel: str) -> Path:
    """``babylm-corpus/REL`` of the data folder. A CHILDES file, which the bundled sample lacks, is stood in for by
    the same split's Gutenberg file: also one long line of documents between title markers."""
    path = data_root / "babylm-corpus" / rel
    if not path.exists() and path.stem == "childes":
        return path.with_name(f"gutenberg{path.suffix}")
    return path


def small_corpus(data_root: Path, root: Path) -> Path:
    """A data folder whose train and dev splits are two BabyLM dev files: childes (gutenberg in the sample) and
    switchboard."""
    for split, suffix in (("train", ".train"), ("dev", ".dev")):
        (root / split).mkdir(parents=True)
        for name in ("childes", "switchboard"):
            source = babylm_file(data_root, f"dev/{name}.dev")
            (root / split / f"{source.stem}{suffix}").symlink_to(source)
    return root


def demo_data(data_root: Path, root: Path) -> Path:
    """A small data folder: two BabyLM dev files as corpus, 20 SwDA conversations, 60 Simple Wikipedia articles."""
    small_corpus(data_root, root)
    for split, n in (("train", 20), ("val", 3)):
        (root / "swda" / split).mkdir(parents=True)
        for f in sorted((data_root / "swda" / split).glob("*.txt"))[:n]:
            (root / "swda" / split / f.name).symlink_to(f)
    text = (data_root / "babylm-corpus/train_3M/simple_wiki.train").read_text(encoding="utf-8")
    cut = [i for i in range(len(text)) if text.startswith("= = = ", i)][121]  # a title's opening marker
    (root / "simple_wiki.train").write_text(text[:cut], encoding="utf-8")
    (root / "simple_wiki.dev").symlink_to(data_root / "babylm-corpus/dev/simple_wiki.dev")
    return root


def small_eval_fast(data_root: Path, root: Path) -> Path:
    """``root/babylm-eval-fast`` with a few real BLiMP and EWoK items, for the demos' zero-shot callback."""
    for task, files in (("blimp_fast", 3), ("ewok_fast", 2)):
        (root / "babylm-eval-fast" / task).mkdir(parents=True)
        for path in sorted((data_root / "babylm-eval-fast" / task).glob("*.jsonl"))[:files]:
            lines = path.read_text().splitlines(keepends=True)[:20]
            (root / "babylm-eval-fast" / task / path.name).write_text("".join(lines))
    return root


# --- the bundled sample, completed for the tests ---------------------------------------------------------------

def complete_sample(root: Path) -> Path:
    """The bundled sample unpacked at ``root``, completed in place with what the tests read from a data folder and
    the sample lacks, built here in the official formats and layout:

    - ``swda/{train,val,test}/NNNN.txt``: conversations of ``SPEAKER|text|act`` lines, with backchannels;
    - ``babylm-corpus/dev/switchboard.dev``: more such conversations as BabyLM's ``A:<tab>text`` lines;
    - ``babylm-eval/``: BLiMP and EWoK files (the sample's fast items, under the full sets' folder names),
      supplement (hypernym, turn_taking), entity tracking (regular, ambiref, move_contents; ``regular`` also as
      ``babylm-eval-fast/entity_tracking_fast``), wug adjective nominalization, the reading CSV, WSC train/valid.

    The text is the sample's own dev sentences or templates: right in format, layout and rough size, so the code
    paths run, but not the real sets: a test of their content or of real-size numbers needs ``full_data``.
    """
    for path in root.rglob("*"):  # unpacked with the archive's 1970 times, which a zip archive cannot store
        os.utime(path)
    rng = random.Random(0)
    sentences = sample_sentences(root)
    # 80 training conversations: more than one global batch (128 rows of 512 tokens) of the 100M configs
    for split, count, first in (("train", 80, 2001), ("val", 6, 3001), ("test", 4, 4001)):
        for number in range(first, first + count):
            write_swda(root / "swda" / split / f"{number}.txt", swda_conversation(rng, sentences))
    talk = [u for _ in range(12) for u in swda_conversation(rng, sentences)]
    (root / "babylm-corpus" / "dev" / "switchboard.dev").write_text("".join(f"{s}:\t{t}\n" for s, t, _ in talk))

    full, fast = root / "babylm-eval", root / "babylm-eval-fast"
    for name in ("blimp", "ewok"):
        (full / f"{name}_filtered").mkdir(parents=True)
        for path in sorted((fast / f"{name}_fast").glob("*.jsonl")):
            (full / f"{name}_filtered" / path.name).write_bytes(path.read_bytes())
    write_jsonl(full / "supplement_filtered" / "hypernym.jsonl", hypernym_items())
    write_jsonl(full / "supplement_filtered" / "turn_taking.jsonl", turn_taking_items(rng))
    for name in ("regular", "ambiref", "move_contents"):
        write_jsonl(full / "entity_tracking" / f"{name}.jsonl", entity_tracking_items(rng, 18))
    write_jsonl(fast / "entity_tracking_fast" / "regular.jsonl", entity_tracking_items(rng, 18))
    write_jsonl(full / "wug_adj_nominalization" / "wug_adj_nominalization.jsonl", wug_items(rng, 40))
    write_reading_csv(full / "reading" / "reading_data.csv", sentences, rng)
    write_jsonl(full / "glue_filtered" / "wsc.train.jsonl", wsc_items(rng, 64))
    write_jsonl(full / "glue_filtered" / "wsc.valid.jsonl", wsc_items(rng, 16))
    return root


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """``records`` as JSON Lines at ``path`` (its folder made if missing): the one JSONL writer of the tests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def blimp_subset(data_root: Path, out: Path, names: list[str], n: int) -> Path:
    """``out/blimp_filtered`` with the first ``n`` items of the real BLiMP files ``names``, copied line for line."""
    folder = out / "blimp_filtered"
    folder.mkdir(parents=True)
    for name in names:
        lines = (data_root / "babylm-eval" / "blimp_filtered" / f"{name}.jsonl").read_text().splitlines()[:n]
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def instruction_records(data_root: Path, n: int = 60) -> list[dict]:
    """The first ``n`` SwDA training examples as instruction records, their source alternately "switchboard" and
    "other" (to filter on)."""
    from classit.data.switchboard import switchboard_examples

    examples = switchboard_examples(data_root / "swda/train")[:n]
    return [{"prompt": x.prompt, "reply": x.reply, "source": ["switchboard", "other"][i % 2]}
            for i, x in enumerate(examples)]


def sample_sentences(root: Path) -> list[str]:
    """Plain sentences of 4 to 20 words from the sample's Gutenberg and Simple Wikipedia dev files, in order."""
    text = " ".join((root / "babylm-corpus" / "dev" / f"{name}.dev").read_text(encoding="utf-8")
                    for name in ("gutenberg", "simple_wiki"))
    text = re.sub(r"= = = [^=]* = = =", " ", text)
    return [s for s in re.split(r"(?<=[.?!])\s+", text)
            if 4 <= len(s.split()) <= 20 and re.fullmatch(r"[A-Z][A-Za-z0-9 ,;:'\"?!.()-]*[.?!]", s)]


BACKCHANNELS = ["Uh-huh.", "Yeah.", "Right.", "Um-hum."]
SHORT_ANSWERS = [("Yes.", "ny"), ("No.", "nn"), ("I think so.", "sv"), ("Oh, really?", "bh")]


def swda_conversation(rng: random.Random, sentences: list[str], length: int = 40) -> list[tuple[str, str, str]]:
    """(speaker, text, act) utterances: turns of one to three sentences, some opened by a short answer, and the
    listener's backchannels ("Uh-huh.", act ``b``) inside some turns."""
    utterances, speaker = [], rng.choice("AB")
    while len(utterances) < length:
        other = "B" if speaker == "A" else "A"
        if rng.random() < 0.15:
            utterances.append((speaker, *rng.choice(SHORT_ANSWERS)))
        for _ in range(rng.randint(1, 3)):
            text = rng.choice(sentences)
            utterances.append((speaker, text, "qy" if text.endswith("?") else rng.choice(["sd", "sv"])))
            if rng.random() < 0.2:
                utterances.append((other, rng.choice(BACKCHANNELS), "b"))
        speaker = other
    return utterances


def write_swda(path: Path, utterances: list[tuple[str, str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{speaker}|{text}|{act}\n" for speaker, text, act in utterances), encoding="utf-8")
    return path


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


HYPERNYMS = [("dog", "mammal", "poodle"), ("car", "vehicle", "taxi"), ("hammer", "tool", "sledgehammer"),
             ("guitar", "musical instrument", "bass guitar"), ("shirt", "garment", "polo shirt"),
             ("rose", "flower", "tea rose"), ("sparrow", "bird", "house sparrow"), ("boat", "vessel", "sailboat"),
             ("chair", "piece of furniture", "rocking chair"), ("trout", "fish", "rainbow trout")]


def hypernym_items() -> list[dict]:
    """Supplement ``hypernym`` items: having a thing entails having its hypernym, not its hyponym."""
    return [{"row": k, "contrast": "base_and_hyponym/hypernym",
             "sentence_good": f"If she has {_a(base)}, it must be the case that she has {_a(hyper)}.",
             "sentence_bad": f"If she has {_a(base)}, it must be the case that she has {_a(hypo)}."}
            for k, (base, hyper, hypo) in enumerate(HYPERNYMS)]


def turn_taking_items(rng: random.Random, n: int = 10) -> list[dict]:
    """Supplement ``turn_taking`` items: the answer's "I" fits a question to "you", not to "she"."""
    names = ["David", "Sarah", "Maria", "James", "Emma", "Peter"]
    verbs = ["quit", "meet him", "call her", "stay", "leave early", "sing", "help them", "wait"]
    items = []
    for k in range(n):
        asker, answerer = rng.sample(names, 2)
        verb, answer = verbs[k % len(verbs)], rng.choice(["Yes, I should.", "No, I shouldn't."])
        items.append({"quad": "(('you', 'I'), ('she', 'I'))", "type": "single", "length": "short", "other": None,
                      "sentence_good": f"{asker}: Should you {verb}?\n{answerer}: {answer}",
                      "sentence_bad": f"{asker}: Should she {verb}?\n{answerer}: {answer}"})
    return items


THINGS = ("apple bag ball bell book bread cake car coat cup dress egg fan fig guitar hat key leaf map milk note "
          "pipe plane ring rose seed shell shirt sheet string watch").split()


def _contents(things: list[str]) -> str:
    return " and ".join(f"the {t}" for t in sorted(things)) if things else "nothing"


def entity_tracking_items(rng: random.Random, n: int) -> list[dict]:
    """Entity-tracking items: seven boxes, zero to two operations (``numops``), what one box contains now; five
    options, the right one first."""
    items = []
    for k in range(n):
        numops, things = k % 3, rng.sample(THINGS, len(THINGS))
        boxes = [[things.pop() for _ in range(rng.randint(0, 3))] for _ in range(7)]
        text = ", ".join(f"Box {i} contains {_contents(box)}" for i, box in enumerate(boxes)) + "."
        for _ in range(numops):
            full = [i for i, box in enumerate(boxes) if box]
            source, target = rng.choice(full), rng.randrange(7)
            thing = rng.choice(boxes[source])
            if target == source:
                boxes[source].remove(thing)
                text += f" Remove the {thing} from Box {source}."
            else:
                boxes[source].remove(thing)
                boxes[target].append(thing)
                text += f" Move the {thing} from Box {source} to Box {target}."
        query = rng.choice([i for i, box in enumerate(boxes) if box])
        right = _contents(boxes[query]) + "."
        options = [right] + [_contents(box) + "." for i, box in enumerate(boxes) if i != query and box]
        while len(set(options)) < 5:  # a wrong mix: one of the box's things swapped for another
            mix = boxes[query][1:] + [rng.choice(things)]
            options.append(_contents(mix) + ".")
        options = list(dict.fromkeys(options))[:5]
        items.append({"sample_id": k, "numops": numops, "input_prefix": f"{text} Box {query} contains ",
                      "options": options, "example_id": k})
    return items


def wug_items(rng: random.Random, n: int) -> list[dict]:
    """Wug adjective-nominalization items: a nonce "-able" adjective, its "-ity" and "-ness" nouns, a human ratio."""
    onsets, vowels, codas = ["bl", "cr", "d", "fl", "gr", "k", "m", "pl", "sn", "tr", "v", "z"], "aeiou", "nstlrm"
    words = set()
    while len(words) < n:
        words.add(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) + rng.choice(onsets[2:]) +
                  rng.choice(vowels) + rng.choice(codas))
    prompt = "Create a noun out of the following adjective: {}able. "
    return [{"sentences": f"{prompt.format(w)}{w}ability\t{prompt.format(w)}{w}ableness",
             "ratio": round(rng.random(), 4)} for w in sorted(words)]


def wsc_items(rng: random.Random, n: int) -> list[dict]:
    """WSC items as BabyLM's glue_filtered has them: does the pronoun (span 2) refer to span 1?"""
    templates = [("{a} thanked {b} because {p} had helped with the move.", 1),
                 ("{a} called {b} because {p} wanted some advice.", 0),
                 ("{a} lent money to {b} because {p} was short of cash.", 1),
                 ("{a} beat {b} at chess because {p} was the better player.", 0),
                 ("{a} visited {b} because {p} was ill in bed.", 1),
                 ("{a} could not lift {b} because {p} was too weak.", 0)]
    names = {"he": ["Mark", "Pete", "John", "Paul", "Tom"], "she": ["Anna", "Mary", "Lucy", "Kate", "Jane"]}
    items = []
    for k in range(n):
        template, referent = templates[k % len(templates)]
        pronoun = rng.choice(["he", "she"])
        a, b = rng.sample(names[pronoun], 2)
        words = template.format(a=a, b=b, p=pronoun).split()
        first = rng.randrange(2)
        span1 = (a, b)[first]
        items.append({"text": " ".join(words), "span1_index": words.index(span1), "span2_index": words.index(pronoun),
                      "span1_text": span1, "span2_text": pronoun, "idx": k, "label": int(first == referent)})
    return items


READING_MEASURES = ["RTfirstfix", "RTfirstpass", "RTgopast", "RTrightbound", "self_paced_reading_time",
                    "ELAN", "LAN", "N400", "P600", "EPNP", "PNP"]


def write_reading_csv(path: Path, sentences: list[str], rng: random.Random, rows: int = 160) -> Path:
    """The reading CSV's columns: a word of a sentence (``word``) after its left context (``item``), the word before
    and its own context (``prev_word``, ``prev_item``, empty for a sentence's second word), frequency and length,
    and eye-tracking, self-paced and ERP measures that grow with length and noise."""
    header = ["", "item", "word", "word2", "sentence", "context_length", "sent_id", "item_id", "list",
              "Subtlex_log10", "length", *READING_MEASURES, "prev_word", "prev_item", "prev_length"]
    out = []
    for k in range(rows):
        sent_id = rng.randrange(len(sentences))
        words = sentences[sent_id].split()
        at = 1 if k % 8 == 0 else rng.randrange(1, len(words))
        word, previous = words[at], words[at - 1] if at > 1 else ""
        base = 100 + 12 * len(word) + rng.gauss(0, 15)
        measures = [base, base + abs(rng.gauss(20, 10)), base + abs(rng.gauss(90, 40)), base + abs(rng.gauss(30, 15)),
                    250 + 6 * len(word) + rng.gauss(0, 30)] + [rng.gauss(0, 1) for _ in range(6)]
        frequency = "" if k % 40 == 39 else round(rng.uniform(5, 14), 6)
        out.append([k, " ".join(words[:at]), word, word.upper(), sentences[sent_id], at, sent_id, k + 1, k % 8 + 1,
                    frequency, len(word), *(round(m, 6) for m in measures), previous, " ".join(words[:at - 1]),
                    len(previous)])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *out])
    return path


def aoa_data(root: Path, sentences: list[str], words: int = 12) -> Path:
    """``root/aoa/`` in the official formats: ``cdi_childes.json`` (each word's left contexts: the start of the
    sentences that hold it) and ``cdi_human.csv`` (the share of children producing it, months 16 to 30)."""
    counts = {}
    for s in sentences:
        for w in re.findall(r"[a-z]{3,}", s):
            counts[w] = counts.get(w, 0) + 1
    chosen = sorted(counts, key=lambda w: (-counts[w], w))[:words]
    contexts = {w: [{"context": s[:s.index(f" {w}")], "word_in_context_stats": {}} for s in sentences
                    if f" {w} " in s][:5] for w in chosen}
    (root / "aoa").mkdir(parents=True, exist_ok=True)
    (root / "aoa" / "cdi_childes.json").write_text(json.dumps(contexts))
    ages = range(16, 31)
    rows = [[w, "noun", *(f"{1 / (1 + math.exp(-(age - 18 - i) / 1.5)):.4f}" for age in ages), len(w)]
            for i, w in enumerate(chosen)]
    (root / "aoa" / "cdi_human.csv").write_text("\n".join(",".join(map(str, r)) for r in
                                                           [["word", "category", *ages, "word_length"], *rows]) + "\n")
    return root


def rte_items(rng: random.Random, n: int) -> list[dict]:
    """RTE items as BabyLM's glue_filtered has them: does sentence 1 entail sentence 2 (0) or not (1)?"""
    names, places = ["Anna", "Mark", "Lucy", "Tom", "Kate", "Paul"], ["the park", "the shop", "school", "the beach"]
    items = []
    for k in range(n):
        name, place, other = rng.choice(names), *rng.sample(places, 2)
        label = rng.randrange(2)
        items.append({"sentence1": f"{name} walked to {place} in the morning.",
                      "sentence2": f"{name} went to {(place, other)[label]}.", "label": label, "idx": k})
    return items


def head_zeroed_model(model_dir: Path, out: Path) -> Path:
    """``model_dir`` (a Hugging Face folder, not tied to its embeddings) copied to ``out`` with its LM head's weights
    zeroed: every next token gets the same log-probability, so options of as many scored tokens tie exactly."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    assert not model.config.tie_word_embeddings
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def gpt2_without_bos(out: Path, sentences: list[str], vocab_size: int = 600) -> Path:
    """A Hugging Face folder as GPT-2's is: a byte-level BPE trained on ``sentences`` that adds no BOS (its one
    special token ``<|endoftext|>`` is BOS, EOS and UNK, no pad token) and a tiny random ``GPT2LMHeadModel``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    bpe.train_from_iterator(sentences, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    end = "<|endoftext|>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=end, eos_token=end, unk_token=end)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# the pipeline's COMPS files and the subset (UID) its decode_comps gives each
COMPS = {"comps_base": "base", "comps_wugs": "wugs", "comps_wugs_dist-before": "wugs_dist_before",
         "comps_wugs_dist-in-between": "wugs_dist_in_between"}
CONCEPTS = {"robin": "can fly.", "eagle": "has feathers.", "salmon": "lives in water.", "dog": "has four legs.",
            "bicycle": "has two wheels.", "hammer": "is made of metal.", "rose": "has petals.", "cow": "eats grass."}


def wug_past_items(rng: random.Random, n: int) -> list[dict]:
    """Nonce verbs: the regular past first, then one or two irregular ones; the share of people who gave the first."""
    onsets, vowels, codas = ["spl", "gr", "dr", "bl", "sn", "fl", "tr", "sk"], ["i", "ee", "ai", "o"], ["ng", "nk", "d", "t"]
    verbs = sorted({(rng.choice(onsets), rng.choice(vowels), rng.choice(codas)) for _ in range(200)})[:n]
    items = []
    for k, (onset, vowel, coda) in enumerate(verbs):
        forms = [onset + vowel + coda + "ed", onset + "u" + coda] + ([onset + "a" + coda] if k % 4 == 0 else [])
        items.append({"sentences": "\t".join(f"They {onset + vowel + coda} every day. Yesterday they {f}." for f in forms),
                      "ratio": round(rng.random(), 4)})
    return items


def comps_items(rng: random.Random, subset: str, n: int) -> list[dict]:
    """COMPS pairs: the property phrase after a concept that has it and after one that does not."""
    names = list(CONCEPTS)
    items = []
    for k in range(n):
        good, bad = rng.sample(names, 2)
        prefix = {"comps_base": "A {}",
                  "comps_wugs": "A wug is a {}. Therefore, a wug",
                  "comps_wugs_dist-before": "A dax is a {other}. A wug is a {}. Therefore, a wug",
                  "comps_wugs_dist-in-between": "A wug is a {}. A dax is a {other}. Therefore, a wug"}[subset]
        items.append({"id": k, "property_phrase": CONCEPTS[good], "acceptable_concept": good,
                      "unacceptable_concept": bad, "negative_sample_type": "random",
                      "prefix_acceptable": prefix.format(good, other=bad),
                      "prefix_unacceptable": prefix.format(bad, other=good)})
    return items


def rows_recorder(out_dir: Path, ids: int | None = 8) -> dict:
    """The config entry of ``probes.RowRecorder`` writing each rank's rows (their first ``ids`` ids; None: all) to
    ``out_dir``."""
    return {"class_path": "probes.RowRecorder", "init_args": {"out_dir": str(out_dir), "ids": ids}}


def tiny_curriculum(data: Path, tokenizer: str) -> list[str]:
    """Command-line overrides that make a demo curriculum (``demo_seq``, ``demo_merged``) a few seconds long over a
    ``demo_data`` folder: 4 steps a stage epoch, the tiny run's model, every step logged."""
    return ["--trainer.limit_train_batches=4", "--trainer.log_every_n_steps=1", f"--data.data_dir={data}",
            f"--data.tokenizer={tokenizer}", "--data.val_sequences=8",
            "--data.sources.simple_wiki.init_args.file=simple_wiki.train",
            "--data.sources.simple_wiki.init_args.val_file=simple_wiki.dev",
            "--data.sources.pretrain.init_args.train_dir=train", "--data.sources.pretrain.init_args.val_dir=dev",
            *(f"--model.{key}={value}" for key, value in TINY_MODEL.items())]


def model_folder(kind: str, tokenizer, out: Path, max_length: int = 512) -> Path:
    """A Hugging Face folder of a tiny randomly initialised model of a kind classit does not train, and
    ``tokenizer``: ``gpt2``, ``gpt_neox`` (Pythia), ``opt`` or ``llama``; or a LLaMA with a tokenizer without a pad
    token (``no_pad``), one that pads on the left (``left_padding``), its weights in ``bf16`` or ``fp16``, in
    ``pytorch_model.bin`` (``pytorch_bin``), or behind its own modelling code (``remote_code``: ``auto_map`` in
    config.json and ``modeling_tiny.py``, a LLaMA subclass). ``max_length``: its positions."""
    import torch
    from transformers import (AutoTokenizer, GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig,
                              LlamaForCausalLM, OPTConfig, OPTForCausalLM)

    torch.manual_seed(0)
    ids = {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=max_length, **ids))
    elif kind == "gpt_neox":
        model = GPTNeoXForCausalLM(GPTNeoXConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                 intermediate_size=64, max_position_embeddings=max_length, **ids))
    elif kind == "opt":
        model = OPTForCausalLM(OPTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, ffn_dim=64,
                                         word_embed_proj_dim=32, max_position_embeddings=max_length, **ids))
    else:
        model = LlamaForCausalLM(LlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=64, max_position_embeddings=max_length, **ids))
    if kind in ("bf16", "fp16"):
        model = model.to({"bf16": torch.bfloat16, "fp16": torch.float16}[kind])
    model.save_pretrained(out)
    if kind == "pytorch_bin":  # the older format, as torch.save writes it (transformers 5 saves safetensors only)
        from safetensors.torch import load_file

        torch.save(load_file(out / "model.safetensors"), out / "pytorch_model.bin")
        (out / "model.safetensors").unlink()
    saved = AutoTokenizer.from_pretrained(tokenizer.name_or_path, **({"padding_side": "left"} if kind == "left_padding"
                                                                      else {}))
    if kind == "no_pad":
        saved.pad_token = None
    saved.save_pretrained(out)
    if kind == "remote_code":
        (out / "modeling_tiny.py").write_text(
            "from transformers import LlamaConfig, LlamaForCausalLM\n\n\n"
            "class TinyConfig(LlamaConfig):\n    model_type = 'tiny_remote'\n\n\n"
            "class TinyForCausalLM(LlamaForCausalLM):\n    config_class = TinyConfig\n")
        config = json.loads((out / "config.json").read_text())
        config.update(model_type="tiny_remote", architectures=["TinyForCausalLM"],
                      auto_map={"AutoConfig": "modeling_tiny.TinyConfig",
                                "AutoModelForCausalLM": "modeling_tiny.TinyForCausalLM"})
        (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


def config_copy(path: Path) -> dict:
    """A config file's settings, to change and write elsewhere: its ``base:`` (relative to the file) made absolute."""
    config = yaml.safe_load(path.read_text())
    if "base" in config:
        config["base"] = str(path.parent / config["base"])
    return config


def milestone_run(run: Path, model_dir: Path, scales: dict[int, float]) -> Path:
    """A run folder whose ``milestones/chck_{N}M`` (words: ``scales``' keys) are the model of ``model_dir`` with its
    output layer scaled by ``scales[words]`` (large: confidently wrong), so surprisals fall with words seen as a
    run's do, each with its ``milestone.json``."""
    import torch

    from classit import layout
    from classit.export import load_pretrained
    from classit.files import write_json

    model, tokenizer = load_pretrained(model_dir)
    weight = model.get_output_embeddings().weight.detach().clone()
    for words, scale in scales.items():
        with torch.no_grad():
            model.get_output_embeddings().weight.copy_(weight * scale)
        out = layout.milestone_export(run, words)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        write_json({"words": words, "words_seen": words, "step": 0, "stage": 0}, out / layout.MILESTONE_FILE)
    return run


def aoa_data_of_size(root: Path, sentences: list[str], contexts: int, words: int = 12) -> Path:
    """``aoa_data`` with exactly ``contexts`` contexts in ``cdi_childes.json`` (the official collator checks the count
    a checkpoint: 8,005): each word's contexts cut to their last three words, cheap to score, and repeated in turn."""
    aoa_data(root, sentences, words)
    path = root / "aoa" / "cdi_childes.json"
    found = {w: [{**c, "context": " ".join(c["context"].split()[-3:])} for c in entries]
             for w, entries in json.loads(path.read_text()).items()}
    share = [contexts // len(found) + (k < contexts % len(found)) for k in range(len(found))]
    path.write_text(json.dumps({w: [c[i % len(c)] for i in range(n)] for (w, c), n in zip(found.items(), share)}))
    return root


def curriculum_run(data_root: Path, tokenizer: str, tmp: Path, milestones: tuple[int, ...] = (3000, 6000, 9000)) -> Path:
    """The demo's sequential curriculum (pre-training → Switchboard → Simple Wikipedia), tiny (``tiny_curriculum``:
    12 steps, ≈10k words) and without its epoch-end scoring, its milestone exports at ``milestones`` words: its run
    folder (milestones, hf/stage{i}_{name} and hf/, each with its milestone.json)."""
    config = config_copy(CONFIGS / "demo_seq.yaml")
    callbacks = [c for c in config["trainer"]["callbacks"] if not c["class_path"].endswith("MinimalPairEvalCallback")]
    next(c for c in callbacks if c["class_path"].endswith("MilestoneExport"))["init_args"]["milestones"] = list(milestones)
    config["trainer"]["callbacks"] = callbacks
    config["trainer"]["logger"]["init_args"]["save_dir"] = str(tmp / "logs")
    path = tmp / "demo_seq.yaml"
    path.write_text(yaml.safe_dump(config))
    main(["fit", "--config", str(path), *tiny_curriculum(demo_data(data_root, tmp / "data"), tokenizer)])
    return tmp / "logs" / "demo_seq" / "version_0"


def fast_eval_data(data_root: Path, root: Path) -> Path:
    """A data folder with small fast sets of five tasks: ``small_eval_fast``'s real BLiMP (3 paradigms) and EWoK
    (2 domains) items, and built here in the official formats entity tracking (``babylm-eval-fast``), WUG
    adjective nominalization and the reading CSV (``babylm-eval``, as the fast sets read them)."""
    small_eval_fast(data_root, root)
    rng = random.Random(0)
    write_jsonl(root / "babylm-eval-fast" / "entity_tracking_fast" / "regular.jsonl", entity_tracking_items(rng, 12))
    write_jsonl(root / "babylm-eval" / "wug_adj_nominalization" / "wug_adj_nominalization.jsonl", wug_items(rng, 20))
    write_reading_csv(root / "babylm-eval" / "reading" / "reading_data.csv", sample_sentences(data_root), rng)
    return root
