import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from nabra.cli import main
from nabra.corpus.audio import load_audio
from nabra.corpus.manifest import read_manifest
from nabra.errors import NabraError
from nabra.model import load
from nabra.model.collate import Collator
from nabra.tasks import iter_examples
from nabra.testing import write_release_checkpoint


def _batch(bundle, corpus, n=4, **kw):
    examples = list(iter_examples(read_manifest(corpus)))[:n]
    samples = [(e, load_audio(e.audio) if e.audio else None) for e in examples]
    return Collator(bundle.tokenizer, bundle.feature_extractor)(samples, **kw)


def _tensors(batch):
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}


def test_tiny_checkpoint_layout_and_size(tiny_dir, bundle):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json", "chat_template.jinja"):
        assert (tiny_dir / name).is_file(), name
    assert json.loads((tiny_dir / "config.json").read_text())["model_type"] == "qwen2_5_omni_thinker"
    assert bundle.layout == "thinker"
    assert sum(p.numel() for p in bundle.model.parameters()) < 5_000_000
    # The byte-level BPE round-trips Arabic exactly.
    text = "قالَ المعلّم: الجو جميل اليوم ١٢٣"
    assert bundle.tokenizer.decode(bundle.tokenizer(text)["input_ids"]) == text


def test_forward_backward_generate(bundle, corpus):
    model = bundle.model
    batch = _tensors(_batch(bundle, corpus, 6))
    model.train()
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "audio_tower.proj" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)  # the audio path gets gradient
    model.zero_grad()
    model.eval()
    gen = _tensors(_batch(bundle, corpus, 3, for_generation=True))
    assert "labels" in gen and (gen["labels"] == -100).all()
    gen.pop("labels")
    with torch.no_grad():
        ids = model.generate(**gen, max_new_tokens=5, do_sample=False)
    assert ids.shape[0] == 3 and ids.shape[1] <= gen["input_ids"].shape[1] + 5


def test_release_layout_reads_only_the_thinker(tiny_dir, bundle, tmp_path):
    release = write_release_checkpoint(tiny_dir, tmp_path / "release", talker_mb=4)
    loaded = load(release)
    assert loaded.layout == "release"
    ref, got = bundle.model.state_dict(), loaded.model.state_dict()
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert not any(k.startswith(("talker", "token2wav")) for k in got)


def test_release_talker_weights_never_reach_memory(tiny_dir, tmp_path):
    # 400 MB of talker weights: loading the thinker must not grow the process by anything like that.
    release = write_release_checkpoint(tiny_dir, tmp_path / "release", talker_mb=400)
    code = (
        "import resource, sys; from nabra.model import load;"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "load(sys.argv[1]);"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)"
    )
    # Import transformers/torch first so their own footprint is not counted.
    code = "import torch, transformers, nabra.model.load;" + code
    grew_mb = float(subprocess.run([sys.executable, "-c", code, str(release)], check=True, capture_output=True,
                                   text=True).stdout.strip().splitlines()[-1])
    assert grew_mb < 150, f"loading grew the process by {grew_mb:.0f} MB"


def test_not_a_checkpoint_errors_name_what_is_missing(tiny_dir, tmp_path):
    with pytest.raises(NabraError, match="not a folder"):
        load(tmp_path / "nope")
    with pytest.raises(NabraError, match="no config.json"):
        load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(NabraError, match="model_type is 'llama'"):
        load(tmp_path)
    (tmp_path / "config.json").write_text((tiny_dir / "config.json").read_text())
    with pytest.raises(NabraError, match=r"missing weights \(\*\.safetensors\), tokenizer .*, feature extractor"):
        load(tmp_path)


def test_cli_init_tiny_and_info(corpus, tmp_path, capsys):
    assert main(["model", "init-tiny", str(tmp_path / "t"), "--corpus", str(corpus), "--vocab-size", "400",
                 "--hidden-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "Qwen2.5-Omni thinker (family qwen2_5_omni, thinker layout)" in out and "400 tokens" in out
    assert main(["model", "info", str(tmp_path / "missing")]) == 2


def _copy_model(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("damage", ["garbage config", "config not an object", "random weights", "torn weights",
                                    "garbage tokenizer", "garbage preprocessor", "wrong config shape"])
def test_a_model_folder_of_random_files_is_one_line(tiny_dir, tmp_path, capsys, damage):
    folder = _copy_model(tiny_dir, tmp_path / "m")
    rng = np.random.default_rng(0)
    weights = next(folder.glob("*.safetensors"))
    if damage == "garbage config":
        (folder / "config.json").write_bytes(rng.bytes(300))
    elif damage == "config not an object":
        (folder / "config.json").write_text("[1, 2]")
    elif damage == "random weights":
        weights.write_bytes(rng.bytes(4096))
    elif damage == "torn weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "garbage tokenizer":
        (folder / "tokenizer.json").write_bytes(rng.bytes(500))
    elif damage == "garbage preprocessor":
        (folder / "preprocessor_config.json").write_text("{not json")
    else:
        cfg = json.loads((folder / "config.json").read_text())
        cfg["text_config"]["hidden_size"] = 96  # weights of another shape
        (folder / "config.json").write_text(json.dumps(cfg))
    assert main(["model", "info", str(folder)]) == 2
    err = capsys.readouterr().err  # transformers' own loading bar and load report may come before
    assert err.strip().splitlines()[-1].startswith(f"nabra: error: {folder}"), err
    assert "Traceback" not in err


def test_init_tiny_writes_only_into_an_empty_or_absent_folder(corpus, tmp_path, capsys):
    from nabra.model.tiny import TinyConfig, init_tiny

    mine = tmp_path / "my-model"
    mine.mkdir()
    (mine / "pytorch_model.bin").write_bytes(b"the user's own weights")
    with pytest.raises(NabraError, match="holds pytorch_model.bin, and is not an earlier tiny model"):
        init_tiny(mine, corpus, TinyConfig(vocab_size=300, hidden_size=64), force=True)
    assert sorted(p.name for p in mine.iterdir()) == ["pytorch_model.bin"]  # untouched
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = TinyConfig(vocab_size=300, hidden_size=64)
    assert (init_tiny(empty, corpus, cfg) / "config.json").is_file()
    with pytest.raises(NabraError, match="pass --force"):
        init_tiny(empty, corpus, cfg)
    assert (init_tiny(empty, corpus, cfg, force=True) / "config.json").is_file()  # an earlier tiny model, replaced
    assert main(["model", "init-tiny", str(empty), "--corpus", str(corpus), "--vocab-size", "300"]) == 2
    assert "holds an earlier tiny model (its nabra_tiny.json): pass --force" in capsys.readouterr().err


def test_tiny_release_is_what_the_stock_class_loads(tiny_dir, tmp_path):
    from transformers import Qwen2_5OmniForConditionalGeneration

    release = write_release_checkpoint(tiny_dir, tmp_path / "release")
    names = sorted(p.name for p in release.iterdir())
    assert {"spk_dict.pt", "model.safetensors.index.json", "preprocessor_config.json", "chat_template.jinja",
            "tokenizer.json", "generation_config.json"} <= set(names)
    assert sum(n.endswith(".safetensors") for n in names) >= 2  # sharded, as the release is
    index = json.loads((release / "model.safetensors.index.json").read_text())["weight_map"]
    assert {k.split(".")[0] for k in index} == {"thinker", "talker", "token2wav"}
    assert "thinker.model.embed_tokens.weight" in index and "thinker.audio_tower.conv1.weight" in index
    pre = json.loads((release / "preprocessor_config.json").read_text())
    assert pre["n_samples"] == 4_800_000 and pre["image_processor_type"] == "Qwen2VLImageProcessor"
    stock = Qwen2_5OmniForConditionalGeneration.from_pretrained(release, local_files_only=True)
    assert stock.has_talker and set(stock.speaker_map) == {"Chelsie", "Ethan"}
    ours = load(release).model
    ref = ours.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in stock.thinker.state_dict().items())


def test_tiny_tokenizer_is_character_level_for_arabic_and_keeps_label_words_whole():
    from nabra.corpus.labels import DIALECTS, EMOTIONS
    from nabra.corpus.manifest import Utterance
    from nabra.model.tiny import corpus_texts, train_tokenizer

    text = "الجو حلو النهاردة، قال السيد في مؤتمر صحفي"
    utts = [Utterance(id=f"u{i}", audio="a.wav", transcript=text, dialect=DIALECTS.names[i % 5],
                      emotion=EMOTIONS.names[i % 5]) for i in range(50)]  # labels as often as they are answered
    tok = train_tokenizer(corpus_texts(utts), 400)
    letters = [c for c in text if not c.isspace()]
    pieces = [p for p in tok.tokenize(text) if p != "Ġ"]
    assert len(pieces) == len(letters)  # one token per Arabic letter, even for a sentence seen 50 times
    for name in (*DIALECTS.names, *EMOTIONS.names):
        assert len(tok.tokenize(name)) == 1, name
    mixed = "سعيد happy  ١٢٣ x\u064e"
    assert tok.decode(tok.encode(mixed)) == mixed


def test_whole_words_are_one_token_each_and_the_rest_stays_letters():
    # The shaped demo's base: its news words whole (as a real BPE has its frequent words), letters elsewhere.
    from nabra.corpus.manifest import Utterance
    from nabra.corpus.synth import news_words, summary_pairs
    from nabra.model.tiny import corpus_texts, train_tokenizer

    pairs = summary_pairs(200, 3)
    words = news_words()
    tok = train_tokenizer(corpus_texts(pairs + [Utterance(id="x", audio="a.wav", transcript="دلوقتي عايز ازاي")]),
                          3000, whole_words=words)
    summary = pairs[0].summary
    # every news word of a summary is one token; the rest are letters (the full stop, a prefixed "ل")
    pieces = [tok.convert_tokens_to_string([p]) for p in tok.tokenize(summary)]
    pieces = [p for p in pieces if p.strip()]
    known = [w for w in summary.rstrip(".").split() if w in words]
    assert len(known) >= 8 and all(w in pieces for w in known)
    assert all(p in words or len(p) == 1 for p in pieces), pieces
    letters = "دلوقتي عايز ازاي"  # a dialect sentence: not news words, letter by letter
    assert len([p for p in tok.tokenize(letters) if p != "Ġ"]) == len(letters.replace(" ", ""))
    assert "والوزير" not in words and len(tok.tokenize("والوزير")) > 1  # "و" + a news word is not one word
    for text in (summary, letters, pairs[1].transcript):
        assert tok.decode(tok.encode(text)) == text
