"""Who may request and approve fixes (bot/remediation/access.py): user ids, and usergroups expanded
through Slack's usergroups.users.list and cached in Redis for a bounded time, so a person removed from
an approver group stops approving once the cache expires. A group that cannot be expanded grants nothing."""
import time

from clicks import ALICE, CAROL, MALLORY, choose, click, diagnose, events, menu

from bot.catalog import Access
from bot.remediation import access
from bot.remediation.access import Approvers
from handlers.progress import usergroup_members

GROUP = "S0ONCALL1"


def test_usergroup_approvers_are_expanded_and_cached(harness):
    h = harness("pipe-paused")
    h.slack.usergroups[GROUP] = [CAROL]
    approvers = Approvers(Access(approvers=(GROUP,)), h.redis, usergroup_members(h.wiring.client))
    assert approvers.allows(CAROL) and not approvers.allows(MALLORY)
    assert approvers.allows(CAROL)
    assert len(h.slack.of("usergroups.users.list")) == 1  # the second answer came from Redis


def test_a_member_removed_from_an_approver_group_stops_approving_once_the_cache_expires(harness, monkeypatch):
    h = harness("pipe-paused")
    monkeypatch.setattr(access, "GROUP_CACHE_S", 1)
    h.slack.usergroups[GROUP] = [CAROL]
    approvers = Approvers(Access(approvers=(GROUP,)), h.redis, usergroup_members(h.wiring.client))
    assert approvers.allows(CAROL)
    assert 0 < h.redis.ttl(f"syncbot:usergroup:{GROUP}") <= 1
    h.slack.usergroups[GROUP] = []  # removed from the on-call group in Slack
    assert approvers.allows(CAROL)  # still cached
    time.sleep(1.3)
    assert not approvers.allows(CAROL)
    assert len(h.slack.of("usergroups.users.list")) == 2


def test_a_group_that_cannot_be_expanded_approves_nobody(harness):
    h = harness("pipe-paused")

    def refused(group):
        raise RuntimeError("missing_scope")

    assert not Approvers(Access(approvers=(GROUP,)), h.redis, refused).allows(CAROL)
    assert not Approvers(Access(approvers=(GROUP,)), h.redis).allows(CAROL)
    assert h.redis.get(f"syncbot:usergroup:{GROUP}") is None  # a failure is not cached as "no members"
    assert Approvers(Access(approvers=(CAROL, GROUP)), h.redis, refused).allows(CAROL)


# -- who may click, end to end ----------------------------------------------------------------------------

def test_non_approver_is_refused_and_nothing_runs(harness):
    h = harness("pipe-paused")
    ts, buttons = diagnose(h, user=MALLORY)
    answer = click(h, buttons["resume_pipe"], MALLORY, message_ts=ts)
    assert "Only approvers can run fixes" in answer and "<@U0ALICE01>" in answer
    assert h.sandbox.snowflake.statements == [] and events(h) == []


def test_a_button_works_only_for_the_fix_its_offer_was_made_for(harness):
    """The action id names the kind, the value the offer: an offer id sent with another kind's action id
    (or picked from the menu, which holds only the fixes offered for every table) finds nothing."""
    h = harness("pipe-paused")
    ts, buttons = diagnose(h)
    forged = {**buttons["resume_pipe"], "action_id": "syncbot.fix.resync"}
    assert "no longer valid" in click(h, forged, ALICE, message_ts=ts)
    overflow = menu(h.slack.of("chat.postMessage")[-1])
    assert "no longer valid" in choose(h, overflow, {"text": {"type": "plain_text", "text": "Re-sync table…"},
                                                     "value": buttons["resume_pipe"]["value"]}, ALICE, ts)
    assert h.sandbox.snowflake.statements == [] and events(h) == []
