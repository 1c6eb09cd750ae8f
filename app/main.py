"""Entry point of the review app: `aiaudit app` runs `streamlit run app/main.py`."""
from __future__ import annotations

import warnings

import streamlit as st

from audit.users import UserStore
from app import i18n
from app.auth import current_session, sign_in_page, sign_out
from app.state import Ctx, default_language, get_engine, show_flash

warnings.filterwarnings("ignore")

PAGES = ("inventory", "audit", "monitoring", "incidents", "start", "users")
PAGE_ACTION = {"inventory": "audit.view", "audit": "audit.view", "monitoring": "audit.view", "incidents": "audit.view",
               "start": "audit.start", "users": "users.manage"}


def main() -> None:
    st.set_page_config(page_title="aiaudit review", layout="wide")  # a Material icon would load from Google
    if "lang" not in st.session_state:
        st.session_state["lang"] = default_language()
    engine = get_engine()
    store = UserStore(engine.records)
    session = current_session(store, st.session_state["lang"])
    if session is None:
        st.selectbox(i18n.t("language", st.session_state["lang"]), list(i18n.LANGUAGES),
                     format_func=i18n.LANGUAGES.get, key="lang")
        sign_in_page(store, st.session_state["lang"])
        return
    ctx = Ctx(engine=engine, user=session.user, lang=st.session_state["lang"])
    pages = [p for p in PAGES if ctx.can(PAGE_ACTION[p])]
    with st.sidebar:
        st.subheader(ctx.t("app_title"))
        st.markdown(ctx.t("signed_in_as", user=_md(ctx.user.username), role=ctx.role_name()))
        if st.session_state.get("page") not in pages:  # first page after sign-in: a ?audit= link opens that audit
            st.session_state["page"] = "audit" if st.query_params.get("audit") and "audit" in pages else "inventory"
        st.radio(ctx.t("nav"), pages, format_func=lambda p: ctx.t(f"page_{p}"), key="page")
        st.selectbox(ctx.t("language"), list(i18n.LANGUAGES), format_func=i18n.LANGUAGES.get, key="lang")
        if st.button(ctx.t("sign_out"), key="sign_out"):
            sign_out(ctx.user)
            st.rerun()
    show_flash()
    from app import audit_view, incidents_view, monitoring_view, views
    page = st.session_state["page"]
    if page == "inventory":
        views.inventory_page(ctx)
    elif page == "audit":
        audit_view.audit_page(ctx)
    elif page == "monitoring":
        monitoring_view.monitoring_page(ctx)
    elif page == "incidents":
        incidents_view.incidents_page(ctx)
    elif page == "start":
        views.start_page(ctx)
    elif page == "users":
        views.users_page(ctx)


def _md(text: str) -> str:
    from app.render import md
    return md(text)


main()
