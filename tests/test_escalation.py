"""Shutdown deadlines: Escalation and combine_policies."""

from __future__ import annotations

import math

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle import Phase, ShutdownPolicy
from lifecycle.lowlevel import Escalation, combine_policies

GRACEFUL, FORCEFUL, TERMINATE = Phase.GRACEFUL, Phase.FORCEFUL, Phase.TERMINATE
DEFAULT = ShutdownPolicy(graceful=30, forceful=10, terminate=5)

whole_budgets = st.one_of(st.integers(0, 1000).map(float), st.just(math.inf))
whole_policies = st.builds(ShutdownPolicy, whole_budgets, whole_budgets, whole_budgets)


def ends(escalation: Escalation) -> tuple[float, float, float]:
    return (escalation.end(GRACEFUL), escalation.end(FORCEFUL), escalation.end(TERMINATE))


class Recorder:
    """A subscriber that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


class TestStart:
    def test_phase_ends_are_offsets_from_the_request(self) -> None:
        """Graceful ends at t0+graceful, forceful at t0+graceful+forceful, terminate at t0+total."""
        escalation = Escalation.start(DEFAULT, now=100.0)
        assert escalation.started_at == 100.0
        assert ends(escalation) == (130.0, 140.0, 145.0)

    def test_infinite_budget_never_ends(self) -> None:
        """An infinite budget makes its phase and every later one end at math.inf."""
        escalation = Escalation.start(ShutdownPolicy(graceful=1, forceful=math.inf), now=0.0)
        assert ends(escalation) == (1.0, math.inf, math.inf)

    @pytest.mark.virtual_time
    async def test_defaults_to_the_loop_clock(self) -> None:
        """Without `now`, the stop starts at anyio.current_time()."""
        await anyio.sleep(7)
        now = anyio.current_time()
        escalation = Escalation.start(DEFAULT)
        assert escalation.started_at == now
        assert escalation.end(GRACEFUL) == now + 30


class TestPhaseAt:
    def test_graceful_before_its_deadline(self) -> None:
        """Before the graceful deadline (even before the request), GRACEFUL is in effect."""
        escalation = Escalation.start(DEFAULT, now=0.0)
        assert escalation.phase_at(-5.0) is GRACEFUL
        assert escalation.phase_at(0.0) is GRACEFUL
        assert escalation.phase_at(math.nextafter(30.0, 0.0)) is GRACEFUL

    def test_forceful_from_the_graceful_deadline_on(self) -> None:
        """At exactly the graceful deadline FORCEFUL is in effect, until the forceful deadline."""
        escalation = Escalation.start(DEFAULT, now=0.0)
        assert escalation.phase_at(30.0) is FORCEFUL
        assert escalation.phase_at(math.nextafter(40.0, 0.0)) is FORCEFUL

    def test_terminate_from_the_forceful_deadline_on(self) -> None:
        """At exactly the forceful deadline TERMINATE is in effect, and stays so after its own end."""
        escalation = Escalation.start(DEFAULT, now=0.0)
        assert escalation.phase_at(40.0) is TERMINATE
        assert escalation.phase_at(45.0) is TERMINATE
        assert escalation.phase_at(1e9) is TERMINATE

    def test_zero_budgets_skip_phases(self) -> None:
        """With zero graceful and forceful budgets, TERMINATE is in effect at once."""
        escalation = Escalation.start(ShutdownPolicy(0, 0, 5), now=10.0)
        assert escalation.phase_at(10.0) is TERMINATE

    def test_infinite_graceful_never_escalates_by_itself(self) -> None:
        """With an infinite graceful budget, GRACEFUL lasts forever."""
        escalation = Escalation.start(ShutdownPolicy(graceful=math.inf), now=0.0)
        assert escalation.phase_at(1e300) is GRACEFUL

    @settings(max_examples=200)
    @given(whole_policies, st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
    def test_phase_never_goes_back_in_time(self, policy: ShutdownPolicy, a: float, b: float) -> None:
        """A later time is never in an earlier phase."""
        escalation = Escalation.start(policy, now=0.0)
        early, late = sorted((a, b))
        assert escalation.phase_at(early) <= escalation.phase_at(late)


class TestPhaseNow:
    @pytest.mark.virtual_time
    async def test_phase_follows_the_clock(self) -> None:
        """`phase` is the phase in effect at the loop's current time."""
        escalation = Escalation.start(DEFAULT)
        assert escalation.phase is GRACEFUL
        await anyio.sleep(30)
        assert escalation.phase is FORCEFUL
        await anyio.sleep(10)
        assert escalation.phase is TERMINATE


class TestEscalate:
    @pytest.mark.virtual_time
    async def test_forceful_ends_graceful_now(self) -> None:
        """escalate(FORCEFUL) ends graceful now; the later phases keep their budgets, counted from now."""
        escalation = Escalation.start(DEFAULT)
        await anyio.sleep(3)
        now = anyio.current_time()
        assert escalation.escalate(FORCEFUL) is True
        assert ends(escalation) == (now, now + 10, now + 15)
        assert escalation.phase is FORCEFUL

    @pytest.mark.virtual_time
    async def test_terminate_ends_graceful_and_forceful_now(self) -> None:
        """escalate(TERMINATE) ends graceful and forceful now; TERMINATE gets its budget from now."""
        escalation = Escalation.start(DEFAULT)
        await anyio.sleep(3)
        now = anyio.current_time()
        assert escalation.escalate(TERMINATE) is True
        assert ends(escalation) == (now, now, now + 5)
        assert escalation.phase is TERMINATE

    @pytest.mark.virtual_time
    async def test_terminate_during_forceful_moves_only_forceful(self) -> None:
        """Jumping to TERMINATE once FORCEFUL is in effect leaves the past graceful deadline alone."""
        escalation = Escalation.start(DEFAULT)
        await anyio.sleep(35)
        now = anyio.current_time()
        assert escalation.escalate(TERMINATE) is True
        assert ends(escalation) == (escalation.started_at + 30, now, now + 5)

    @pytest.mark.virtual_time
    async def test_a_jump_never_makes_a_phase_end_later(self) -> None:
        """Escalating near the end of a phase keeps the original, earlier deadlines of the later phases."""
        escalation = Escalation.start(ShutdownPolicy(graceful=30, forceful=100, terminate=100))
        await anyio.sleep(39)
        now = anyio.current_time()
        assert escalation.escalate(TERMINATE) is True
        assert ends(escalation) == (escalation.started_at + 30, now, now + 100)

    @pytest.mark.virtual_time
    async def test_graceful_changes_nothing(self) -> None:
        """escalate(GRACEFUL) moves no deadline and returns False."""
        escalation = Escalation.start(DEFAULT)
        before = ends(escalation)
        assert escalation.escalate(GRACEFUL) is False
        assert ends(escalation) == before

    @pytest.mark.virtual_time
    async def test_phase_in_effect_changes_nothing(self) -> None:
        """Escalating to the phase already in effect returns False and keeps the deadlines."""
        escalation = Escalation.start(DEFAULT)
        await anyio.sleep(31)
        before = ends(escalation)
        assert escalation.escalate(FORCEFUL) is False
        assert ends(escalation) == before

    @pytest.mark.virtual_time
    async def test_second_escalation_to_the_same_phase_changes_nothing(self) -> None:
        """A repeated escalate(FORCEFUL) returns False."""
        escalation = Escalation.start(DEFAULT)
        assert escalation.escalate(FORCEFUL) is True
        assert escalation.escalate(FORCEFUL) is False

    @pytest.mark.virtual_time
    async def test_moving_a_deadline_calls_every_subscriber(self) -> None:
        """Each subscriber is called once when escalate() moves a deadline."""
        escalation = Escalation.start(DEFAULT)
        first, second = Recorder(), Recorder()
        escalation.subscribe("first", first)
        escalation.subscribe("second", second)
        escalation.escalate(TERMINATE)
        assert (first.calls, second.calls) == (1, 1)

    @pytest.mark.virtual_time
    async def test_no_move_calls_no_subscriber(self) -> None:
        """escalate() that moves nothing does not call subscribers."""
        escalation = Escalation.start(DEFAULT)
        recorder = Recorder()
        escalation.subscribe("key", recorder)
        escalation.escalate(GRACEFUL)
        await anyio.sleep(50)
        escalation.escalate(TERMINATE)
        assert recorder.calls == 0

    @pytest.mark.virtual_time
    async def test_unsubscribed_callback_is_not_called(self) -> None:
        """After unsubscribe(key), the callback is no longer called."""
        escalation = Escalation.start(DEFAULT)
        recorder = Recorder()
        escalation.subscribe("key", recorder)
        escalation.unsubscribe("key")
        assert escalation.escalate(FORCEFUL) is True
        assert recorder.calls == 0

    def test_unsubscribing_an_unknown_key_is_harmless(self) -> None:
        """unsubscribe() of a key that was never subscribed does nothing."""
        escalation = Escalation.start(DEFAULT, now=0.0)
        escalation.unsubscribe("never")

    @pytest.mark.virtual_time
    async def test_subscribing_again_replaces_the_callback(self) -> None:
        """A second subscribe() under the same key replaces the first callback."""
        escalation = Escalation.start(DEFAULT)
        old, new = Recorder(), Recorder()
        escalation.subscribe("key", old)
        escalation.subscribe("key", new)
        escalation.escalate(FORCEFUL)
        assert (old.calls, new.calls) == (0, 1)

    @pytest.mark.virtual_time
    async def test_subscriber_may_unsubscribe_itself(self) -> None:
        """A callback that unsubscribes while being called does not disturb the others."""
        escalation = Escalation.start(DEFAULT)
        other = Recorder()

        def once() -> None:
            escalation.unsubscribe("once")

        escalation.subscribe("once", once)
        escalation.subscribe("other", other)
        escalation.escalate(FORCEFUL)
        assert other.calls == 1


class TestRestrict:
    def test_none_shares_the_same_deadlines(self) -> None:
        """restrict(None) returns the escalation itself."""
        escalation = Escalation.start(DEFAULT, now=0.0)
        assert escalation.restrict(None) is escalation

    def test_takes_the_earlier_deadline_of_each_phase(self) -> None:
        """Each phase ends at the earlier of the parent's end and started_at plus the own offset."""
        parent = Escalation.start(DEFAULT, now=10.0)
        child = parent.restrict(ShutdownPolicy(graceful=35, forceful=1, terminate=100))
        assert child.started_at == 10.0
        assert ends(child) == (40.0, 46.0, 55.0)

    def test_laxer_policy_changes_nothing(self) -> None:
        """An own policy with longer budgets cannot make deadlines later."""
        parent = Escalation.start(DEFAULT, now=0.0)
        child = parent.restrict(ShutdownPolicy(graceful=math.inf))
        assert ends(child) == ends(parent)

    def test_does_not_change_the_parent(self) -> None:
        """Restricting leaves the parent's deadlines as they were."""
        parent = Escalation.start(DEFAULT, now=0.0)
        parent.restrict(ShutdownPolicy(1, 1, 1))
        assert ends(parent) == (30.0, 40.0, 45.0)

    @pytest.mark.virtual_time
    async def test_follows_a_later_jump_of_the_parent(self) -> None:
        """When the parent escalates, the child's deadlines move to the parent's earlier ones."""
        parent = Escalation.start(DEFAULT)
        child = parent.restrict(ShutdownPolicy(graceful=20, forceful=10, terminate=5))
        await anyio.sleep(2)
        now = anyio.current_time()
        parent.escalate(TERMINATE)
        assert ends(child) == (now, now, now + 5)
        assert child.phase is TERMINATE

    @pytest.mark.virtual_time
    async def test_jump_notifies_the_childs_subscribers(self) -> None:
        """A parent's jump that moves a child's deadline calls the child's subscribers."""
        parent = Escalation.start(DEFAULT)
        child = parent.restrict(ShutdownPolicy(graceful=20))
        recorder = Recorder()
        child.subscribe("scope", recorder)
        parent.escalate(FORCEFUL)
        assert recorder.calls == 1

    @pytest.mark.virtual_time
    async def test_jump_moves_only_the_child_deadlines_it_makes_earlier(self) -> None:
        """A parent's jump leaves a child's already-earlier deadline alone and moves the later ones."""
        parent = Escalation.start(DEFAULT)
        child = parent.restrict(ShutdownPolicy(graceful=1, forceful=100, terminate=100))
        recorder = Recorder()
        child.subscribe("scope", recorder)
        await anyio.sleep(5)
        now = anyio.current_time()
        assert parent.escalate(FORCEFUL) is True
        assert ends(child) == (child.started_at + 1, now + 10, now + 15)
        assert recorder.calls == 1

    @pytest.mark.virtual_time
    async def test_grandchild_follows_through_the_child(self) -> None:
        """A jump reaches escalations restricted from a restricted one."""
        parent = Escalation.start(DEFAULT)
        grandchild = parent.restrict(ShutdownPolicy(graceful=20)).restrict(ShutdownPolicy(graceful=10))
        recorder = Recorder()
        grandchild.subscribe("scope", recorder)
        now = anyio.current_time()
        parent.escalate(FORCEFUL)
        assert grandchild.end(GRACEFUL) == now
        assert recorder.calls == 1

    @pytest.mark.virtual_time
    async def test_childs_own_jump_does_not_reach_the_parent(self) -> None:
        """Escalating a restricted escalation leaves its parent's deadlines alone."""
        parent = Escalation.start(DEFAULT)
        child = parent.restrict(ShutdownPolicy(graceful=20))
        before = ends(parent)
        assert child.escalate(TERMINATE) is True
        assert ends(parent) == before

    @settings(max_examples=200)
    @given(whole_policies, whole_policies)
    def test_matches_combine_policies(self, outer: ShutdownPolicy, own: ShutdownPolicy) -> None:
        """Restricting by a policy gives the deadlines of the combined policy."""
        restricted = Escalation.start(outer, now=0.0).restrict(own)
        combined = Escalation.start(combine_policies(outer, own), now=0.0)
        assert ends(restricted) == ends(combined)


class TestCombinePolicies:
    def test_no_own_policy_is_the_outer_one(self) -> None:
        """combine_policies(outer, None) returns outer itself."""
        assert combine_policies(DEFAULT, None) is DEFAULT

    def test_equal_policy_is_the_outer_one(self) -> None:
        """An own policy equal to outer returns outer itself."""
        assert combine_policies(DEFAULT, ShutdownPolicy(30, 10, 5)) is DEFAULT

    def test_stricter_graceful_shortens_only_graceful_end(self) -> None:
        """A shorter own graceful budget moves the graceful end; later ends stay where outer puts them."""
        combined = combine_policies(DEFAULT, ShutdownPolicy(graceful=5, forceful=100, terminate=100))
        assert [combined.offset(p) for p in Phase] == [5, 40, 45]
        assert combined == ShutdownPolicy(graceful=5, forceful=35, terminate=5)

    def test_stricter_everything_is_the_own_policy(self) -> None:
        """An own policy whose every phase ends earlier is the result."""
        own = ShutdownPolicy(1, 2, 3)
        assert combine_policies(DEFAULT, own) == own

    def test_infinite_outer_takes_the_own_policy(self) -> None:
        """With no outer deadlines, the own policy decides."""
        outer = ShutdownPolicy(math.inf, math.inf, math.inf)
        assert combine_policies(outer, ShutdownPolicy(1, 2, 3)) == ShutdownPolicy(1, 2, 3)

    def test_infinite_own_graceful_keeps_outer_deadlines(self) -> None:
        """An own infinite graceful budget leaves every outer deadline in place."""
        assert combine_policies(DEFAULT, ShutdownPolicy(graceful=math.inf)) == DEFAULT

    def test_infinite_end_gives_infinite_later_spans(self) -> None:
        """When a phase never ends in both policies, it and later spans are infinite, never NaN."""
        outer = ShutdownPolicy(graceful=10, forceful=math.inf)
        own = ShutdownPolicy(graceful=5, forceful=math.inf)
        combined = combine_policies(outer, own)
        assert combined == ShutdownPolicy(graceful=5, forceful=math.inf, terminate=math.inf)

    @settings(max_examples=200)
    @given(whole_policies, whole_policies)
    def test_each_phase_ends_at_the_earlier_of_both(self, outer: ShutdownPolicy, own: ShutdownPolicy) -> None:
        """Every phase of the combined policy ends at the earlier of outer's and own's end."""
        combined = combine_policies(outer, own)
        for phase in Phase:
            assert combined.offset(phase) == min(outer.offset(phase), own.offset(phase))

    @settings(max_examples=200)
    @given(whole_policies, whole_policies)
    def test_is_symmetric(self, outer: ShutdownPolicy, own: ShutdownPolicy) -> None:
        """Which policy is outer does not change the combined deadlines."""
        forward, backward = combine_policies(outer, own), combine_policies(own, outer)
        assert [forward.offset(p) for p in Phase] == [backward.offset(p) for p in Phase]


class TestEnds:
    def test_ends_are_the_three_phase_ends(self) -> None:
        """`ends` gives end(GRACEFUL), end(FORCEFUL) and end(TERMINATE), in that order."""
        escalation = Escalation.start(DEFAULT, now=100.0)
        assert escalation.ends == (130.0, 140.0, 145.0)

    @pytest.mark.virtual_time
    async def test_ends_follow_an_escalation(self) -> None:
        """After escalate(), `ends` gives the moved deadlines."""
        escalation = Escalation.start(DEFAULT)
        await anyio.sleep(3)
        escalation.escalate(TERMINATE)
        now = anyio.current_time()
        assert escalation.ends == (now, now, now + 5)
