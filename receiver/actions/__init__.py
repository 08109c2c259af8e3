"""Containment and comms actions, run exactly once per incident step through a ledger.

Modules: ``base`` (ActionSettings, ActionContext, ActionResult, the Action protocol), ``registry`` (kind name
-> executor; :func:`~receiver.actions.registry.default_registry`), one module per kind (``rollback``,
``traffic_split``, ``fallback``, ``guardrail``, ``silence``, ``http``, ``page``, ``notify``), ``kinds``
(the JSON Schemas ``receiver lint`` uses), ``ledger`` (table ``action_ledger``, migration 0003) and
``executor`` (condition, rendering, claim, timeout, retries, cooldown, flap guard, dry-run, recovery and
the restart rule).

Wiring, e.g. in the responder::

    ledger = Ledger(store)        # anything whose transaction() yields a sqlite3 conn in BEGIN IMMEDIATE
    executor = ActionExecutor(ledger, default_registry(), settings, on_timeline=append_to_timeline)
    executor.resume_interrupted(context_for_row)        # once at start-up (and periodically)
    ctx = ActionContext(incident_id=str(incident.id), model=labels["model"], settings=settings,
                        runbook_id=runbook.id, labels=labels, annotations=annotations, severity="SEV2",
                        value=value, incident_key=incident.key, session=session, notifier=outbox.enqueue)
    steps = [StepSpec.from_mapping(raw, i) for i, raw in enumerate(runbook.contain)]
    outcomes = executor.run_steps(steps, ctx, dry_run=runbook.dry_run)     # phase="contain"
    # outcome.escalate set -> escalate to humans; outcome.duplicate -> it had run before, nothing new
    executor.recover(ctx, recover_steps)        # admin /recover (automatic=False by default)

Nothing is imported here, so importing the package does no work.
"""

__all__: list[str] = []
