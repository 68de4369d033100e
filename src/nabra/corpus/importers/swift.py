"""ms-swift / LLaMA-Factory chat JSONL <-> utterances.

A row is one instruction example::

    {"messages": [{"role": "user", "content": "<audio>Transcribe the speech."},
                  {"role": "assistant", "content": "..."}], "audios": ["/data/a.wav"]}

in a JSON Lines file or in a JSON array (LLaMA-Factory's own ``data/mllm_audio_demo.json`` is one).
Every row form the two toolkits document is read, as ms-swift's ``AutoPreprocessor``
(``swift/llm/dataset/preprocessor/core.py``) reads them: ``messages`` / ``conversation`` /
``conversations`` with ``role``/``from`` and ``content``/``value`` (roles user/human, assistant/gpt/bot,
system), ms-swift's ShareGPT pairs ``{"human": ..., "assistant": ...}``, Alpaca ``instruction`` +
``input`` (joined by a newline) -> ``output``, and ``query`` -> ``response`` with ``history``; a
top-level ``system`` or ``system_prompt``. Importing infers the task from the instruction's first and
last lines (keywords in Arabic and English), or takes the fallback task; the answer becomes the
transcript, summary, dialect or emotion. Rows that carry an ``id`` (as Nabra's export writes
them) are merged back into one utterance per id, so export -> import restores the utterances.

Exporting writes one row per (utterance, task) with a fixed prompt per task and language
(:data:`SWIFT_PROMPTS`). Peers cannot address a segment of a file, so segments of long
recordings are cut out to WAV files beside the output.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nabra.corpus.audio import audio_info, load_audio, save_wav
from nabra.corpus.importers.common import (
    Row,
    SkipReport,
    counted_lines,
    require_file,
    safe_name,
)
from nabra.corpus.labels import DIALECTS, EMOTIONS, LabelSet
from nabra.corpus.manifest import TASKS, ManifestLineError, Utterance, decode_json, iter_manifest, open_text
from nabra.errors import AudioError, NabraError
from nabra.files import atomic_path
from nabra.text.arabic import normalize

LAYOUT = """\
  SRC.jsonl   one JSON object per line: messages (or conversation(s), instruction/input/output,
              query/response) [+ audios] [+ system] [+ id]
  SRC.json    or a JSON array of such objects (LLaMA-Factory's data/*.json)"""

# The export's instruction per task and language. A placeholder until the task registry's own
# templates are used for export too; kept to one template each so that exports are reproducible.
SWIFT_PROMPTS: dict[str, dict[str, str]] = {
    "asr": {"en": "<audio>Transcribe the Arabic speech.",
            "ar": "<audio>فرّغ الكلام المسموع نصًا."},
    "ssum": {"en": "<audio>Summarize the spoken Arabic in one sentence.",
             "ar": "<audio>لخّص الكلام المسموع في جملة واحدة."},
    "tsum": {"en": "Summarize the following Arabic text in one sentence:\n{transcript}",
             "ar": "لخّص النص التالي في جملة واحدة:\n{transcript}"},
    "did": {"en": "<audio>Which Arabic dialect is spoken? Answer with one of: {labels}.",
            "ar": "<audio>ما لهجة المتحدث؟ أجب بواحدة من: {labels}."},
    "ser": {"en": "<audio>What emotion does the speaker express? Answer with one of: {labels}.",
            "ar": "<audio>ما الشعور الذي يعبر عنه المتحدث؟ أجب بواحدة من: {labels}."},
}

@dataclass(frozen=True)
class ExtraTask:
    """A task this module does not know — a run's declared label task (``aid`` on ``l1``) — for the
    export: its instruction per prompt language (``<audio>`` first) and its answer for an utterance
    (``None``: the utterance does not serve it). Built from a recipe by ``nabra data export --config``."""

    name: str
    prompts: dict[str, str]
    answer: Callable[[Utterance], str | None]


# Instruction keywords per task, in normalized form (diacritics stripped, alef and ta marbuta
# folded, case-folded). "sum" becomes ssum with audio, tsum without.
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "asr": ("transcri", "speech recognition", "speech to text", "write down", "what is said",
            "what was said", "what is being said", "what does the person say", "what does the speaker say",
            "what did the speaker say", "what does the audio say", "what did the audio say",
            "convert the speech", "فرغ", "تفريغ", "تعرف علي الكلام", "حول الكلام",
            "اكتب ما يقال", "اكتب ما قيل", "اكتب الكلام"),
    "sum": ("summar", "gist", "لخص", "تلخيص", "ملخص", "خلاصه"),
    "did": ("dialect", "لهجه"),
    "ser": ("emotion", "feeling", "mood", "عاطف", "شعور", "مشاعر", "انفعال"),
}
_AUDIO_TAG = re.compile(r"<audio>")
# The keys ms-swift's AutoPreprocessor reads (swift/llm/dataset/preprocessor/core.py), LLaMA-Factory's among them.
_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "bot": "assistant",
          "system": "system"}
_MESSAGE_KEYS = ("messages", "conversation", "conversations")
_SYSTEM_KEYS = ("system", "system_prompt")
_QUERY_KEYS = ("query", "prompt", "input", "instruction", "question", "problem")
_RESPONSE_KEYS = ("response", "answer", "output", "targets", "target", "answer_key", "answers", "solution",
                  "text", "completion", "content")


# ----------------------------------------------------------------------------- import

@dataclass
class _Merged:
    """Rows of one id merged into one utterance (ids come from Nabra's own export)."""

    where: str
    utt: Utterance
    rows: int = 1


def read(src: str | os.PathLike, report: SkipReport, *, task: str | None = None,
         dialects: LabelSet = DIALECTS, emotions: LabelSet = EMOTIONS, split: str | None = None,
         language: str = "ar", source: str = "swift") -> Iterator[Row]:
    """Utterances from the chat JSONL at ``src``; ``task`` is used when a prompt names none."""
    if task is not None and task not in TASKS:
        raise NabraError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    path = require_file(Path(src), LAYOUT)
    base = path.resolve().parent
    labels = {"did": dialects, "ser": emotions}
    merged: dict[str, _Merged] = {}
    for lineno, where, row in _rows(path, report):
        obj, utt, problem = _parse_row(row, base, task, labels)
        if problem is not None:
            report.skip(where, *problem)
            continue
        utt.language, utt.source, utt.split = language, source, split
        if obj.get("id") is None:
            utt.id = f"{path.stem}-{lineno:06d}"
            yield Row(where, utt)
        else:
            utt.id = str(obj["id"])
            _merge(merged, utt, where, report)
    for m in merged.values():
        yield Row(m.where, m.utt, rows=m.rows)


def _rows(path: Path, report: SkipReport) -> Iterator[tuple[int, str, str | object]]:
    """``(line, "FILE:LINE", row)`` of every row: a JSONL line (text), or an element of a JSON array
    (decoded; ``LINE`` is where it starts), each counted in ``report.seen``."""
    if not _is_json_array(path):
        yield from counted_lines(path, report)
        return
    text = path.read_text(encoding="utf-8-sig", errors="surrogateescape")
    decoder, pos, line = json.JSONDecoder(), text.index("[") + 1, 1
    while True:
        start = pos + len(text[pos:]) - len(text[pos:].lstrip(" \t\r\n,"))
        if start >= len(text) or text[start] == "]":
            return
        line += text.count("\n", pos, start)
        try:
            obj, pos = decoder.raw_decode(text, start)
        except json.JSONDecodeError as e:
            raise NabraError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno}); a JSON array is "
                             "read whole: fix the file, or write one row per line (JSONL)") from None
        report.seen += 1
        yield line, f"{path.name}:{line}", obj
        line += text.count("\n", start, pos)


def _is_json_array(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def _merge(merged: dict[str, _Merged], utt: Utterance, where: str, report: SkipReport) -> None:
    held = merged.get(utt.id)
    if held is None:
        merged[utt.id] = _Merged(where, utt)
        return
    for name in ("audio", "transcript", "summary", "dialect", "emotion"):
        new, old = getattr(utt, name), getattr(held.utt, name)
        if new is not None and old is not None and new != old:
            report.skip(where, "conflicts with an earlier row of the same id", f"{name} differs from {held.where}")
            return
    for name in ("audio", "transcript", "summary", "dialect", "emotion"):
        if getattr(held.utt, name) is None:
            setattr(held.utt, name, getattr(utt, name))
    held.rows += 1


def _parse_row(line: str | object, base: Path, fallback: str | None,
               labels: dict[str, LabelSet]) -> tuple[dict, Utterance | None, tuple[str, str] | None]:
    """(the row, its utterance, None) or (row, None, (reason, detail)) for one JSONL line (or a
    decoded array element)."""
    if isinstance(line, str):
        try:
            obj = decode_json(line)
        except ManifestLineError as e:
            return {}, None, ("bad JSON", str(e))
    else:
        obj = line
    if not isinstance(obj, dict):
        return {}, None, ("bad JSON", "not an object")
    turns, problem = _turns(obj)
    if problem is not None:
        return obj, None, problem
    users = [t for t in turns if t[0] == "user"]
    answers = [t for t in turns if t[0] == "assistant"]
    if len(users) != 1 or len(answers) != 1:
        return obj, None, ("not one user turn and one answer", f"{len(users)} user, {len(answers)} assistant turns")
    audios = obj.get("audios") or []
    audios = [audios] if isinstance(audios, str) else list(audios)
    if len(audios) > 1:
        return obj, None, ("more than one audio in a row", f"{len(audios)} audios")
    system = " ".join([*(t[1] for t in turns if t[0] == "system"), *(str(obj.get(k) or "") for k in _SYSTEM_KEYS)])
    prompt, answer = users[0][1], answers[0][1].strip()
    task = infer_task(prompt, system, has_audio=bool(audios)) or fallback
    if task is None:
        return obj, None, ("task not recognised in the prompt (pass --task)", _first_line(prompt))
    audio = audios[0] if audios else None
    if audio is not None and not os.path.isabs(audio):
        audio = str(base / audio)
    return obj, *_utterance(task, prompt, answer, audio, labels)


def _utterance(task: str, prompt: str, answer: str, audio: str | None,
               labels: dict[str, LabelSet]) -> tuple[Utterance | None, tuple[str, str] | None]:
    if not answer:
        return None, ("empty answer", task)
    utt = Utterance(id="", audio=audio)
    if task in ("did", "ser"):
        name = labels[task].lookup(answer)
        if name is None:
            return None, (f"unknown {'dialect' if task == 'did' else 'emotion'} label", answer[:80])
        setattr(utt, "dialect" if task == "did" else "emotion", name)
    elif task == "asr":
        utt.transcript = answer
    elif task == "ssum":
        utt.summary = answer
    else:
        text = _text_to_summarize(prompt)
        if not text:
            return None, ("no text to summarize in the prompt", _first_line(prompt))
        utt.transcript, utt.summary, utt.audio = text, answer, None
    if task in ("asr", "ssum", "did", "ser") and audio is None:
        return None, ("no audio for an audio task", task)
    return utt, None


def infer_task(prompt: str, system: str = "", *, has_audio: bool = True) -> str | None:
    """The task an instruction asks for, or None when no task or more than one matches.

    Keywords are looked for in the first line (with the system prompt), then in the last line:
    the instruction sits at one end, and the text between (a transcript to summarize) must not
    be read as an instruction.
    """
    lines = [ln for ln in _AUDIO_TAG.sub(" ", prompt).splitlines() if ln.strip()] or [""]
    for line in dict.fromkeys((lines[0], lines[-1])):
        text = _key(f"{system} {line}")
        found = {task for task, words in _KEYWORDS.items() if any(w in text for w in words)}
        if len(found) == 1:
            task = found.pop()
            return ("ssum" if has_audio else "tsum") if task == "sum" else task
    return None


def _text_to_summarize(prompt: str) -> str | None:
    """The text of a text-summarization prompt: the lines after the instruction line, or what
    follows a colon when it is all on one line."""
    prompt = _AUDIO_TAG.sub("", prompt).strip()
    first, _, rest = prompt.partition("\n")
    if rest.strip():
        return rest.strip()
    _, colon, after = first.partition(":")
    return after.strip() if colon and after.strip() else None


def _turns(obj: dict) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """(role, text) of each turn, from any of the row forms ms-swift and LLaMA-Factory read, or a
    (reason, detail) problem."""
    key = next((k for k in _MESSAGE_KEYS if k in obj), None)
    if key is not None:
        return _message_turns(obj[key])
    if "instruction" in obj and "input" in obj:  # Alpaca: the two joined by a newline, as ms-swift does
        parts = [str(obj[k]) for k in ("instruction", "input") if isinstance(obj[k], str) and obj[k]]
        query, response, history = "\n".join(parts), obj.get("output"), obj.get("history") or []
    else:
        query = next((obj[k] for k in _QUERY_KEYS if k in obj), None)
        response = next((obj[k] for k in _RESPONSE_KEYS if k in obj), None)
        history = obj.get("history") or []
    if not isinstance(query, str) or not isinstance(response, str):
        return [], ("no conversation (messages, conversation(s), instruction/output or query/response)",
                    ", ".join(obj)[:80])
    if not isinstance(history, list) or not all(isinstance(h, list | tuple) and len(h) == 2 for h in history):
        return [], ("history is not a list of [query, response] pairs", str(history)[:80])
    pairs = [*history, (query, response)]
    return [(role, str(text)) for q, r in pairs for role, text in (("user", q), ("assistant", r))], None


def _message_turns(messages: object) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """Turns of a message list: ``role``/``from`` + ``content``/``value`` items, or ShareGPT pairs
    ``{"human": ..., "assistant": ...}`` (ms-swift's ``conversation``)."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return [], ("messages is not a list of objects", type(messages).__name__)
    turns = []
    for m in messages:
        role, text = m.get("role", m.get("from")), m.get("content", m.get("value"))
        if role is None and text is None:  # a ShareGPT pair: its query, then its answer
            query = next((m[k] for k in ("human", "user") if k in m), None)
            answer = next((m[k] for k in ("assistant", "gpt", "bot") if k in m), None)
            if not isinstance(query, str) or not isinstance(answer, str):
                return [], ("a message has neither role/content nor a human/assistant pair", ", ".join(m)[:80])
            turns += [("user", query), ("assistant", answer)]
            continue
        if _ROLES.get(str(role).casefold()) is None:
            return [], ("a message of an unsupported role (tool calls, observations)", str(role)[:40])
        if not isinstance(text, str):
            return [], ("a message whose content is not text", type(text).__name__)
        turns.append((_ROLES[str(role).casefold()], text))
    return turns, None


def _key(text: str) -> str:
    return normalize(text, ta_marbuta=True).casefold()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:80] if text.strip() else ""


# ----------------------------------------------------------------------------- export

def export(manifest: str | os.PathLike, out: str | os.PathLike, report: SkipReport, *,
           tasks: Sequence[str] = TASKS, split: str | None = None, language: str = "ar",
           dialects: LabelSet = DIALECTS, emotions: LabelSet = EMOTIONS, extra: Sequence[ExtraTask] = ()) -> int:
    """Write one chat row per (utterance, task) of ``manifest`` to ``out``; returns rows written.
    ``extra``: declared tasks, exported when ``tasks`` names them.

    ``report`` counts utterances: those filtered out by ``split`` are not counted as seen.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cut_dir = out.with_name(f"{out.name.split('.')[0]}_segments")
    labels = {"did": ", ".join(dialects.names), "ser": ", ".join(emotions.names)}
    written = 0
    with atomic_path(out) as tmp, open_text(tmp, "w") as f:
        for utt in iter_manifest(manifest):
            if split is not None and utt.split != split:
                continue
            report.seen += 1
            rows = _export_rows(utt, tasks, language, labels, cut_dir, report, extra)
            if rows:
                report.imported += 1
                report.utterances += len(rows)
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += len(rows)
    return written


def _export_rows(utt: Utterance, tasks: Sequence[str], language: str, labels: dict[str, str],
                 cut_dir: Path, report: SkipReport, extra: Sequence[ExtraTask] = ()) -> list[dict]:
    chosen = [t for t in utt.tasks() if t in tasks]
    answers = {e.name: a for e in extra if e.name in tasks and utt.audio is not None and (a := e.answer(utt))}
    if not chosen and not answers:
        served = [*utt.tasks(), *(e.name for e in extra if utt.audio is not None and e.answer(utt))]
        report.skip(utt.id, "serves none of the exported tasks", ", ".join(served) or "no task")
        return []
    audio = None
    if answers or any(t != "tsum" for t in chosen):
        try:
            audio = _whole_file(utt, cut_dir)
        except AudioError as e:
            report.skip(utt.id, "unreadable audio", str(e))
            return []
    rows = []
    for task in chosen:
        prompt = SWIFT_PROMPTS[task][language].format(transcript=utt.transcript, labels=labels.get(task, ""))
        answer = {"asr": utt.transcript, "ssum": utt.summary, "tsum": utt.summary,
                  "did": utt.dialect, "ser": utt.emotion}[task]
        row = {"id": utt.id, "messages": [{"role": "user", "content": prompt},
                                          {"role": "assistant", "content": answer}]}
        if task != "tsum":
            row["audios"] = [audio]
        rows.append(row)
    prompts = {e.name: e.prompts[language] for e in extra}
    rows += [{"id": utt.id, "messages": [{"role": "user", "content": prompts[name]},
                                         {"role": "assistant", "content": answer}], "audios": [audio]}
             for name, answer in answers.items()]
    return rows


def _whole_file(utt: Utterance, cut_dir: Path) -> str:
    """A file holding exactly the utterance's audio: its own file, or a WAV cut from a segment."""
    info = audio_info(utt.audio)
    whole = not utt.offset and (utt.duration is None or abs(info.duration - utt.duration) <= 0.05)
    if whole:
        return utt.audio
    dest = cut_dir / f"{safe_name(utt.id)}.wav"
    save_wav(dest, load_audio(utt.audio, offset=utt.offset, duration=utt.duration))
    return str(dest.resolve())
