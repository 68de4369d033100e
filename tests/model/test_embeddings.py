import numpy as np
import pytest

from nabra.model import embeddings as emb
from nabra.model.embeddings import aligner_fingerprint, compute_embeddings


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

    def flaky(model, collator, tokenizer, utts, *rest):
        calls.append(utts[0].id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(model, collator, tokenizer, utts, *rest)

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
    from nabra.model.config import LoraConfig
    from nabra.model.lora import apply_lora

    model = apply_lora(load(tiny_dir).model, LoraConfig(train_aligner=True))
    before = aligner_fingerprint(model)
    assert aligner_fingerprint(model) == before
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if p.requires_grad and "audio_tower" in n).add_(1.0)
    assert aligner_fingerprint(model) != before
    # LoRA on the language model does not change what the aligner embeds: same key, no recomputation.
    after = aligner_fingerprint(model)
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n).add_(1.0)
    assert aligner_fingerprint(model) == after


@pytest.mark.parametrize(("batch_size", "batch_tokens"), [(1, None), (4, 60)])
def test_sharded_over_ranks_with_equal_forwards_into_one_cache(bundle, corpus, tmp_path, monkeypatch, batch_size,
                                                               batch_tokens):
    # batch_tokens: batches by audio tokens (the clips are 0.5-1.4 s, 13-36 tokens): the ranks' shards need
    # different numbers of forwards, and the rank with fewer runs stand-ins.
    import threading

    whole = compute_embeddings(bundle, corpus, tmp_path / "one", progress=False)
    forwards, local, real = {0: 0, 1: 0}, threading.local(), emb._audio_means

    def counting(*a):
        forwards[local.rank] += 1
        return real(*a)

    monkeypatch.setattr(emb, "_audio_means", counting)
    monkeypatch.setattr(emb, "CHUNK", 2)
    barrier, tables = threading.Barrier(2, timeout=60), {}

    def process(rank):  # two "processes" of one run, with a real barrier between them
        local.rank = rank
        tables[rank] = compute_embeddings(bundle, corpus, tmp_path / "two", progress=False, batch_size=batch_size,
                                          rank=rank, world=2, barrier=barrier.wait, batch_tokens=batch_tokens)

    threads = [threading.Thread(target=process, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert forwards[0] == forwards[1] == (5 if batch_tokens is None else forwards[0])  # FSDP ranks stay in step
    if batch_tokens:
        assert 3 <= forwards[0] < 5  # several clips a forward, within 60 tokens
    table = tables[1]
    assert sorted(table.keys) == sorted(whole.keys) and tables[0].keys == table.keys
    for k in whole.keys:
        assert np.allclose(table.vectors[table.index[k]], whole.vectors[whole.index[k]], atol=2e-3)
    assert not list((tmp_path / "two").glob("*/part-*"))


def test_projection_to_a_fixed_width(bundle, corpus, tmp_path):
    full = compute_embeddings(bundle, corpus, tmp_path / "full", progress=False)
    small = compute_embeddings(bundle, corpus, tmp_path / "small", progress=False, dim=16, seed=3)
    again = compute_embeddings(bundle, corpus, tmp_path / "again", progress=False, dim=16, seed=3)
    assert full.vectors.shape[1] == bundle.model.config.text_config.hidden_size and small.vectors.shape[1] == 16
    assert np.array_equal(small.vectors, again.vectors)  # seeded
    # The projection keeps the geometry: cosines before and after agree closely.
    def cos(v):
        v = v.astype(np.float32)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        return (v @ v.T)[np.triu_indices(len(v), 1)]
    assert np.corrcoef(cos(full.vectors), cos(small.vectors))[0, 1] > 0.8


def test_unreadable_audio_gets_a_zero_vector_not_a_crash(bundle, corpus, tmp_path):
    import shutil

    from nabra.corpus.manifest import read_manifest

    copy = tmp_path / "c"
    shutil.copytree(corpus.parent, copy)
    first = read_manifest(copy / corpus.name)[0]
    (copy / first.audio).write_bytes(b"not audio")
    table = compute_embeddings(bundle, copy / corpus.name, tmp_path / "cache", progress=False)
    assert table.failed == 1 and not table.vectors[table.index[first.id]].any()


def test_example_vectors_are_one_read_only_unit_norm_map(bundle, corpus, tmp_path):
    from nabra.corpus.manifest import read_manifest
    from nabra.tasks import iter_examples

    compute_embeddings(bundle, corpus, tmp_path, progress=False, key="k")
    examples = list(iter_examples(read_manifest(corpus)))
    vectors = emb.example_vectors(tmp_path / "k", examples)
    assert isinstance(vectors, np.memmap) and not vectors.flags.writeable and vectors.dtype == np.float16
    assert vectors.shape[0] == len(examples)
    assert np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1.0, atol=2e-3)
