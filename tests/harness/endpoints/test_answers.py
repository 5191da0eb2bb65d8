"""The answer identity the endpoints write is the one the load generator reads: whole answers
pass, cut ones are truncated, altered or spliced ones corrupted, continuations match."""

from hypothesis import given
from hypothesis import strategies as st

from harness.endpoints.answers import Answer, continued
from harness.load.integrity import CORRUPTED, TRUNCATED, UNMARKED, WHOLE, judge

IDS = st.integers(0, 2**48 - 1).map(lambda n: f"{n:012x}")


@given(answer_id=IDS, count=st.integers(0, 60))
def test_a_whole_answer_is_whole_streamed_or_not(answer_id, count):
    answer = Answer.new(answer_id, count)
    streamed = "".join(token + " " for token in answer.tokens())
    for content in (answer.text(), streamed):
        verdict = judge(content)
        assert (verdict.integrity, verdict.answer_id, verdict.words, verdict.expected) == (
            WHOLE,
            answer_id,
            count,
            count,
        )


@given(answer_id=IDS, count=st.integers(2, 60), data=st.data())
def test_a_cut_answer_is_truncated_and_an_altered_one_corrupted(answer_id, count, data):
    answer = Answer.new(answer_id, count)
    tokens = answer.tokens()
    kept = data.draw(st.integers(1, len(tokens) - 1))
    assert judge(" ".join(tokens[:kept])).integrity == TRUNCATED
    other = Answer.new(f"{(int(answer_id, 16) + 1) % 2**48:012x}", count)
    spliced = " ".join([*tokens[:kept], *other.words[kept - 1 :]])
    assert judge(spliced).integrity in (CORRUPTED, WHOLE)
    if list(other.words[kept - 1 :]) != list(answer.words[kept - 1 :]):
        assert judge(spliced).integrity == CORRUPTED
    assert judge(answer.text() + " extra").integrity == CORRUPTED
    assert judge("made up " + answer.text()).integrity == CORRUPTED
    assert judge("an answer from nowhere").integrity == UNMARKED


@given(answer_id=IDS, count=st.integers(1, 40), data=st.data())
def test_a_prefill_continues_the_same_answer(answer_id, count, data):
    answer = Answer.new(answer_id, count)
    held = data.draw(st.integers(1, count))
    prefill = " ".join(answer.tokens()[:held])
    found = continued(prefill)
    assert found is not None and found[0] == answer and found[1] == held
    assert continued("not ours") is None
