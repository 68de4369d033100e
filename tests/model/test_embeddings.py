import numpy as np
import pytest

from nabra.model import embeddings as emb
from nabra.model.embeddings import compute_embeddings, model_fingerprint


def test_embeddings_cover_every_utterance_and_are_cached(bundle, corpus, tmp_path, monkeypatch):
    table = compute_embeddings(bundle, corpus, tmp_path, progress=False)
    audio_keys = [k for k in table.keys if not k.endswith("#text")]
    assert len(audio_keys) == 10 and len(table.keys) == 10 + 4  # 4 utterances also serve tsum
    assert table.vectors.dtype == np.float16 and table.vectors.shape[1] == bundle.model.config.text_config.hidden_size
    assert np.isfinite(table.vectors.astype(np.float32)).all()
    assert not np.allclose(table.vectors[0], table.vectors[1])  # different clips, different vectors
    assert np.array_equal(table.for_example("u000", "tsum"), table.vectors[table.index["u000#text"]])

    def boom(*a, **k):
        raise AssertionError("recomputed instead of read from cache")

    monkeypatch.setattr(emb, "_embed_chunk", boom)
    again = compute_embeddings(bundle, corpus, tmp_path, progress=False)
    assert again.keys == table.keys and np.array_equal(again.vectors, table.vectors)


def test_interrupted_run_resumes_from_finished_chunks(bundle, corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(emb, "CHUNK", 3)  # 10 utterances -> 4 chunks
    calls = []
    real = emb._embed_chunk

    def flaky(model, collator, tokenizer, utts, batch_size):
        calls.append(utts[0].id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(model, collator, tokenizer, utts, batch_size)

    monkeypatch.setattr(emb, "_embed_chunk", flaky)
    with pytest.raises(KeyboardInterrupt):
        compute_embeddings(bundle, corpus, tmp_path, progress=False)
    assert len(list(tmp_path.glob("*/part-*.npz"))) == 2
    calls.clear()
    monkeypatch.setattr(emb, "_embed_chunk", real_spy := (lambda *a: (calls.append(a[3][0].id), real(*a))[1]))
    table = compute_embeddings(bundle, corpus, tmp_path, progress=False)
    assert calls == ["u006", "u009"]  # only the chunks not on disk
    assert real_spy and len(table.keys) == 14
    fresh = compute_embeddings(bundle, corpus, tmp_path / "fresh", progress=False)
    assert fresh.keys == table.keys and np.allclose(fresh.vectors, table.vectors)


def test_fingerprint_changes_with_trainable_weights(tiny_dir):
    import torch

    from nabra.model import load
    from nabra.model.lora import apply_lora

    model = apply_lora(load(tiny_dir).model)
    before = model_fingerprint(model)
    assert model_fingerprint(model) == before
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(1.0)
    assert model_fingerprint(model) != before
