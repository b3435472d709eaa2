"""MESA Lab, the app: `streamlit run app.py`. A thin view over the `mesa` engine."""
import streamlit as st

st.set_page_config(page_title="MESA Lab", page_icon="🛡️", layout="wide")
st.navigation([st.Page("pages/overview.py", title="Overview", icon="🏠", default=True)]).run()
