"""MESA Lab, the app: `streamlit run app.py`. Thin views over the `mesa` engine; long stages run
as background jobs (mesa/lab/jobs/queue.py) that pages poll, so reloads and other tabs see them.

Page scripts live in pages/ (one file per page, its URL the file name: /model, /mesa_search, ...);
what they share lives in ui/. The frame around them, and the list of pages st.navigation shows, is
ui/entry.py: a deep link such as /model opens that page inside it, even as a fresh server's first
request (tests/test_browser.py). This file is only what Streamlit runs; nothing imports it."""
from ui.entry import main

main()
