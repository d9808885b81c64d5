"""The live tail's filter index (``tail.routing``): it may only skip filters that cannot match."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from eventstrata.model import Event
from eventstrata.query.filters import EventFilter
from eventstrata.tail.routing import FilterIndex

USERS = ("u1", "u2", "u3")
TYPES = ("click", "view", "buy")

filters = st.builds(
    EventFilter,
    user_ids=st.lists(st.sampled_from(USERS), max_size=2).map(tuple),
    types=st.lists(st.sampled_from(TYPES), max_size=2).map(tuple),
    exclude_types=st.lists(st.sampled_from(TYPES), max_size=1).map(tuple),
)
events = st.builds(
    lambda i, u, t: Event(id=f"e{i}", tenant="t", type=t, timestamp=1, received_at=1, format="native",
                          user_id=u),
    st.integers(0, 9), st.one_of(st.none(), st.sampled_from(USERS)), st.sampled_from(TYPES),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(filters, max_size=8), st.lists(st.integers(0, 7), max_size=4), st.lists(events, max_size=6))
def test_candidates_hold_every_matching_group_once(flts: list[EventFilter], removed: list[int],
                                                   evs: list[Event]) -> None:
    index = FilterIndex()
    for i, f in enumerate(flts):
        index.add(i, f)
    for i in removed:
        index.remove(i)
    for e in evs:
        cands = [id(g) for g in index.candidates(e)]
        assert len(cands) == len(set(cands)), "a group was yielded twice"
        matching = {id(g) for g in index.groups.values() if g.flt.matches(e)}
        assert matching <= set(cands)
        assert set(cands) <= {id(g) for g in index.groups.values()}  # removed groups are gone


def test_a_user_filter_is_not_evaluated_for_other_users() -> None:
    index = FilterIndex()
    a = index.add("a", EventFilter(user_ids=("u1",)))
    index.add("b", EventFilter(types=("click",)))
    rest = index.add("c", EventFilter(exclude_types=("view",)))
    e = Event(id="x", tenant="t", type="buy", timestamp=1, received_at=1, format="native", user_id="u2")
    assert list(index.candidates(e)) == [rest]
    e1 = Event(id="y", tenant="t", type="click", timestamp=1, received_at=1, format="native", user_id="u1")
    assert {id(g) for g in index.candidates(e1)} == {id(a), id(index.groups["b"]), id(rest)}
    index.remove("a")
    index.remove("a")
    assert a not in list(index.candidates(e1))
