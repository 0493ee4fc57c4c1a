"""SIGTERM and SIGINT stop the whole run, within seconds, and leave nothing half-done.

How ZenML 0.98 runs a pipeline here: the local orchestrator runs the steps one
after another in this process. While a step runs, ZenML installs its own
handler (``zenml/orchestrators/signal_handler.py``); it raises
``RunInterruptedException``, an ordinary ``Exception``, and then calls the
handler that was installed before it. An ``Exception`` does not stop a run:

- the local orchestrator catches ``Exception`` from a step, marks that step
  failed and goes on with the steps that do not depend on it;
- code between the signal and the step boundary catches it too: MLflow's
  ``log_model`` wraps several stages in ``except Exception`` and carries on, and
  ZenML swallows ``Exception`` from lifecycle hooks.

So :func:`install` puts in a handler that raises :class:`RunStopped`, a
``BaseException``, and :func:`before_each_step` puts it back in place of ZenML's
while each step runs (ZenML restores the handler it found, this one, when the
step ends). Nothing that catches ``Exception`` holds it up. On its way out it
fails the step (ZenML's step launcher marks the step failed and ends the
step's MLflow run as FAILED), leaves the orchestrator's loop, and ZenML marks
the pipeline run failed. ``run.py`` catches it, calls :func:`fail_stopped_run`
for whatever a step did not get to close, and exits 128 + the signal number
(130 for SIGINT, 143 for SIGTERM).

:func:`before_each_step` is every pipeline's ``on_start`` hook: a step refuses
to start once a stop was requested (ZenML's retries and anything that did
swallow the exception end there), and it records which ZenML run and MLflow
run are in progress.

Why ZenML's handler is replaced during steps, and why a stop can wait a few
milliseconds: a ``BaseException`` raised inside a SQLAlchemy call is an "exit
exception" to SQLAlchemy: it invalidates the connection without rolling it back, and the
traceback keeps the sqlite statement, and with it the database lock, alive.
The cleanup's next MLflow write (ZenML ends the step's MLflow run) then waited
20 s and failed with "database is locked", and the run exited 1, not 143. So a
signal that lands inside a database call (SQLAlchemy, sqlite3, MLflow's or
ZenML's stores) stops the run a few milliseconds later, at the first line of
code outside it (:func:`arm_after_database_call`). ZenML's handler would have
raised its own exception inside the call.

Once a stop is under way, further signals are reported and ignored so that the
cleanup is not cut short. ``kill -9`` cannot be handled: the MLflow run it
leaves RUNNING carries this process's host and pid (tagged here), and the next
``run.py`` marks it KILLED (:func:`jude.registry.mlflow_registry.fail_stale_runs`).

Importing this module imports neither ZenML nor MLflow, so ``run.py`` installs
the handlers before it reads the config.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType
from uuid import UUID

SIGNALS = (signal.SIGINT, signal.SIGTERM)

# Test-only: the tests set JUDE_TEST_PAUSE_AT=<step name> to hold that step at its start, so that a
# signal lands at a known moment. The step touches <JUDE_HOME>/.jude/paused-at-<step> and waits
# (at most PAUSE_LIMIT_S) until the test deletes that file.
PAUSE_ENV = "JUDE_TEST_PAUSE_AT"
PAUSE_LIMIT_S = 600


class RunStopped(BaseException):
    """A signal asked the run to stop.

    A ``BaseException``, like ``KeyboardInterrupt``, so that the ``except
    Exception`` of ZenML's orchestrator and of MLflow let it through.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signame = signal.Signals(signum).name
        super().__init__(f"stopped by {self.signame}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


_requested: int | None = None  # the signal that asked for the stop
_raised = False  # RunStopped has been raised for it
_armed = False  # a trace function will raise it once the database call in progress has returned
_zenml_run_id: UUID | None = None  # the ZenML run in progress, recorded by before_each_step
_mlflow_run_id: str | None = None  # its MLflow run, once a step with the experiment tracker started

# Code a stop must not interrupt: a BaseException raised in these modules leaves a database connection
# holding its lock (see the module docstring). Matched against each frame's module name.
DATABASE_MODULES = ("sqlalchemy", "sqlite3", "sqlmodel", "mlflow.store", "zenml.zen_stores", "pymysql", "psycopg2")


def _say(message: str) -> None:
    # os.write, not print: a handler may run while the main thread is inside a write to stderr
    # (a progress bar), and a buffered stream refuses a reentrant write
    try:
        os.write(2, f"jude: {message}\n".encode())
    except OSError:  # stderr closed: the stop must not fail for want of a message
        pass


def _database_frame(frame: FrameType) -> bool:
    module = frame.f_globals.get("__name__") or ""
    return any(module == m or module.startswith(m + ".") for m in DATABASE_MODULES)


def inside_database_call(frame: FrameType | None) -> bool:
    """True when ``frame`` or a frame below it on the stack runs code of :data:`DATABASE_MODULES`."""
    while frame is not None:
        if _database_frame(frame):
            return True
        frame = frame.f_back
    return False


def _trace(frame: FrameType, event: str, arg: object):
    """The trace function while armed: raise RunStopped at the first call or line outside a database call."""
    global _armed, _raised
    if not _armed:
        return None
    if event in ("call", "line") and not inside_database_call(frame):
        sys.settrace(None)
        _armed, _raised = False, True
        raise RunStopped(_requested)
    return None if event == "call" else _trace  # new frames inside the database call need no line events


def arm_after_database_call(frame: FrameType | None) -> None:
    """Raise :class:`RunStopped` as soon as the main thread is out of the database call ``frame`` is in.

    Redelivering the signal a little later does not do it: a loop that logs to
    MLflow spends nearly all its time in sqlite's C calls, and a signal is
    handled right after such a call returns, so inside the database code again
    (measured: 90-95 % of the tries, and under load none in 300 s). Instead a
    trace function (``sys.settrace``, as pdb does) watches the frames outside
    the database code and raises at their first line: the moment the call has
    returned. Only the main thread is traced, and only for the rest of the
    call (milliseconds).
    """
    global _armed
    if _armed:
        return
    _armed = True
    while frame is not None:  # the frames already on the stack get line events through f_trace
        if not _database_frame(frame):
            frame.f_trace = _trace
        frame = frame.f_back
    sys.settrace(_trace)


def _handle(signum: int, frame: FrameType | None) -> None:
    global _requested, _raised
    if _raised:
        _say(f"{signal.Signals(signum).name} received while stopping; finishing the cleanup (kill -9 forces it)")
        return
    if _requested is None:
        _requested = signum
        # From now on this handler alone answers the signals, also while a step runs: ZenML's handler
        # would raise into the cleanup. (When the step ends, ZenML restores this handler anyway.)
        for sig in SIGNALS:
            signal.signal(sig, _handle)
        _say(f"{signal.Signals(signum).name} received: stopping the run")
    if inside_database_call(frame):
        arm_after_database_call(frame)  # stop once the call has returned
        return
    _raised = True
    raise RunStopped(_requested)


def install() -> None:
    """Make SIGTERM and SIGINT stop the run (call from the main thread, before the pipeline runs)."""
    for sig in SIGNALS:
        signal.signal(sig, _handle)


def raise_if_requested() -> None:
    """Raise :class:`RunStopped` when a stop was requested."""
    global _raised
    if _requested is not None:
        _raised = True
        raise RunStopped(_requested)


def before_each_step() -> None:
    """Every pipeline's ``on_start`` hook: refuse to start after a stop; remember the runs in progress."""
    global _zenml_run_id, _mlflow_run_id
    raise_if_requested()
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        install()  # in place of ZenML's handler for this step; ZenML restores the one it found (this one) after it
    from zenml import get_step_context

    context = get_step_context()
    _zenml_run_id = context.pipeline_run.id
    import mlflow

    active = mlflow.active_run()  # the experiment tracker starts it before this hook runs
    if active is not None:
        from jude.registry.mlflow_registry import tag_owner

        _mlflow_run_id = active.info.run_id
        tag_owner()
    _pause_for_tests(context.step_name)


def _pause_for_tests(step_name: str) -> None:
    if os.environ.get(PAUSE_ENV) != step_name:
        return
    from jude.registry.mlflow_registry import state_dir

    marker = state_dir() / f"paused-at-{step_name}"
    marker.touch()
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def fail_stopped_run(tracking_uri: str | None = None) -> None:
    """After a stop: mark the ZenML run and its MLflow run failed, where the step did not get to.

    The step runner ends a step's MLflow run as FAILED when the signal lands in
    the step's body; a signal that lands before it (in ZenML's preparation or in
    :func:`before_each_step`) leaves the run active, and a signal in a step
    without the experiment tracker leaves the MLflow run as the last tracked
    step ended it (FINISHED). ZenML marks its run failed itself; this covers
    the paths where it might not.
    """
    if "mlflow" in sys.modules:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run("FAILED")
    if _mlflow_run_id is not None:
        from mlflow.tracking import MlflowClient

        from jude.registry.mlflow_registry import resolve_tracking_uri

        client = MlflowClient(resolve_tracking_uri(tracking_uri))
        if client.get_run(_mlflow_run_id).info.status not in ("FAILED", "KILLED"):
            client.set_terminated(_mlflow_run_id, "FAILED")
    if _zenml_run_id is not None:
        from zenml.client import Client
        from zenml.orchestrators.publish_utils import publish_failed_pipeline_run

        if not Client().get_pipeline_run(_zenml_run_id, hydrate=False).status.is_finished:
            publish_failed_pipeline_run(_zenml_run_id)
