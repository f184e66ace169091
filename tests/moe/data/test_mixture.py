"""jpmoe.data.mixture: validation errors, deterministic sampling, exact stage switches."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from jpmoe.data import MixtureStream, load_mixture, write_shards
from jpmoe.data.mixture import CHUNK

SEQ = 4


@pytest.fixture()
def spec_dir(tmp_path):
    # source a: ids 10.., source b: ids 1000.. (so every sample tells where it came from)
    write_shards([list(range(10, 410))], tmp_path / "a", vocab_size=2000, eos_id=0)
    write_shards([list(range(1000, 1600))], tmp_path / "b", vocab_size=2000, eos_id=0)
    return tmp_path


def write(dir_, body: str):
    path = dir_ / "mix.toml"
    path.write_text('[sources]\na = "a"\nb = "b"\n' + body)
    return path


STAGES = """
[[stages]]
name = "one"
tokens = 400
weights = { a = 0.75, b = 0.25 }

[[stages]]
name = "two"
tokens = 200
weights = { a = 0.0, b = 1.0 }
"""


@pytest.mark.parametrize(("body", "match"), [
    ('[[stages]]\ntokens = 10\nweights = { a = 0.5, c = 0.5 }\n', r"source\(s\) \['c'\] not listed"),
    ('[[stages]]\ntokens = 10\nweights = { a = 0.5, b = 0.6 }\n', "add up to 1.1, not 1"),
    ('[[stages]]\ntokens = 10\nweights = { a = 1.5, b = -0.5 }\n', "must be a number >= 0"),
    ('[[stages]]\ntokens = 0\nweights = { a = 1.0 }\n', "positive integer `tokens`"),
    ('[[stages]]\ntokens = 10\n', "needs a `weights` table"),
    ('[[stages]]\ntokens = 10\nweights = { a = 1.0 }\nweight = 3\n', r"unknown keys \['weight'\]"),
    ('', "no \\[\\[stages\\]\\]"),
    ('[[stages]]\ntokens = 10\nweights = { a = nan, b = 1.0 }\n', "weight of 'a' must be a number >= 0, got nan"),
    ('[[stages]]\ntokens = 10\nweights = { a = true }\n', "weight of 'a' must be a number"),
])
def test_bad_specs_are_clear_errors(spec_dir, body, match):
    with pytest.raises(ValueError, match=match):
        load_mixture(write(spec_dir, body))


def test_sources_and_stages_of_the_wrong_type(spec_dir):
    path = spec_dir / "mix.toml"
    path.write_text('sources = "a"\n[[stages]]\ntokens = 8\nweights = { a = 1.0 }\n')
    with pytest.raises(ValueError, match="must map names to shard directories"):
        load_mixture(path)
    path.write_text('[sources]\na = 3\n[[stages]]\ntokens = 8\nweights = { a = 1.0 }\n')
    with pytest.raises(ValueError, match="must map names to shard directories"):
        load_mixture(path)
    path.write_text('stages = [3]\n[sources]\na = "a"\n')
    with pytest.raises(ValueError, match="must be an array of tables"):
        load_mixture(path)


def test_a_stage_shorter_than_one_sequence_is_an_error(spec_dir):
    """A budget below seq_len used to become one whole sequence (more tokens than the budget), silently."""
    mix = load_mixture(write(spec_dir, '[[stages]]\nname = "tiny"\ntokens = 3\nweights = { a = 1.0 }\n'))
    with pytest.raises(ValueError, match=r"shorter than one sequence of seq_len 4: 'tiny' \(3\)"):
        MixtureStream(mix, seq_len=SEQ, seed=0)
    assert MixtureStream(mix, seq_len=3, seed=0).total_samples == 1


def test_missing_source_directory(spec_dir):
    path = spec_dir / "mix.toml"
    path.write_text('[sources]\na = "a"\nb = "missing"\n[[stages]]\ntokens = 8\nweights = { a = 1.0 }\n')
    with pytest.raises(FileNotFoundError, match="source 'b'"):
        load_mixture(path)


def test_sampling_is_deterministic_and_seeded(spec_dir):
    mix = load_mixture(write(spec_dir, STAGES))
    one, two = MixtureStream(mix, seq_len=SEQ, seed=1), MixtureStream(mix, seq_len=SEQ, seed=1)
    other = MixtureStream(mix, seq_len=SEQ, seed=2)
    np.testing.assert_array_equal(one.batch(0, 150), two.batch(0, 150))
    assert not np.array_equal(one.batch(0, 100), other.batch(0, 100))
    # random access gives the same sample as a sequential read (resume needs nothing but the index)
    np.testing.assert_array_equal(one.batch(37, 5), two.batch(0, 42)[37:])


def test_stage_switch_at_the_exact_token_budget(spec_dir):
    stream = MixtureStream(load_mixture(write(spec_dir, STAGES)), seq_len=SEQ, seed=0)
    assert stream.stage_samples == [100, 50]
    assert [stream.stage_of(i) for i in (0, 99, 100, 149, 500)] == [0, 0, 1, 1, 1]
    first = Counter(stream.source_of(i)[0] for i in range(100))
    assert first == {"a": 75, "b": 25}  # the weights, exactly
    assert {stream.source_of(i)[0] for i in range(100, 150)} == {"b"}


def test_sources_are_read_in_order_across_stages(spec_dir):
    stream = MixtureStream(load_mixture(write(spec_dir, STAGES)), seq_len=SEQ, seed=0)
    seen = {"a": [], "b": []}
    for i in range(150):
        name, j = stream.source_of(i)
        seen[name].append(j)
        sample = stream.sample(i)
        assert len(sample) == SEQ + 1
        assert (sample[0] >= 1000) == (name == "b")
    assert seen["a"] == list(range(75))
    assert seen["b"] == list(range(75))  # stage two continues where stage one left source b


def test_counts_hold_over_many_chunks(spec_dir):
    body = f"[[stages]]\ntokens = {3 * CHUNK * SEQ}\nweights = {{ a = 0.3, b = 0.7 }}\n"
    stream = MixtureStream(load_mixture(write(spec_dir, body)), seq_len=SEQ, seed=0)
    counts = Counter(stream.source_of(i)[0] for i in range(0, 3 * CHUNK))
    expected_a = 3 * round(0.3 * CHUNK)
    assert abs(counts["a"] - expected_a) <= 3
