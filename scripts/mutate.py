"""Deletes each safety guard in turn and checks that a test notices.

    .venv/bin/python scripts/mutate.py                 # every mutation (several minutes)
    .venv/bin/python scripts/mutate.py --list          # the names
    .venv/bin/python scripts/mutate.py fence-token claim-lease   # some of them

Each mutation is an exact text replacement in production code (it must match exactly once, or the
mutation is reported stale) together with the tests that stand for that guard. The repository is
copied to a temporary directory once; each mutation is applied there, its tests run with
`pytest -x -q` against the copy (PYTHONPATH points at it, never at the working tree), and the file is
restored. "caught" means a test failed (or hung past the timeout); "survived" means every test passed
with the guard gone. Exits 1 if any mutation survived or was stale, or if the tests fail before any
mutation. Tests flush their Redis database: set SYNCBOT_TEST_REDIS_URL (or --redis-url) to one no
other test run uses."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", ".pytest_cache", "build")

A = "tests/test_guard_approvals.py::"
J = "tests/test_guard_jobs.py::"
D = "tests/test_guard_diagnostics.py::"
O = "tests/test_guard_open_requests.py::"
Q = "tests/test_open_requests.py::"
F = "tests/test_fixes.py::"
X = "tests/test_dms_fixes.py::"
V = "tests/test_dms_verdicts.py::"
S = "tests/test_dms_slots.py::"
C = "tests/test_dms_scenarios.py::"
WR = "tests/test_workflow_reasons.py::"
WS = "tests/test_workflow_snooze.py::"
WC = "tests/test_workflow_card.py::"
WH = "tests/test_workflow_home.py::"
OP = "tests/test_guard_shutdown.py::"


@dataclass(frozen=True)
class Mutation:
    name: str
    edits: tuple[tuple[str, str, str], ...]  # (file, exact text, replacement)
    tests: tuple[str, ...]


def m(name: str, path: str, old: str, new: str, *tests: str) -> Mutation:
    return Mutation(name, ((path, old, new),), tests)


APPROVALS = "bot/remediation/approvals.py"
JOBS = "bot/remediation/jobs.py"
RUNTIME = "bot/remediation/runtime.py"
RESYNC = "bot/remediation/fixes/resync.py"
SERVICE = "bot/remediation/service.py"
FIX = "bot/remediation/fix.py"
HA = "tests/test_redis_failover.py::"
RS = "tests/test_redis_settings.py::"

RESTART = "bot/remediation/fixes/restart_task.py"

MUTATIONS = (
    # -- DMS as it is configured (issue 20) --------------------------------------------------------------
    m("resync-migration-type-before-approval", RESYNC,
      "    if not task.reloads_tables:  # DMS refuses ReloadTables on a CDC-only task: nothing is asked of anyone\n"
      "        raise PlanError(resync_refusal(task.migration_type or \"unknown\"))\n", "",
      X + "test_a_resync_of_a_cdc_only_task_is_refused_before_approval"),
    m("resync-migration-type-worker", RESYNC,
      "    if not task.reloads_tables:\n        raise StepFailed(f\"nothing was truncated: ", "    if False:\n        raise StepFailed(f\"",
      X + "test_the_worker_checks_the_migration_type_again_before_the_first_truncate"),
    m("restart-lost-slot-before-approval", RESTART, "    if lost:\n        raise PlanError(", "    if False:\n        raise PlanError(",
      X + "test_a_lost_slot_is_never_resumed_and_reload_target_needs_two_people"),
    m("restart-lost-slot-worker", RESTART, "        if lost:\n            raise StepFailed(", "        if False:\n            raise StepFailed(",
      X + "test_the_worker_checks_the_slot_again_before_it_resumes"),
    m("restart-first-run-start-replication", RESTART, "    if task.never_ran:\n        return RestartPlan(",
      "    if False:\n        return RestartPlan(", X + "test_a_task_that_never_ran_is_started_with_start_replication"),
    m("verdict-no-resync-on-cdc", "bot/diagnostics/verdict.py", "    if ActionKind.RESYNC not in actions or not note:",
      "    if True:", V + "test_a_cdc_only_task_is_never_offered_a_resync"),
    m("offer-no-resync-on-cdc", "bot/core.py", "refused = {ActionKind.RESYNC} if resync_refused(diag.checks) else set()",
      "refused = set()", C + "test_each_scenario_gives_the_right_heading_cause_and_buttons[cdc-only-rows-missing]"),
    m("verdict-lost-slot-no-restart", "bot/diagnostics/verdict.py", "    if fact(CheckName.SLOT, \"lost\", False):\n",
      "    if False:\n", S + "test_a_lost_slot_means_the_task_cannot_resume"),
    m("slot-by-its-name", "bot/diagnostics/slots.py", "    if pg is not None and pg.slot_name:", "    if False:",
      S + "test_a_leftover_slot_is_never_the_tasks_and_is_wal_retained_for_nobody",
      S + "test_a_slot_name_that_does_not_exist_is_failing"),
    m("full-load-files-not-schema", "bot/diagnostics/checks.py",
      "    loads = [r for r in counted if FULL_LOAD_NAME.search(r.file_name)] if op_column_differs(target) else []",
      "    loads = []", V + "test_full_load_files_without_op_are_not_schema_mismatch"),
    # -- the approval store's scripts ----------------------------------------------------------------
    m("create-once-per-offer", APPROVALS, "if existing then return {'exists', freed, existing} end\n", "",
      A + "test_an_offer_makes_one_request_whatever_the_number_of_concurrent_creates",
      O + "test_an_old_button_of_an_ended_request_stays_used",
      "tests/test_one_person_fixes.py::test_pause_pipe_runs_once_for_an_approver_and_is_said_in_the_thread"),
    # one open request per table and fix kind
    m("create-one-open-request-per-table-and-fix", APPROVALS,
      "local refused = already_open(KEYS[4], KEYS[5], ARGV[6], ARGV[4])\nif refused then return refused end\n", "",
      O + "test_concurrent_asks_on_two_replicas_make_one_request_and_point_the_rest_to_it",
      O + "test_two_concurrent_asks_make_one_request_and_one_pointer",
      Q + "test_two_asks_that_both_passed_the_quick_look_still_make_one_request",
      A + "test_an_offer_makes_one_request_whatever_the_number_of_concurrent_creates"),
    m("open-request-refuses-every-ask", APPROVALS, "  if holder and holds(holder_key) then", "  if false then",
      O + "test_different_fix_kinds_and_tables_stay_independent",
      Q + "test_the_pointer_follows_the_request_until_it_ends_and_then_a_new_one_is_made",
      J + "test_eight_concurrent_clicks_on_two_replicas_make_one_request_that_runs_once"),
    m("slot-read-again-when-changed", APPROVALS, "  if (holder or '') ~= holder_read then return {'retry'} end\n", "",
      O + "test_a_slot_read_that_went_stale_before_the_script_is_read_again"),
    m("slot-freed-by-every-end", APPROVALS, "  return state == 'running'  -- a lapsed lease",
      "  return state ~= false  -- a lapsed lease",
      O + "test_every_way_a_request_ends_frees_the_slot", O + "test_a_vanished_record_frees_the_slot"),
    m("slot-held-while-running", APPROVALS, "  return state == 'running'  -- a lapsed lease",
      "  return false  -- a lapsed lease",
      O + "test_a_running_request_whose_worker_died_still_holds_the_slot"),
    m("slot-freed-past-the-deadline", APPROVALS, "  if state == 'requested' then return before('expires_at') end",
      "  if state == 'requested' then return true end",
      O + "test_an_overdue_request_is_expired_by_the_next_ask_without_the_clock"),
    m("slot-freed-past-the-start-window", APPROVALS, "  if state == 'approved' then return before('start_by') end",
      "  if state == 'approved' then return true end",
      O + "test_an_overdue_request_is_expired_by_the_next_ask_without_the_clock"),
    m("ask-expires-the-overdue-holder", APPROVALS,
      "if ARGV[6] ~= '' and expire_overdue(KEYS[5]) then freed = ARGV[6] end\n", "",
      O + "test_an_overdue_request_is_expired_by_the_next_ask_without_the_clock"),
    m("slot-expires-with-the-records", APPROVALS, "redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3])",
      "redis.call('SET', KEYS[4], ARGV[2])", O + "test_the_slot_lives_no_longer_than_a_request_record"),
    m("claim-state-check", APPROVALS, "elseif state ~= 'running' or num('lease_until') >= now then",
      "elseif num('lease_until') >= now then",
      A + "test_claim_takes_only_an_approved_request_or_a_running_one_whose_lease_lapsed",
      "tests/test_approvals.py::test_self_approval_and_non_approvers_are_refused"),
    m("claim-lease-check", APPROVALS, "elseif state ~= 'running' or num('lease_until') >= now then",
      "elseif state ~= 'running' then",
      A + "test_concurrent_claims_on_two_replicas_give_the_request_to_one_worker",
      A + "test_a_live_lease_of_another_worker_is_not_taken_over",
      J + "test_a_job_delivered_twice_at_once_runs_once", "tests/test_approvals.py::test_a_queued_job_delivered_twice_runs_once"),
    m("claim-start-window", APPROVALS, "  if num('start_by') <= now then", "  if false then",
      A + "test_an_approved_request_not_started_within_its_window_expires_by_claim_or_by_clock"),
    m("expire-start-window", APPROVALS, "  if state == 'approved' and due('start_by') then", "  if false then",
      A + "test_an_approved_request_not_started_within_its_window_expires_by_claim_or_by_clock",
      O + "test_an_overdue_request_is_expired_by_the_next_ask_without_the_clock"),
    m("claim-honours-table-lock", APPROVALS, "if holder and holder ~= id then", "if false then",
      A + "test_the_claim_takes_the_table_lock_and_honours_another_requests"),
    m("claim-takes-table-lock", APPROVALS, "redis.call('SET', KEYS[2], id, 'EX', ARGV[4])\n", "",
      A + "test_the_claim_takes_the_table_lock_and_honours_another_requests",
      J + "test_a_quick_fix_is_refused_while_a_worker_holds_the_table_for_a_resync"),
    m("fence-token", APPROVALS,
      "if redis.call('HGET', req, 'worker') ~= ARGV[2] or redis.call('HGET', req, 'fence') ~= ARGV[3] then",
      "if false then",
      A + "test_a_lapsed_lease_is_taken_over_with_a_new_token_and_the_old_worker_is_fenced_off",
      A + "test_a_stale_token_of_the_same_worker_is_refused",
      J + "test_a_truncate_outliving_its_lease_leaves_the_table_to_the_worker_that_took_over"),
    m("fence-lease-lapsed", APPROVALS, "if num('lease_until') < now then return {'lost', 'lease lapsed'} end\n", "",
      A + "test_a_lease_that_lapsed_without_a_takeover_fails_the_fence"),
    m("fence-missing", APPROVALS, "_FENCE = _PRELUDE + \"\"\"\nif redis.call('EXISTS', req) == 0 then return {'missing'} end\n",
      "_FENCE = _PRELUDE + \"\"\"\n",
      A + "test_the_fence_says_missing_when_the_record_vanished",
      J + "test_redis_losing_the_request_mid_run_stops_the_job_loudly"),
    m("finish-token", APPROVALS,
      "if state ~= 'running' or redis.call('HGET', req, 'worker') ~= ARGV[2] or redis.call('HGET', req, 'fence') ~= ARGV[3] then",
      "if state ~= 'running' then",
      A + "test_a_lapsed_lease_is_taken_over_with_a_new_token_and_the_old_worker_is_fenced_off",
      A + "test_a_stale_token_of_the_same_worker_is_refused"),
    m("cancel-too-late", APPROVALS,
      "if state == 'running' and redis.call('HGET', req, 'changed') == '1' then return {'too_late', state} end\n", "",
      A + "test_cancel_after_the_first_change_is_too_late",
      J + "test_cancel_is_refused_once_the_first_truncate_started"),
    m("approve-deadline", APPROVALS, "if num('expires_at') <= now then", "if false then",
      A + "test_a_process_clock_far_behind_approves_no_expired_request",
      "tests/test_approvals.py::test_expired_request_cannot_be_approved"),
    m("approve-self", APPROVALS, "if redis.call('HGET', req, 'requester') == ARGV[2] then return {'self'} end\n", "",
      A + "test_approve_refuses_the_requester_and_a_changed_plan"),
    m("approve-plan-hash", APPROVALS, "if redis.call('HGET', req, 'plan_hash') ~= ARGV[3] then", "if false then",
      A + "test_approve_refuses_the_requester_and_a_changed_plan",
      "tests/test_approvals.py::test_approval_does_not_carry_over_to_a_changed_plan"),
    Mutation("process-clock-instead-of-redis-time", (
        (APPROVALS, "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) + tonumber(t[2]) / 1000000\nlocal function",
         "local now = tonumber(redis.call('GET', 'syncbot:mutant-clock'))\nlocal function"),
        (APPROVALS, "        script = self._scripts[name]\n",
         "        self.redis.set('syncbot:mutant-clock', __import__('time').time())\n"
         "        script = self._scripts[name]\n")),
        (A + "test_a_process_clock_far_ahead_takes_over_no_live_lease",
         A + "test_a_process_clock_far_behind_approves_no_expired_request")),
    # -- the job engine ----------------------------------------------------------------------------------
    m("fence-before-each-step", JOBS,
      'at = lease.fence(f"{step.name}: started", changes=step.changes, step_started=index)', "at = 0.0",
      J + "test_cancel_is_refused_once_the_first_truncate_started",
      J + "test_a_worker_killed_after_reload_tables_returned_is_resumed_without_a_second_reload"),
    m("missing-record-is-state-lost", RUNTIME, "        if reply.result is Result.MISSING:\n            raise StateLost",
      "        if False:\n            raise StateLost",
      J + "test_redis_losing_the_request_mid_run_stops_the_job_loudly"),
    m("skip-checkpointed-steps", JOBS, "if now.step_done >= index:\n", "if False:\n",
      J + "test_a_worker_killed_after_reload_tables_returned_is_resumed_without_a_second_reload"),
    m("heartbeat", RUNTIME, "        self._thread.start()\n", "        pass\n",
      J + "test_the_heartbeat_keeps_a_slow_step_from_being_taken_over"),
    m("any-step-error-fails-the-request", JOBS, "    except Exception as exc:  # noqa: BLE001 - every other",
      "    except StepFailed as exc:  # noqa: BLE001 - every other",
      J + "test_an_aws_network_error_in_a_step_fails_the_request_saying_what_already_ran"),
    m("failure-says-what-ran", JOBS, "    if not done:\n        return f\"{label} failed before changing anything",
      "    if True:\n        return f\"{label} failed before changing anything",
      J + "test_an_aws_network_error_in_a_step_fails_the_request_saying_what_already_ran"),
    m("reload-asks-dms-on-resume", RESYNC, "    if ctx.resumed:\n        fresh = ctx.rt.approvals.get(",
      "    if False:\n        fresh = ctx.rt.approvals.get(",
      J + "test_a_worker_killed_after_reload_tables_returned_is_resumed_without_a_second_reload",
      J + "test_a_reload_that_already_completed_before_the_resume_is_not_called_again"),
    m("truncate-bounded-by-statement-timeout", RESYNC,
      "ctx.gw.snowflake.truncate(table, timeout_s=ctx.rt.statement_timeout_s)", "ctx.gw.snowflake.truncate(table)",
      J + "test_every_truncate_is_bounded_on_the_server_below_the_lease"),
    m("reload-seen-by-newer-start-time", RESYNC, "    return bool(start) and start != before", "    return False",
      J + "test_a_reload_that_already_completed_before_the_resume_is_not_called_again"),
    # -- the fix kinds (bot/remediation/fix.py, fixes/) ---------------------------------------------------
    m("catalog-only-raises-the-people", FIX, "return max(self.people, access.policies.get(self.kind.value, 0))",
      "return access.policies.get(self.kind.value, self.people)",
      "tests/test_approvals.py::test_catalog_can_tighten_but_never_loosen_the_policy"),
    m("deleting-data-needs-two-people", FIX, "if self.destructive and self.people < 2:", "if False:",
      F + "test_a_fix_that_deletes_data_cannot_be_declared_for_one_person"),
    m("plan-hash-covers-the-data", FIX, "[self.kind.value, self.table, self.steps, self.data.to_json()]",
      "[self.kind.value, self.table, self.steps]",
      F + "test_the_plan_hash_binds_the_data_not_only_the_text"),
    Mutation("stored-plan-must-fit-its-fix", (
        (FIX, "        if not set(data) <= names:", "        if False:"),
        (FIX, "for name, value in data.items()})", "for name, value in data.items() if name in names})")),
        (J + "test_a_stored_plan_that_does_not_fit_its_fix_fails_before_any_change",
         F + "test_a_stored_plan_that_does_not_fit_its_fix_is_refused")),
    m("columns-checked-before-the-first-alter", "bot/remediation/fixes/fix_columns.py",
      'raise StepFailed(f"nothing was changed: {exc}") from None', 'return "skipped"',
      "tests/test_deeper_fixes.py::test_a_hostile_column_name_in_a_plan_runs_nothing"),
    # -- who may press what (access.py, the service's approver checks, offers) --------------------------
    m("usergroup-cache-expires", "bot/remediation/access.py", "json.dumps(members), ex=GROUP_CACHE_S)",
      "json.dumps(members))",
      "tests/test_access.py::test_a_member_removed_from_an_approver_group_stops_approving_once_the_cache_expires"),
    m("unexpandable-group-not-cached", "bot/remediation/access.py",
      "            return set()\n        self._redis.set(",
      "            members = []\n        self._redis.set(",
      "tests/test_access.py::test_a_group_that_cannot_be_expanded_approves_nobody"),
    m("click-approver-check", SERVICE, "        if not self.approvers.allows(user):\n"
      "            return _refuse(\"Only approvers can run fixes.\"",
      "        if False:\n            return _refuse(\"Only approvers can run fixes.\"",
      "tests/test_access.py::test_non_approver_is_refused_and_nothing_runs"),
    m("approve-approver-check", SERVICE, "        if not self.approvers.allows(user):\n"
      "            return _refuse(\"Only approvers can approve.\"",
      "        if False:\n            return _refuse(\"Only approvers can approve.\"",
      "tests/test_approvals.py::test_self_approval_and_non_approvers_are_refused"),
    m("cancel-approver-check", SERVICE, "        if user != request.requester and not self.approvers.allows(user):\n"
      "            return _refuse(\"Only approvers can cancel.\"",
      "        if False:\n            return _refuse(\"Only approvers can cancel.\"",
      "tests/test_resync.py::test_an_approved_resync_can_be_cancelled_until_it_starts"),
    m("offer-kind-must-match-the-button", SERVICE, "if offer is None or offer.action not in kinds:", "if offer is None:",
      "tests/test_access.py::test_a_button_works_only_for_the_fix_its_offer_was_made_for"),
    m("menu-holds-only-fixes-offered-everywhere", SERVICE, "self._click(offer_id, EVERYWHERE, user, thread, reason)",
      "self._click(offer_id, tuple(FIXES), user, thread, reason)",
      "tests/test_access.py::test_a_button_works_only_for_the_fix_its_offer_was_made_for"),
    # -- the service and the wiring ------------------------------------------------------------------------
    m("reject-approver-check", SERVICE, "        if user != request.requester and not self.approvers.allows(user):\n"
      "            return _refuse(\"Only approvers can reject.\"",
      "        if False:\n            return _refuse(\"Only approvers can reject.\"",
      J + "test_only_approvers_or_the_requester_may_reject", "tests/test_approvals.py::test_rejected_and_expired_requests_cannot_be_approved"),
    m("click-refused-while-table-locked", SERVICE, "if holder := self.approvals.lock_holder(spec.name):",
      "if holder := None:",
      J + "test_a_quick_fix_is_refused_while_a_worker_holds_the_table_for_a_resync"),
    m("enqueue-failure-answered-truthfully", SERVICE,
      "            self._enqueue(request)\n        except Exception as exc:",
      "            self._enqueue(request)\n        except ZeroDivisionError as exc:",
      J + "test_a_queue_failure_after_approval_keeps_it_approved_and_recovery_runs_it_once"),
    m("recovery-queues-once-across-replicas", "syncbot/wiring.py", "1, nx=True, ex=every_s", "1, ex=every_s",
      J + "test_a_queue_failure_after_approval_keeps_it_approved_and_recovery_runs_it_once"),
    # -- Redis failover (Sentinel, WAIT) --------------------------------------------------------------------
    m("SN-wait-acks-checked", "bot/redis_conn.py", "if int(acks) < rules.min_replicas:", "if False:",
      HA + "test_a_replica_that_confirms_nothing_refuses_every_click",
      HA + "test_a_claim_no_replica_confirms_is_not_acted_on"),
    m("SN-one-replica-by-default-with-sentinel", "bot/settings.py", "return 1 if self.sentinel_addresses else 0",
      "return 0", RS + "test_sentinels_make_one_replica_the_default_and_none_without_them"),
    m("SN-primary-through-sentinel", "bot/redis_conn.py", "if not settings.sentinel_addresses:", "if True:",
      RS + "test_through_sentinel_the_url_still_gives_database_password_and_tls"),
    m("SN-fence-retried-only-within-the-lease", RUNTIME,
      "if not rt.failover_wait or time.monotonic() + FAILOVER_PAUSE_S >= self._held_until \\\n",
      "if not rt.failover_wait \\\n", HA + "test_a_worker_whose_writes_no_replica_confirms_changes_nothing"),
    m("SN-worker-rides-out-a-failover", "syncbot/wiring.py", "failover_wait=bool(settings.sentinel_addresses))",
      "failover_wait=False)", HA + "test_a_failover_inside_the_truncate"),
    # -- diagnosis -------------------------------------------------------------------------------------------
    m("stalled-by-latency-or-slot", "bot/diagnostics/verdict.py", "(stale or latency_high or slot_problem)", "stale",
      D + "test_a_running_task_without_files_is_stalled_by_latency_or_the_slot_even_while_fresh"),
    m("errored-table-offers-resync", "bot/diagnostics/verdict.py",
      "if task_running is False else (ActionKind.RESYNC,)", "if task_running is False else (ActionKind.RESTART_TASK,)",
      D + "test_an_errored_table_while_the_task_runs_offers_resync_not_restart"),
    m("latency-in-one-call", "bot/diagnostics/runner.py",
      '"latency": METRIC_QUERIES_PER_CALL // len(LATENCY_METRICS)', '"latency": 1',
      D + "test_the_latency_of_several_tasks_comes_from_one_get_metric_data_call"),
    # -- redaction -------------------------------------------------------------------------------------------
    m("doctor-gets-redacted-redis-url", "bot/services.py", "redis_where=redacted_url(url)", "redis_where=url",
      D + "test_the_doctor_shows_the_redis_url_without_its_password"),
    m("aurora-error-trimmed", "bot/gateways/aurora.py", "GatewayError(redact(str(exc)).strip().splitlines()[0][:300] or",
      "GatewayError(redact(str(exc)) or",
      D + "test_aurora_errors_reach_users_as_one_trimmed_line",
      "tests/test_gateway_aurora.py::test_unreachable_database_is_a_gateway_error_of_one_trimmed_line"),
    m("error-reply-without-exception-text", "handlers/app.py", "Poster(client).ephemeral(url, error_reply(body, ref))",
      "Poster(client).ephemeral(url, f\"{error_reply(body, ref)} ({error})\")",
      D + "test_an_unexpected_error_in_a_click_is_answered_without_its_text"),
    # -- Snowflake as it really answers (issue 21) --------------------------------------------------------
    m("SF-resync-copies-files-snowpipe-skips", RESYNC, "        ctx.gw.snowflake.load_files(plan.definition, skipped)\n",
      "        pass\n", "tests/test_resync_reloaded_files.py::test_every_reloaded_file_is_loaded_exactly_once"),
    m("SF-resync-copies-only-names-the-pipe-knows", RESYNC, "skipped = sorted(known[name] for name in written if name in known)",
      "skipped = sorted(known.get(name, name) for name in written)",
      "tests/test_resync_reloaded_files.py::test_every_reloaded_file_is_loaded_exactly_once"),
    m("SF-latest-attempt-decides", "bot/diagnostics/checks.py",
      "    history = latest_attempts(history)  # one row per attempt", "    history = history  # one row per attempt",
      "tests/test_snowflake_as_it_answers.py::test_a_file_retried_with_success_is_no_longer_failing"),
    m("SF-task-history-narrowed-by-root", "bot/gateways/snowflake.py", "self._roots.get(task.upper(), \"\"),", "\"\",",
      "tests/test_snowflake_as_it_answers.py::test_another_databases_task_of_the_same_name_never_decides"),
    m("SF-child-task-suspends-its-root-first", "bot/remediation/fixes/resume_merge_task.py",
      "return ((alter(plan.root, \"SUSPEND\"),) if plan.root_started else ()) + (child, alter(plan.root, \"RESUME\"))",
      "return (child,)", "tests/test_snowflake_scenarios.py::test_resuming_a_merge_task_in_a_graph_runs_what_snowflake_"
      "accepts_each_statement_shown"),
    m("SF-small-tables-scale-the-floor", "bot/diagnostics/checks.py", "    floor = min_gap(aurora.rows)\n",
      "    floor = MIN_GAP_ROWS\n", "tests/test_small_tables.py::test_a_fresh_lookup_table_missing_40_percent_is_data_missing"),
    m("SF-old-pipe-error-is-history", "bot/diagnostics/checks.py", "            and pipe.last_error_at < pipe.last_ingested_at)",
      "            and False)", "tests/test_pipe_answers.py::test_an_error_older_than_the_last_ingest_is_history"),
    # -- the team's workflow (issue 24) -----------------------------------------------------------------
    m("WF-reason-required", SERVICE, "        if people > 1 and (problem := reason_problem(reason)) is not None:",
      "        if False:", WR + "test_the_core_refuses_a_two_person_fix_without_a_reason",
      WR + "test_the_button_opens_the_form_and_an_empty_or_long_reason_is_refused_on_the_field"),
    m("WF-reason-refused-on-the-field", "handlers/reasons.py",
      "        if (problem := reason_problem(reason)) is not None:\n            ack(", "        if False:\n            ack(",
      WR + "test_the_button_opens_the_form_and_an_empty_or_long_reason_is_refused_on_the_field"),
    m("WF-pointer-before-the-form", SERVICE,
      "        if (open_request := self.approvals.open_request(spec.name, kind, asker=user)) is not None:",
      "        if False and (open_request := self.approvals.open_request(spec.name, kind, asker=user)) is not None:",
      WR + "test_an_open_request_is_pointed_to_before_any_form_opens"),
    m("WF-dm-once-per-event", "handlers/progress.py",
      "            if callbacks.first_time(self._bot.redis, f\"dm:{request.id}:{event}\", DM_MARK_TTL_S):",
      "            if True:", WR + "test_the_card_says_who_approved_and_the_requester_is_told_each_step"),
    m("WF-snooze-lifted-when-worse", "bot/snoozes.py",
      "        return bool(failing - set(self.failing)) or RANK[diag.verdict.section] > RANK[self.section]",
      "        return False", WS + "test_what_lifts_a_snooze", WS + "test_a_worse_table_lifts_the_snooze_and_is_annotated_in_full"),
    m("WF-snooze-silences", "bot/alert_threads.py", "            if snooze is not None and not snooze.worse(diag):",
      "            if False:", WS + "test_every_annotation_has_the_menu_and_a_snooze_silences_the_next_alert"),
    m("WF-resolved-only-when-healthy", "handlers/incident_card.py",
      "            self.show(diag.table, verified_state(req, diag), resolved=diag.verdict.healthy)",
      "            self.show(diag.table, verified_state(req, diag), resolved=True)",
      WC + "test_a_fix_that_succeeds_on_a_table_still_broken_does_not_resolve_the_card"),
    m("WF-resolved-says-healthy-only", "handlers/incident_card.py", "    if diag.verdict.healthy:\n        return f\":large_green_circle:",
      "    if True:\n        return f\":large_green_circle:",
      WC + "test_a_fix_that_succeeds_on_a_table_still_broken_does_not_resolve_the_card"),
    m("WF-owners-once-per-incident", "bot/alert_threads.py",
      "        opens = tuple(d.table for d in shown if not d.verdict.healthy and not self.incidents.is_open(d.table))",
      "        opens = tuple(d.table for d in shown if not d.verdict.healthy)",
      WC + "test_the_first_annotation_is_the_card_and_mentions_the_owners_once_per_incident"),
    m("WF-home-only-pending", "bot/home.py", "    return (req.state is State.REQUESTED and req.expires_at > time.time() and user != req.requester",
      "    return (req.expires_at > time.time() and user != req.requester",
      WH + "test_a_pending_approval_is_approved_from_the_home"),
    m("WF-home-not-own", "bot/home.py", "and user != req.requester\n", "\n",
      WH + "test_a_self_approval_from_the_home_is_refused"),
    m("WF-owner-ids-checked", "bot/catalog.py", "        if not isinstance(owner, str) or not _SLACK_ID.match(owner):",
      "        if not isinstance(owner, str):", WC + "test_malformed_owners_stop_start_up_with_the_line_named"),
    # -- running it as a service (issue 22): shutdown, probes, redaction of every log field ------------------
    m("OP-handover-gives-the-lease-back", JOBS,
      '    reply = rt.approvals.release(request.id, request.table, rt.worker_id, lease.token, "worker shutting down")\n'
      '    if reply.result is not Result.OK:\n        return "taken-over"\n', "",
      OP + "test_a_stopping_worker_finishes_its_step_changes_nothing_more_and_hands_over"),
    m("OP-handover-queues-it-again", JOBS, "            rt.enqueue(request)\n", "            pass\n",
      OP + "test_a_stopping_worker_finishes_its_step_changes_nothing_more_and_hands_over"),
    m("OP-no-step-after-stop", JOBS, "            if rt.stopping.is_set():\n                raise Stopping()",
      "            if False:\n                raise Stopping()",
      OP + "test_a_stopping_worker_starts_no_step_after_the_one_it_finished"),
    m("OP-no-change-after-stop", RUNTIME, "        if changes and self._rt.stopping.is_set():\n",
      "        if False:\n", OP + "test_the_fence_refuses_a_change_once_stopping_but_still_renews_the_lease"),
    m("OP-wait-ends-on-stop", RUNTIME, "        if self.stopping.is_set():\n            raise Stopping()",
      "        if False:\n            raise Stopping()", OP + "test_a_wait_between_polls_ends_as_soon_as_the_worker_stops"),
    m("OP-worker-sigterm-sets-stopping", "syncbot/wiring.py", "        self._stopping.set()\n", "",
      "tests/test_worker_shutdown.py::test_sigterm_hands_a_running_resync_to_the_other_worker_at_once"),
    m("OP-readyz-503-on-shutdown", "syncbot/server.py", "        if self.stopping.is_set():\n", "        if False:\n",
      OP + "test_readyz_says_a_shutdown_began_and_a_socket_mode_connection_is_down"),
    m("OP-serve-finishes-acked-work", "syncbot/server.py", "    if pool is not None and not pool.idle(shutdown.bound_s):",
      "    if False:", "tests/test_serve_shutdown.py::test_sigterm_drains_then_posts_the_diagnosis_in_flight_and_exits_0"),
    m("OP-redact-every-log-field", "bot/redaction.py",
      "            if key not in _RECORD_ATTRS and value is not None and not isinstance(value, (int, float, bool)):",
      "            if False:", "tests/test_redaction_fields.py::test_every_field_of_a_json_record_is_redacted"),
    m("OP-redact-pgpassword", "bot/redaction.py", '    found = [environ["PGPASSWORD"]] if environ.get("PGPASSWORD") else []',
      "    found = []", "tests/test_redaction_fields.py::test_passwords_given_outside_the_url_are_masked"),
)


def pytest(copy: Path, tests: list[str], env: dict[str, str], timeout: float) -> tuple[bool | None, str]:
    """True: all passed; False: a test failed; None: timed out."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider", "-o", "addopts=", *tests]
    try:
        done = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f}s"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    failed = [line.split()[1].split("::")[-1] for line in lines if line.startswith("FAILED ")]
    summary = lines[-1].strip("= ") if lines else done.stderr.strip()[-200:]
    return done.returncode == 0, summary + (f" ({failed[0]})" if failed else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the mutations and exit")
    parser.add_argument("--redis-url", default=os.environ.get("SYNCBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
                        help="the Redis database the tests may flush (default: $SYNCBOT_TEST_REDIS_URL or db 14)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutation's test run")
    args = parser.parse_args(argv)
    if args.list:
        for mutation in MUTATIONS:
            print(f"{mutation.name:40} {', '.join(sorted({path for path, _, _ in mutation.edits}))}")
        problems = [f"no such test: {test}" for test in missing_tests(MUTATIONS)] + stale_edits(MUTATIONS)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    chosen = [mu for mu in MUTATIONS if not args.names or mu.name in args.names]
    unknown = set(args.names) - {mu.name for mu in MUTATIONS}
    if unknown:
        parser.error(f"no such mutation: {', '.join(sorted(unknown))}")

    with tempfile.TemporaryDirectory(prefix="syncbot-mutants-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(ROOT, copy, ignore=SKIP)
        env = {**os.environ, "PYTHONPATH": str(copy), "SYNCBOT_TEST_REDIS_URL": args.redis_url,
               "PYTHONDONTWRITEBYTECODE": "1"}
        probe = subprocess.run([sys.executable, "-c", "import bot; print(bot.__file__)"], cwd=copy, env=env,
                               capture_output=True, text=True)
        if not probe.stdout.startswith(str(copy)):
            print(f"the copy is not what the tests import ({probe.stdout.strip() or probe.stderr.strip()})")
            return 2
        every_test = list(dict.fromkeys(t for mu in chosen for t in mu.tests))
        passed, summary = pytest(copy, every_test, env, args.timeout * 2)
        print(f"baseline ({len(every_test)} tests, no mutation): {summary}")
        if not passed:
            print("the tests fail without any mutation; fix that first")
            return 2
        results = []
        for mutation in chosen:
            results.append((mutation.name, *run_one(copy, mutation, env, args.timeout)))
            name, verdict, detail, took = results[-1]
            print(f"{verdict.upper():9} {name:40} {took:5.1f}s  {detail}", flush=True)
    counts = {v: sum(1 for _, verdict, _, _ in results if verdict == v) for v in ("caught", "survived", "stale")}
    print(f"\n{counts['caught']} caught, {counts['survived']} survived, {counts['stale']} stale "
          f"of {len(results)} mutations")
    return 0 if counts["caught"] == len(results) else 1


def missing_tests(mutations: list[Mutation]) -> list[str]:
    """Test ids that name no test function in their file: a moved or renamed test, which would otherwise
    show only as a failing baseline."""
    missing = []
    for test in dict.fromkeys(t for mu in mutations for t in mu.tests):
        path, _, name = test.partition("::")
        source = ROOT / path
        if not source.exists() or f"def {name.split('[')[0]}(" not in source.read_text():
            missing.append(test)
    return missing


def stale_edits(mutations: list[Mutation]) -> list[str]:
    """Mutations whose text to replace no longer occurs exactly once in the working tree."""
    return [f"stale: {mu.name} ({path}: the text occurs {(ROOT / path).read_text().count(old)} times)"
            for mu in mutations for path, old, _ in mu.edits if (ROOT / path).read_text().count(old) != 1]


def run_one(copy: Path, mutation: Mutation, env: dict[str, str], timeout: float) -> tuple[str, str, float]:
    originals: dict[Path, str] = {}
    try:
        for path, old, new in mutation.edits:
            file = copy / path
            text = originals.setdefault(file, file.read_text())
            current = file.read_text()
            if current.count(old) != 1:
                return "stale", f"{path}: the text to replace occurs {current.count(old)} times", 0.0
            file.write_text(current.replace(old, new))
        started = time.monotonic()
        passed, summary = pytest(copy, list(mutation.tests), env, timeout)
        took = time.monotonic() - started
        if passed:
            return "survived", summary, took
        return "caught", summary, took
    finally:
        for file, text in originals.items():
            file.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
