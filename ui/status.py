"""The job status area at the top of every page: while a job is queued, waiting or running, its label,
stage and progress bar and a Cancel button sit above the page's title, refreshed every couple of
seconds, so a click on "Run" visibly starts something whatever page one is on."""
import time

import streamlit as st

from mesa.lab.jobs.queue import WAITING, job_queue

REFRESH = 2.0  # seconds
_SHOWN = "status-area-job"


def _describe(job) -> tuple[str, str]:
    """(headline, progress text) of the job at the head of the queue."""
    elapsed = f"{time.time() - job.started:.0f} s" if job.started else "not started"
    head = f"**Job #{job.id}** {job.label} · **{job.status}** · {elapsed}"
    if job.status == WAITING:
        return head, job.waiting_for
    stage = job.latest.stage if job.latest else "starting"
    return head, f"{stage}: {job.fraction:.0%}"


def status_area() -> bool:
    """Drawn by app.py on every page, above it; polls only while a job is active (or was, at the
    last look). True when drawn."""
    if not job_queue().active() and _SHOWN not in st.session_state:
        return False

    @st.fragment(run_every=REFRESH)
    def area():
        active = job_queue().active()
        if not active:  # it ended: redraw the page once, with the results and without polling
            st.session_state.pop(_SHOWN, None)
            st.rerun(scope="app")
        job = active[0]
        st.session_state[_SHOWN] = job.id
        head, text = _describe(job)
        with st.container(border=True, key="job-status"):
            left, right = st.columns([8, 1], vertical_alignment="center")
            queued = f" · {len(active) - 1} more queued" if len(active) > 1 else ""
            left.markdown(head + queued)
            left.progress(job.fraction, text=text)
            if right.button("Cancel", key=f"status-cancel-{job.id}", icon=":material/stop:"):
                job.cancel()

    area()
    return True


def show_new_jobs(shown: bool) -> None:
    """After the page: a job its button just started came after the status area was skipped, so
    draw the page once more, with the area on top."""
    if not shown and job_queue().active():
        st.rerun()
