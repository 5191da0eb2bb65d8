"""The conformance verdict rules on hand-made observations: each rule, in its order."""

from harness.conformance.catalogue import load
from harness.conformance.scoring import Call, Observed, verdict

CASES = {case.id: case for case in load("full").cases}


def seen(
    outcome="success",
    complete=True,
    elapsed=1.0,
    primary=(),
    fallback=(),
    alive=True,
    model="fb-ok",
    usage=True,
):
    call = Call(outcome, complete, elapsed, model, usage)
    return Observed(call, [dict(e) for e in primary], [dict(e) for e in fallback], alive)


def attempts(*times, outcome="status_429", prompt=21, stream=True):
    return [{"t": t, "outcome": outcome, "prompt_tokens": prompt, "stream": stream} for t in times]


def test_a_hang_and_a_cut_answer_presented_as_success_fail_whatever_the_checks():
    assert verdict(CASES["S03"], seen(outcome="hang")).verdict == "fail"
    cut = verdict(CASES["S11"], seen(complete=False))
    assert (cut.verdict, cut.reason) == ("fail", "truncated answer presented as success")


def test_retry_after_honoured_passes_and_a_quick_retry_is_partial():
    honoured = verdict(CASES["S01"], seen(primary=attempts(0.0, 2.0)))
    assert honoured.verdict == "pass"
    hasty = verdict(CASES["S01"], seen(primary=attempts(0.0, 0.6)))
    assert (hasty.verdict, hasty.checks["retry_after_honoured"]) == ("partial", "fail")
    hammer = verdict(CASES["S01"], seen(primary=attempts(0.0, 0.1, 0.2)))
    assert hammer.verdict == "fail" and "no_hammer" in hammer.reason


def test_an_error_with_clean_checks_is_safe_and_for_the_content_filter_it_is_the_ideal():
    assert (
        verdict(CASES["S04"], seen(outcome="error", complete=False, primary=attempts(0.0))).verdict == "safe"
    )
    assert (
        verdict(CASES["S13"], seen(outcome="error", complete=False, primary=attempts(0.0))).verdict == "pass"
    )
    routed = verdict(CASES["S13"], seen(primary=attempts(0.0), fallback=attempts(0.1, outcome="ok")))
    assert routed.verdict == "partial"
    retried = verdict(CASES["S13"], seen(outcome="error", complete=False, primary=attempts(0.0, 0.5)))
    assert retried.verdict == "fail"


def test_a_same_size_resend_of_a_too_long_prompt_fails_and_a_smaller_one_passes():
    same = attempts(0.0, 0.2, outcome="status_400")
    assert verdict(CASES["S12"], seen(primary=same)).verdict == "fail"
    smaller = [{**same[0], "prompt_tokens": 30}, {**same[1], "prompt_tokens": 20}]
    assert (
        verdict(CASES["S12"], seen(primary=smaller, fallback=attempts(0.3, outcome="ok"))).verdict == "pass"
    )


def test_prefill_rejection_behind_an_error_is_masking_and_fails():
    rejected = attempts(0.5, outcome="prefill_rejected")
    result = verdict(
        CASES["S14"],
        seen(outcome="error", complete=False, primary=attempts(0.0, outcome="stream_cut"), fallback=rejected),
    )
    assert result.verdict == "fail" and "no_prefill_masking" in result.reason


def test_the_reported_model_must_be_the_fallback_once_it_answered():
    wrong = verdict(
        CASES["S16"], seen(model="fb-s16", primary=attempts(0.0), fallback=attempts(0.1, outcome="ok"))
    )
    assert wrong.verdict == "fail"
    no_usage = verdict(
        CASES["S16"], seen(usage=False, primary=attempts(0.0), fallback=attempts(0.1, outcome="ok"))
    )
    assert no_usage.verdict == "partial"


def test_an_unknown_check_kind_never_passes():
    from harness.conformance.catalogue import Check
    from harness.conformance.scoring import check

    assert check(Check("x", "no_such_kind"), seen(), CASES["S03"]) == "fail"
