import numpy as np
import pytest

from nabra.corpus.manifest import TASKS, Utterance
from nabra.errors import NabraError
from nabra.schedule import ExampleTable
from nabra.tasks import iter_examples


def test_from_examples():
    utts = [Utterance("a", audio="a.wav", duration=2.5, transcript="x", summary="y", dialect="EGY"),
            Utterance("b", audio="b.wav", transcript="z", emotion="sad", dialect="MSA")]
    examples = list(iter_examples(utts))
    table = ExampleTable.from_examples(examples, labels={"did": ["EGY", "GLF", "MSA"]})
    assert table.ids == [e.id for e in examples] and len(table) == 7
    assert [TASKS[c] for c in table.task] == ["asr", "ssum", "tsum", "did", "asr", "did", "ser"]
    assert table.label.tolist() == [-1, -1, -1, 0, -1, 2, 0]
    assert table.label_names == {"did": ("EGY", "GLF", "MSA"), "ser": ("sad",)}
    assert table.has_audio.tolist() == [True, True, False, True, True, True, True]
    assert table.duration[0] == 2.5 and np.isnan(table.duration[2]) and np.isnan(table.duration[4])
    assert table.task_indices("did").tolist() == [3, 5]
    assert table.tasks_present() == TASKS and table.audio_tasks() == ("asr", "ssum", "did", "ser")
    assert (table.task.dtype, table.label.dtype, table.duration.dtype) == (np.int8, np.int16, np.float32)


def test_from_arrays_checks():
    table = ExampleTable.from_arrays(["a", "b"], ["asr", "tsum"])
    assert table.has_audio.tolist() == [True, False] and table.counts() == {"asr": 1, "tsum": 1}
    with pytest.raises(NabraError, match="unknown task"):
        ExampleTable.from_arrays(["a"], ["asrr"])
    with pytest.raises(NabraError, match="rows"):
        ExampleTable.from_arrays(["a", "b"], ["asr"])
    utt = Utterance("c", audio="c.wav", dialect="XYZ")
    with pytest.raises(NabraError, match="not in the did label set"):
        ExampleTable.from_examples(list(iter_examples([utt])), labels={"did": ["EGY"]})


def test_label_sets_and_repr():
    from nabra.corpus.labels import DIALECTS

    utt = Utterance("c", audio="c.wav", dialect="LAV")
    table = ExampleTable.from_examples(list(iter_examples([utt])), labels={"did": DIALECTS})
    assert table.label.tolist() == [2] and table.label_names["did"] == DIALECTS.names
    assert repr(table) == "ExampleTable(1 examples: did=1)"
