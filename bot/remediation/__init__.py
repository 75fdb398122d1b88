"""Fixes: what each button does (plans, steps), who may run it (policy, approvers), and the
two-person approval state machine in Redis that makes each run happen exactly once."""
