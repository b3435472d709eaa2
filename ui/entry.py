"""Keep every page inside app.py's st.navigation, though page scripts sit in a pages/ folder.

Streamlit (checked up to 1.67) starts in its old multipage mode whenever a pages/ folder exists,
and leaves it only once st.navigation runs. So if a fresh server's first request is a deep link
such as /model, Streamlit runs pages/model.py on its own: no app.py, no sidebar, a navigation
listing the raw file names. The page's first call notices that and runs app.py's main() in its
place, in the same script run (so a clicked button is not lost), which draws the app's navigation,
the sidebar and this page (a page's id is its URL path in both modes); then the bare run stops.
tests/test_browser.py opens a deep link first on a fresh server to hold this."""
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

_ENTERED = "_entered_through_app"


def start_app() -> None:
    """The first call of app.py's main(): leave the old mode for good."""
    PagesManager.uses_pages_directory = False
    st.session_state[_ENTERED] = True


def through_app() -> None:
    """The first call of every page script: a page run without app.py runs through it instead."""
    if PagesManager.uses_pages_directory or not st.session_state.get(_ENTERED):
        from app import main  # app.py sits beside pages/, on the path Streamlit gives its scripts
        main()
        st.stop()
