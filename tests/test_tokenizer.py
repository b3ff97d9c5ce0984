"""The BPE tokenizer: BOS first, reserved tokens, round trip, AutoTokenizer reload, caching."""

from transformers import AutoTokenizer

from classit.cli import main
from classit.data.tokenizer import CHAT_TOKENS, SPECIAL_TOKENS, load_tokenizer

TEXT = "Lucille's sisters are confused by Amy.\nA:\tUh-huh, I'm sure they are."


def test_round_trip_and_bos(tokenizer):
    ids = tokenizer(TEXT)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.decode(ids, skip_special_tokens=True) == TEXT
    assert len(tokenizer) == 2048


def test_special_tokens_are_single_ids(tokenizer):
    for token in SPECIAL_TOKENS:
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, token
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert set(CHAT_TOKENS) <= set(tokenizer.all_special_tokens)


def test_offsets_cover_the_text(tokenizer):
    enc = tokenizer("The cat sat.", return_offsets_mapping=True)
    assert enc["offset_mapping"][0] == (0, 0)  # BOS spans nothing
    assert enc["offset_mapping"][-1][1] == len("The cat sat.")


def test_cli_trains_a_folder_autotokenizer_loads(data_root, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "switchboard.train").write_bytes((data_root / "babylm-corpus/dev/switchboard.dev").read_bytes())
    main(["tokenizer", "--corpus", str(corpus), "--vocab_size", "600", "--out", str(tmp_path / "tok")])
    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert len(loaded) == 600
    assert loaded(TEXT)["input_ids"][0] == loaded.bos_token_id
    assert loaded.decode(loaded(TEXT)["input_ids"], skip_special_tokens=True) == TEXT


def test_cached_tokenizer_is_reused(tokenizer, cache_root):
    folders = list(cache_root.glob("tokenizer-2048-*"))
    assert len(folders) == 1
    assert load_tokenizer(folders[0])(TEXT)["input_ids"] == tokenizer(TEXT)["input_ids"]
