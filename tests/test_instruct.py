"""Instruction data: Switchboard pairs, Simple Wikipedia lectures, build-it, the data modules, bad input."""

import json

import pytest

from classit.data.build_it import build_it
from classit.data.chat import render
from classit.data.curriculum import CurriculumDataModule
from classit.data.lectures import LMLectureGenerator, SimpleWikiLectures, TemplateLectureGenerator, read_articles
from classit.data.switchboard import (
    BACKCHANNEL_WORDS,
    Switchboard,
    dialogue_pairs,
    read_babylm_switchboard,
    read_swda,
    switchboard_examples,
    turns,
)
from classit.train.fit import curriculum_tokenizer
from helpers import error_line

SIMPLE_WIKI = "babylm-corpus/train_3M/simple_wiki.train"


@pytest.fixture(scope="module")
def articles(data_root):
    return read_articles(data_root / SIMPLE_WIKI)


@pytest.mark.full_data("SwDA conversation swda/train/2005.txt")
def test_swda_conversation_turns_and_pairs(data_root):
    utterances = read_swda(data_root / "swda/train/2005.txt")
    said = turns(utterances)
    assert said[0].startswith("Okay. Uh, first, um, I need to know") and said[0].endswith("to a nursing home?")
    assert said[1].startswith("Well, of course, it's") and said[1].endswith("for their own good.")
    assert said[2] == "Yes. Yeah."
    # A's "Uh-huh." and "Yeah." backchannels are gone; B's interrupted turn is one turn again
    assert said[3].startswith("I'd be very very careful") and "Uh-huh" not in said[3]
    assert "I was fortunate in that I was personally acquainted" in said[3]
    assert said[3].endswith("smaller areas, smaller towns.")
    kept = turns(utterances, drop_backchannels=False)
    assert kept[4] == "Uh-huh." and len(kept) > len(said)

    pairs = dialogue_pairs(utterances, min_words=3)
    assert (pairs[0].prompt, pairs[0].reply) == (said[0], said[1])
    assert pairs[1].prompt == said[3]  # "Yes. Yeah." is too short a turn to be a prompt or a reply
    assert pairs[0].source == "switchboard" and pairs[0].text == render(said[0], said[1])
    context = dialogue_pairs(utterances, context_turns=2, min_words=3)
    assert context[1].prompt == "\n".join(said[1:4]) and context[1].reply == said[4]


@pytest.mark.slow
@pytest.mark.full_data("SwDA's whole training split (1,115 conversations)")
def test_swda_training_split_gives_tens_of_thousands_of_pairs(data_root):
    examples = switchboard_examples(data_root / "swda/train")
    assert 30_000 < len(examples) < 60_000  # the paper had 38,802
    assert all(len(x.reply.split()) >= 3 for x in examples)


@pytest.mark.full_data("BabyLM's switchboard.train (babylm-corpus/train_3M)")
def test_babylm_switchboard_file(data_root):
    utterances = read_babylm_switchboard(data_root / "babylm-corpus/train_3M/switchboard.train")
    assert utterances[0].speaker == "A" and utterances[0].text == "I'm sure they are."
    examples = switchboard_examples(babylm_file=data_root / "babylm-corpus/train_3M/switchboard.train", min_words=1)
    assert len(examples) > 3000
    assert not any(x.reply.lower().strip(".,?!") in BACKCHANNEL_WORDS for x in examples)


def test_lectures_from_real_simple_wikipedia(articles):
    assert len(articles) > 1000  # 1,216 in the bundled sample
    by_title = {a.title: a for a in articles}
    assert [h for h, _ in by_title["Mombasa"].sections][:3] == [None, "Geography", "Demography"]
    examples = {x.prompt: x for x in TemplateLectureGenerator().generate([by_title["Poales"], by_title["Mombasa"]])}
    assert examples["What is Poales?"].reply.startswith("Poales is a taxonomic order of flowering plants")
    assert examples["Tell me about the diversity and uses of Poales."].reply.startswith(
        "The Poales are the most economically important order of monocots")
    assert examples["Tell me about the geography of Mombasa."].reply.startswith("Mombasa is a coastal town")
    assert "Tell me about Mombasa in popular culture." in examples
    assert all(x.source == "simple_wiki" and x.text == render(x.prompt, x.reply) for x in examples.values())
    everything = list(TemplateLectureGenerator().generate(articles))
    assert len(everything) > 1.5 * len(articles)
    assert any(x.prompt.startswith("Who is ") for x in everything)
    definition = next(x for x in everything if x.prompt == "What is Grass?")
    assert definition.reply.startswith("Grass is a valuable source of food")


@pytest.mark.full_data("the whole 3M-word simple_wiki.train (babylm-corpus/train_3M)")
def test_lectures_from_the_whole_simple_wikipedia_file(articles):
    assert len(articles) > 4000
    assert len(list(TemplateLectureGenerator().generate(articles))) > 6000


def test_lm_generator_path_with_a_tiny_model(articles, tiny_model_dir):
    generator = LMLectureGenerator(str(tiny_model_dir), max_new_tokens=6, batch_size=4, device="cpu")
    passages = [t for a in articles[1:4] for _, t in generator.passages(a)]
    examples = list(generator.generate(articles[1:4]))
    assert 0 < len(examples) <= len(passages)
    assert all(x.reply in passages and x.prompt and x.source == "simple_wiki" for x in examples)
    assert LMLectureGenerator._question(" What is a cat? It is\nmore") == "What is a cat?"


@pytest.mark.slow
def test_build_it_writes_both_sets(data_root, tmp_path, capsys):
    build_it(out=str(tmp_path), data_dir=str(data_root))
    printed = capsys.readouterr().out
    for name in ("switchboard", "simple_wiki"):
        rows = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        assert set(rows[0]) == {"prompt", "reply", "source", "text"} and rows[0]["source"] == name
        assert f"{name}: {len(rows):,} examples" in printed


def test_sources_build_once_and_give_batches(data_root, tokenizer, tmp_path):
    for split, n in (("train", 40), ("val", 5)):  # a few real conversations keep the test fast
        (tmp_path / "swda" / split).mkdir(parents=True)
        for f in sorted((data_root / "swda" / split).glob("*.txt"))[:n]:
            (tmp_path / "swda" / split / f.name).write_bytes(f.read_bytes())
    (tmp_path / "wiki").mkdir()
    text = (data_root / SIMPLE_WIKI).read_text(encoding="utf-8")
    (tmp_path / "wiki" / "simple_wiki.train").write_text(text[:200_000], encoding="utf-8")
    (tmp_path / "wiki" / "simple_wiki.dev").symlink_to(data_root / "babylm-corpus/dev/simple_wiki.dev")
    sources = {"talk": Switchboard(pack=True),
               "wiki": SimpleWikiLectures(file="wiki/simple_wiki.train", val_file="wiki/simple_wiki.dev")}
    dm = CurriculumDataModule(sources, data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), batch_size=4,
                              block_size=256, tokenizer=tokenizer.name_or_path, num_workers=0)
    handed = curriculum_tokenizer(dm)
    dm.use_tokenizer(handed)
    dm.prepare_data()
    built = sorted((tmp_path / "cache" / "instructions").iterdir())
    dm.prepare_data()  # found again, not rebuilt
    assert sorted((tmp_path / "cache" / "instructions").iterdir()) == built and len([b for b in built if b.is_dir()]) == 4
    dm.setup("fit")
    assert handed.chat_template and set(dm.val_sources) == {"talk", "wiki"}

    talk = sources["talk"]
    examples = talk.build_examples("train")
    assert talk.stats()["examples"] == len(examples) > dm.sizes["talk"]  # several examples a row
    assert talk.stats()["words"] <= sum(x.words for x in examples)  # words kept within block_size
    batch = talk.collate([dm.train_sets["talk"][0], dm.train_sets["talk"][1]])
    assert batch["position_ids"].shape == batch["input_ids"].shape and batch["input_ids"].shape[1] <= 256
    assert batch["words"].sum() > 0 and "attention_mask" not in batch  # packed rows: position_ids only

    loader = dm._loader(["wiki"], [dm.train_sets["wiki"]])
    batch = loader.dataset[(0, [0, 1, 2, 3])]
    assert {"input_ids", "labels", "attention_mask", "words"} <= set(batch) and batch["source"] == ["wiki"] * 4
    first = dm.train_sets["wiki"][0]
    words = len(tokenizer.decode([t for t, l in zip(first["input_ids"], first["labels"]) if l != -100]).split())
    assert first["words"] > words  # the prompt's words count too (BabyLM's budget), not only the reply's


def test_bad_swda_line_names_file_and_line(tmp_path):
    """``classit data build-it`` over a malformed SwDA or BabyLM switchboard line: one line naming file:line and
    what the line lacks; nothing written."""
    (tmp_path / "swda").mkdir()
    (tmp_path / "wiki.train").write_text("= = = Cat = = =\nA cat is an animal.\n")
    path = tmp_path / "swda" / "0001.txt"
    build = ["data", "build-it", "--data_dir", str(tmp_path), "--swda", "swda", "--simple_wiki", "wiki.train",
             "--out", str(tmp_path / "it")]
    expected = "expected SPEAKER|text|dialogue-act with speaker A or B"
    path.write_text("A|Hello there.|fp\nB|no dialogue act here\n")
    assert error_line(build) == f"{path}:2: malformed SwDA line 'B|no dialogue act here'; {expected}"
    path.write_text("C|Hello.|fp\n")
    assert error_line(build) == f"{path}:1: malformed SwDA line 'C|Hello.|fp'; {expected}"
    (tmp_path / "switchboard.train").write_text("A:\tfine\nspeaker three: hello\n")
    assert error_line([*build, "--swda", "null", "--switchboard", "switchboard.train"]) == (
        f"{tmp_path / 'switchboard.train'}:2: malformed switchboard line 'speaker three: hello'; "
        "expected 'A:<tab>text'")
    assert not (tmp_path / "it").exists()


def test_article_without_title_names_file_and_line(tmp_path):
    path = tmp_path / "wiki.train"
    path.write_text("= = = Cat = = =\nA cat is an animal.\n= = =  = = =\nThis article has no title.\n")
    with pytest.raises(ValueError, match=r"wiki.train:3:1: article with no title"):
        read_articles(path)
    path.write_text("Just text, and no titles at all.\n")
    with pytest.raises(ValueError, match=r"wiki.train:1:1: article with no title"):
        read_articles(path)
    path.write_text("the tail of a cut article. = = = Cat = = = A cat is a small animal. History. Cats lived "
                    "with people for a long time. = = = Dog = = = is a kind of animal.")
    cat, dog = read_articles(path)  # text before the first title is skipped
    assert cat.sections == [(None, ["A cat is a small animal."]),
                            ("History", ["Cats lived with people for a long time."])]
    assert dog.sections == [(None, ["Dog is a kind of animal."])]
