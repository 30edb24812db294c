"""firmware.subjecterase: a person's calls erased one by one through the single-call erasure,
only as confirmed; a call refused on the way is named, the others go on."""

import pytest

from firmware.control import RecorderUnavailable
from firmware.policy.sweeper import ErasureRefused
from firmware.subjecterase import Plan, SubjectEraseError, carry_out


def planned():
    return Plan(numbers=["01632 960123"], recordings=[1, 3], details=[4], held=[6], lines={1: 1, 3: 2, 4: 1})


def test_a_stale_token_erases_nothing():
    asked = []
    with pytest.raises(SubjectEraseError, match="nothing was erased"):
        carry_out(planned(), "0" * 16, erase=asked.append, erase_details=asked.append)
    assert asked == []


def test_each_call_goes_through_the_single_erasure_and_a_refusal_is_named():
    plan = planned()
    done = []

    def erase(call_id):
        if call_id == 3:
            raise ErasureRefused("call 3 is on legal hold: release the hold before erasing its recording")
        return 1

    def erase_details(call_id):
        raise RecorderUnavailable("the recorder does not answer")

    result = carry_out(
        plan, plan.token, erase=erase, erase_details=erase_details, progress=lambda *a: done.append(a)
    )
    assert result.erased == [1] and result.recordings == 1
    assert done == [(1, 3), (2, 3), (3, 3)]
    assert result.words() == (
        "1 call erased: 1 recording. Not erased: call 3 is on legal hold: release the hold before "
        "erasing its recording; call 4: the recorder does not answer."
    )


def test_the_plan_says_what_is_skipped():
    words = planned().words()
    assert words.startswith("4 calls of 01632 960123 found. To erase: 3 calls (2 recordings")
    assert "on legal hold (release the hold first to erase them): call 6." in words


def test_the_calls_skipped_are_given_by_why_for_a_page_to_link_them():
    plan = Plan(numbers=["01632 960123"], recordings=[1], held=[6, 7], recording_now=[9])
    assert plan.skipped() == [
        ("Skipped, on legal hold (release the hold first to erase them)", [6, 7]),
        ("Skipped, still being recorded (erase them once they have ended)", [9]),
    ]
    assert plan.words() == (
        "4 calls of 01632 960123 found. To erase: 1 call (1 recording, and the caller's number and name "
        "of each). Skipped, on legal hold (release the hold first to erase them): calls 6, 7. Skipped, "
        "still being recorded (erase them once they have ended): call 9."
    )
