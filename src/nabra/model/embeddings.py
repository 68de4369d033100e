"""Aligner embeddings for the ADS schedule: one vector per utterance, in the model's own space.

For an utterance with audio: the mean over time of the audio tower's projected output (the
"aligner", i.e. what the language model receives), over all its audio runs. For text-only use
(``tsum``): the mean of the input embeddings of the transcript. Computed in batches without
gradients, sharded over the processes of a run, optionally reduced to a fixed width by a seeded
random projection, cached to disk as float16 under a key made of the weights that produce them
(the audio tower, the projector, the input embeddings), the data and the width; resumable: every
chunk is written as it is done, and a rerun skips the chunks already on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nabra.corpus.audio import check_samples, load_audio
from nabra.corpus.manifest import Utterance, iter_manifest
from nabra.errors import AudioError, NabraError
from nabra.files import atomic_path
from nabra.model.collate import Collator
from nabra.model.families import family_of_model
from nabra.progress import progress_bar
from nabra.schedule.micro import token_batches

CHUNK = 256
TEXT_SUFFIX = "#text"


@dataclass
class EmbeddingTable:
    """Vectors (float16) by key: the utterance id for audio, ``<id>#text`` for text-only use."""

    keys: list[str]
    vectors: np.ndarray
    failed: int = 0
    """Utterances whose audio failed to decode (their vectors are zero)."""

    def __post_init__(self):
        self.index = {k: i for i, k in enumerate(self.keys)}

    def for_example(self, utt_id: str, task: str) -> np.ndarray:
        key = utt_id + TEXT_SUFFIX if task == "tsum" else utt_id
        return self.vectors[self.index[key]]

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=np.array(self.keys), vectors=self.vectors, failed=np.array(self.failed))

    @classmethod
    def read(cls, path: Path) -> EmbeddingTable:
        with np.load(path) as data:
            return cls([str(k) for k in data["keys"]], data["vectors"], int(data["failed"]) if "failed" in data else 0)


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def aligner_parameters(model):
    """``(name, parameter)`` of the weights that produce an embedding: the audio tower with its
    projector (audio) and the input embeddings (text-only ``tsum``)."""
    thinker = _thinker(model)
    fam = family_of_model(thinker)
    embed = fam.input_embeddings(thinker)
    token_embedding = next(n for n, m in thinker.named_modules() if m is embed)
    parts = (fam.audio_encoder, *fam.aligner_modules, token_embedding)
    # parameter names of a PEFT wrapper carry a prefix, and its saved copies a ".modules_to_save." infix
    return [(n, p) for n, p in model.named_parameters() if any(f"{part}." in n for part in parts)]


def aligner_trains(model) -> bool:
    """Whether any weight that produces an embedding is being trained (else refreshes change nothing)."""
    return any(p.requires_grad for _, p in aligner_parameters(model))


def aligner_fingerprint(model, source: str | os.PathLike = "") -> str:
    """Identifies what an embedding depends on: where the weights came from, every parameter's name
    and shape, and the values of the trainable aligner weights (LoRA on the language model alone
    leaves it unchanged, so its embeddings are computed once)."""
    h = hashlib.blake2b(str(source).encode(), digest_size=16)
    for name, p in model.named_parameters():
        h.update(f"{name}{tuple(p.shape)}{p.dtype}".encode())
    for _, p in aligner_parameters(model):
        if p.requires_grad:
            h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def utterances_key(utts: list[Utterance]) -> str:
    """Identifies a list of utterances by what an embedding reads of them (audio span, transcript)."""
    h = hashlib.blake2b(digest_size=16)
    for u in utts:
        h.update(f"{u.id}\0{u.audio}\0{u.offset}\0{u.duration}\0{u.transcript if 'tsum' in u.tasks() else ''}\n".encode())
    return h.hexdigest()


def embedding_key(model, source: str | os.PathLike, data_key: str, dim: int = 0) -> str:
    """The cache key of (the weights that embed, the data, the output dimension)."""
    return f"{aligner_fingerprint(model, source)[:16]}-{data_key[:16]}" + (f"-d{dim}" if dim else "")


def compute_embeddings(bundle, manifest: str | os.PathLike | None, cache_dir: str | os.PathLike, *,
                       batch_size: int = 16, key: str | None = None, progress: bool = True, model=None,
                       utterances: list[Utterance] | None = None, dim: int = 0, seed: int = 0,
                       rank: int = 0, world: int = 1, barrier=None, batch_tokens: int | None = None) -> EmbeddingTable:
    """Aligner embeddings of ``utterances`` (default: every utterance of ``manifest``), from
    ``cache_dir/<key>`` when present. Vectors wider than ``dim`` (> 0) are reduced to ``dim`` by a
    random projection seeded with ``seed`` (cosines are kept to a few %, memory falls by D/dim).

    Sharded over ``world`` processes (this is ``rank``; ``barrier`` waits for all): each embeds every
    world-th utterance, and every rank runs the same number of audio-tower forwards (short shards
    are padded), so FSDP/ZeRO-3 ranks stay in step. One cache: rank 0 joins the parts. Resumable:
    every chunk is written as it is done. Audio that fails to decode gets a zero vector (counted
    in ``info.json``). ``model`` overrides ``bundle.model`` (the PEFT model during training).
    Batches of at most ``batch_size`` clips, and with ``batch_tokens`` of at most that many audio tokens
    (padded: a 5-minute article goes alone, not with fifteen others); every rank runs as many forwards
    as the busiest rank needs (stand-ins, dropped, fill the others).
    """
    model = model if model is not None else bundle.model
    barrier = barrier or (lambda: None)
    utts = list(utterances) if utterances is not None else list(iter_manifest(manifest))
    data_key = utterances_key(utts) if utterances is not None else file_hash(manifest)
    folder = Path(cache_dir) / (key or embedding_key(model, bundle.path, data_key, dim))
    final = folder / "embeddings.npz"
    if not final.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        size = -(-len(utts) // world)  # every rank embeds this many: the short shards repeat an utterance

        def shard_chunks(r: int) -> list[list[Utterance]]:
            mine = utts[r::world]
            padded = mine + [mine[0] if mine else utts[0]] * (size - len(mine))
            return [padded[i : i + CHUNK] for i in range(0, len(padded), CHUNK)]

        chunks = shard_chunks(rank)
        collator = Collator.for_bundle(bundle)
        plans = [[_audio_batches(c, collator, batch_size, batch_tokens) for c in shard_chunks(r)] for r in range(world)]
        n_mine = len(utts[rank::world])
        project = _projection(model, dim, seed)
        for n, chunk in enumerate(_progress(chunks, progress and rank == 0, "aligner embeddings")):
            part = folder / f"part-w{world}-r{rank}-{n:06d}.npz"
            real = max(0, min(CHUNK, n_mine - n * CHUNK))  # the chunk's utterances that are not padding
            if not part.is_file():
                forwards = max(len(p[n]) for p in plans)  # FSDP/ZeRO-3: every rank runs as many
                _embed_chunk(model, collator, bundle.tokenizer, chunk, plans[rank][n], project, real,
                             forwards).save(part)
        barrier()
        if rank == 0:
            _join(folder, world, len(utts), manifest)
        barrier()
    return EmbeddingTable.read(final)


def _join(folder: Path, world: int, n_utts: int, manifest) -> None:
    parts = [EmbeddingTable.read(p) for p in sorted(folder.glob(f"part-w{world}-r*-*.npz"))]
    table = EmbeddingTable([k for p in parts for k in p.keys],
                           np.concatenate([p.vectors for p in parts]) if parts else np.zeros((0, 0), np.float16))
    failed = sum(p.failed for p in parts)
    table.failed = failed
    table.save(folder / "embeddings.npz")
    (folder / "info.json").write_text(json.dumps({"manifest": str(manifest), "utterances": n_utts,
                                                  "vectors": len(table.keys), "dim": int(table.vectors.shape[1]),
                                                  "unreadable_audio": failed}, indent=2))
    for part in folder.glob("part-*.npz"):
        part.unlink()


def _projection(model, dim: int, seed: int):
    """``x -> x @ R`` with a seeded Gaussian R [D, dim] / sqrt(dim) when D > dim > 0, else identity."""
    thinker = _thinker(model)
    width = family_of_model(thinker).input_embeddings(thinker).weight.shape[1]
    if not dim or width <= dim:
        return lambda x: x
    r = np.random.default_rng(seed).standard_normal((width, dim)).astype(np.float32) / np.sqrt(dim)
    return lambda x: x @ r


def _audio_batches(utts: list[Utterance], collator: Collator, batch_size: int,
                   batch_tokens: int | None) -> list[list[int]]:
    """Positions in ``utts`` of the audio utterances, in batches of at most ``batch_size`` (and
    ``batch_tokens`` audio tokens, padded, shortest first)."""
    audio = [i for i, u in enumerate(utts) if u.audio is not None]
    if batch_tokens:
        audio.sort(key=lambda i: utts[i].duration or 0.0)
    lengths = [collator.audio_tokens(utts[i].duration or collator.cfg.min_audio_seconds) for i in audio]
    return [[audio[k] for k in group] for group in token_batches(lengths, batch_tokens, max_count=batch_size)]


@torch.no_grad()
def _embed_chunk(model, collator: Collator, tokenizer, utts: list[Utterance], batches: list[list[int]],
                 project=lambda x: x, real: int | None = None, forwards: int = 0) -> EmbeddingTable:
    """Vectors of ``utts`` (only the first ``real`` are kept: the rest pad a shard). ``batches``: positions
    in ``utts`` per audio-tower forward (:func:`_audio_batches`); ``forwards``: at least this many forwards
    (stand-ins of one clip, dropped, keep FSDP ranks in step)."""
    real = len(utts) if real is None else real
    keys, vectors, failed = [], [], 0
    base = _thinker(model)
    for _ in range(forwards - len(batches)):
        _audio_means(base, collator, [Utterance(id="stand-in", audio=None)])
    for group in batches:
        batch = [(i, utts[i]) for i in group]
        means, bad = _audio_means(base, collator, [u for _, u in batch])
        keep = [k for k, (i, _) in enumerate(batch) if i < real]
        keys += [batch[k][1].id for k in keep]
        vectors.append(project(means[keep]))
        failed += sum(bad[k] for k in keep)
    embed = family_of_model(base).input_embeddings(base)
    for u in (u for u in utts[:real] if "tsum" in u.tasks()):
        ids = torch.tensor(tokenizer(u.transcript, add_special_tokens=False)["input_ids"], device=embed.weight.device)
        keys.append(u.id + TEXT_SUFFIX)
        vectors.append(project(embed(ids).float().mean(0, keepdim=True).cpu().numpy()))
    return EmbeddingTable(keys, np.concatenate(vectors).astype(np.float16) if vectors else np.zeros((0, 0), np.float16),
                          failed)


def _audio_means(base, collator: Collator, utts: list[Utterance]) -> tuple[np.ndarray, list[bool]]:
    """Mean aligner output of each utterance, and which failed to decode (their rows are zero; a
    stand-in of silence keeps the batch, so every rank runs the same forwards)."""
    waves, bad = [], []
    for u in utts:
        if u.audio is None:  # a stand-in forward: silence
            waves.append(np.zeros(collator.min_samples, np.float32))
            bad.append(True)
            continue
        try:
            wave = load_audio(u.audio, offset=u.offset, duration=u.duration)
            check_samples(u.audio, wave)
            bad.append(False)
        except AudioError:
            wave = np.zeros(collator.min_samples, np.float32)
            bad.append(True)
        waves.append(wave)
    segs = [collator.segments(w) for w in waves]
    features, mask = collator.family.features(collator, [s for ss in segs for s in ss])
    device = next(base.parameters()).device
    dtype = next(base.parameters()).dtype
    out = collator.family.aligner_output(base, features.to(device, dtype), mask.to(device)).float()
    per_segment = torch.split(out, collator.family.audio_token_count(mask.sum(-1)).tolist())
    means, k = [], 0
    for ss in segs:
        means.append(torch.cat(per_segment[k : k + len(ss)]).mean(0))
        k += len(ss)
    vectors = torch.stack(means).cpu().numpy()
    vectors[np.array(bad, dtype=bool)] = 0.0
    return vectors, bad


def example_vectors(folder: Path, examples, *, rank: int = 0, barrier=None) -> np.ndarray:
    """Unit-norm float16 vectors [len(examples), D] of every example, memory-mapped read-only from
    ``folder/examples-<hash>.npy``: written once by rank 0, then shared by every process of a node
    through the page cache (one copy per node, not three per rank)."""
    path = folder / "embeddings.npz"
    if not path.is_file():
        raise NabraError(f"{path}: the aligner embeddings this run was using are gone; cannot resume exactly")
    keys = [ex.utt_id + TEXT_SUFFIX if ex.task == "tsum" else ex.utt_id for ex in examples]
    out = folder / f"examples-{hashlib.blake2b(chr(10).join(keys).encode(), digest_size=8).hexdigest()}.npy"
    if rank == 0 and not out.is_file():
        table = EmbeddingTable.read(path)
        rows = np.fromiter((table.index[k] for k in keys), dtype=np.int64, count=len(keys))
        with atomic_path(out) as tmp:
            unit = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(keys), table.vectors.shape[1]))
            for i in range(0, len(rows), 65_536):
                x = table.vectors[rows[i : i + 65_536]].astype(np.float32)
                unit[i : i + 65_536] = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            unit.flush()
            del unit
    (barrier or (lambda: None))()
    return np.load(out, mmap_mode="r")


def _thinker(model):
    """The plain thinker inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _progress(items, enabled: bool, label: str):
    with progress_bar(label, len(items), enabled=enabled and len(items) > 1, unit="chunks") as advance:
        for item in items:
            yield item
            advance()
