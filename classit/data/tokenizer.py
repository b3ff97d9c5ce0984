"""Train and load the byte-level BPE tokenizer (BOS first, EOS/PAD and chat tokens reserved); the run's one
tokenizer (:func:`run_tokenizer`), which the CLI hands to the curriculum's sources, the model and its exports."""

import hashlib
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from classit.data.chat import install_chat_template
from classit.data.corpus import corpus_files, iter_text_chunks
from classit.data.store import build_once, fingerprint
from classit.files import atomic_path

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
CHAT_TOKENS = ["<|user|>", "<|assistant|>", "<|end|>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, *CHAT_TOKENS]
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())  # 6 special tokens + 256 bytes


def check_vocab_size(vocab_size: int, key: str) -> None:
    """Stop, naming the config key or option ``key``, when the BPE to train cannot hold its special tokens and
    the 256 byte symbols it starts from."""
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"{key}: {vocab_size} tokens is too few; the byte-level BPE needs at least {MIN_VOCAB_SIZE} "
                         f"({len(SPECIAL_TOKENS)} special tokens + 256 bytes) before any merge; the configs use "
                         "8192 to 16384")


def train_tokenizer(files: list[Path], vocab_size: int, out: Path) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``files`` and save a folder that ``AutoTokenizer`` loads."""

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=True,
    )
    bpe.train_from_iterator((chunk for f in files for chunk in iter_text_chunks(f)), trainer)
    bpe.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {EOS} $B",
            special_tokens=[(BOS, bpe.token_to_id(BOS)), (EOS, bpe.token_to_id(EOS))],
        ),
    ])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=CHAT_TOKENS, model_max_length=1_000_000,
    )
    try:
        with atomic_path(out) as temporary:
            tokenizer.save_pretrained(temporary)
    except OSError:
        if not out.is_dir():  # else another process saved it first
            raise
    return load_tokenizer(out)


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts its BOS token first (classit's do; GPT-2's, Pythia's and most Hub tokenizers
    do not)."""
    return tokenizer.bos_token_id is not None and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]


def load_tokenizer(path: str | Path, need_bos: bool = True) -> PreTrainedTokenizerFast:
    """Load a tokenizer folder: a fast one (the scoring reads its character offsets) that prepends BOS, as classit's
    training needs; ``need_bos=False`` (a model to evaluate) also takes one without BOS."""
    path = Path(path)
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"{path}: not a tokenizer folder (no tokenizer.json); "
                                f"train one with `classit tokenizer --corpus DIR --out {path}`")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if not tokenizer.is_fast:
        raise ValueError(f"{path}: {type(tokenizer).__name__} is a slow tokenizer, without the character offsets the "
                         "scoring needs; save a fast one in the folder (a tokenizer.json: transformers' "
                         "convert_slow_tokenizer, or the tokenizers library)")
    if need_bos and not adds_bos(tokenizer):
        raise ValueError(f"{path}: tokenizer does not put its BOS token first; classit trains with BOS first "
                         "(minimal-pair scoring would leave the first word unscored)")
    return tokenizer


def cached_tokenizer(files: list[Path], vocab_size: int, cache_dir: Path) -> PreTrainedTokenizerFast:
    """Load the tokenizer trained on these files' content and size; one process trains it, the others wait."""
    out = Path(cache_dir) / f"tokenizer-{vocab_size}-{fingerprint(files)}"
    return load_tokenizer(build_once(out, lambda tmp: train_tokenizer(files, vocab_size, tmp)))


def run_tokenizer(folder: str | None, vocab_size: int, cache_dir: Path, sources: dict, stages: list):
    """The run's one tokenizer, its chat template installed: the folder ``folder`` (``data.tokenizer``), else one of
    ``vocab_size`` tokens trained once (cached in ``cache_dir``) on the first source in a stage that has training
    text (the BabyLM corpus)."""
    if folder:
        return install_chat_template(load_tokenizer(folder))
    used = [source for name, source in sources.items() if any(name in stage.sources for stage in stages)]
    files = next((f for source in used if (f := source.tokenizer_files())), None)
    if not files:
        check_corpus_in_a_stage(sources, stages)
        raise ValueError("data.tokenizer: no source has text to train a tokenizer on; "
                         "give the pre-trained model's tokenizer folder")
    return install_chat_template(cached_tokenizer(files, vocab_size, cache_dir))


def check_corpus_in_a_stage(sources: dict, stages: list) -> None:
    """A corpus source (one with text to train the tokenizer on) left out of every stage stops naming it and the
    stages: the run has no text to train its tokenizer on."""
    for name, source in sources.items():
        if not any(name in stage.sources for stage in stages) and source.tokenizer_files():
            listed = "; ".join(f"{stage.name}: {', '.join(stage.sources)}" for stage in stages)
            raise ValueError(f"data.stages: the corpus source '{name}' is in no stage ({listed}), so no tokenizer "
                             f"can be trained; add '{name}' to a stage's sources, or set data.tokenizer to a "
                             "tokenizer folder")


def vocabulary(folder: str | None, vocab_size: int) -> tuple[int, dict[str, int]]:
    """The size and pad/bos/eos ids of the run's tokenizer, known before it is trained (the model is built from
    them): those of the folder ``folder``, else ``vocab_size`` and the ids a trained one reserves first."""
    if not folder:
        return vocab_size, {"pad_token_id": SPECIAL_TOKENS.index(PAD), "bos_token_id": SPECIAL_TOKENS.index(BOS),
                            "eos_token_id": SPECIAL_TOKENS.index(EOS)}
    t = load_tokenizer(folder)
    return len(t), {"pad_token_id": t.pad_token_id, "bos_token_id": t.bos_token_id, "eos_token_id": t.eos_token_id}


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerFast) -> str:
    """A short hash of the tokenizer's full definition, for cache keys."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:12]


def tokenizer_command(*, corpus: str, out: str, vocab_size: int = 16384, suffix: str = ".train") -> None:
    """Train a byte-level BPE tokenizer (BOS first; EOS, PAD and chat tokens reserved) on a corpus folder.

    Args:
        corpus: folder of corpus files.
        out: folder to write; ``AutoTokenizer.from_pretrained(out)`` loads it.
        vocab_size: vocabulary size, special tokens included.
        suffix: which files of the folder to read.
    """
    check_vocab_size(vocab_size, "--vocab_size")
    tok = train_tokenizer(corpus_files(Path(corpus), suffix), vocab_size, Path(out))
    print(f"tokenizer with {len(tok)} tokens written to {out}")
