"""Sign-in: OIDC through st.login when `.streamlit/secrets.toml` has an [auth] section, else local accounts."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import streamlit as st

from audit.users import SessionExpired, SignInError, User, UserStore

from . import i18n

SESSION_KEY = "aiaudit_session"


def oidc_providers() -> list[str] | None:
    """Provider names from secrets [auth] (["default"] for a single unnamed provider); None if not configured."""
    try:
        auth = st.secrets.get("auth")
    except Exception:  # no secrets file at all
        return None
    if not isinstance(auth, Mapping) or not auth:
        return None
    named = [k for k, v in auth.items() if isinstance(v, Mapping)]
    return named or ["default"]


def _authlib_installed() -> bool:
    try:
        import authlib  # noqa: F401
        return True
    except ImportError:
        return False


def current_session(store: UserStore, lang: str) -> Any:
    """The signed-in session, refreshed (idle/absolute timeout, removed or re-roled users), or None."""
    session = st.session_state.get(SESSION_KEY)
    if session is not None:
        try:
            session = store.refresh(session)
            st.session_state[SESSION_KEY] = session
            return session
        except SessionExpired:
            st.session_state.pop(SESSION_KEY, None)
            st.session_state["_signin_notice"] = i18n.t("session_expired", lang)
            if session.user.source == "oidc" and _oidc_active():
                st.logout()
            return None
    if _oidc_active() and getattr(st.user, "is_logged_in", False):
        email = st.user.get("email") or ""
        user = store.get(email) if email and st.user.get("email_verified") is not False else None
        if user is not None and user.source == "oidc":
            session = store.start_session(user)
            st.session_state[SESSION_KEY] = session
            return session
        st.session_state["_signin_notice"] = i18n.t("sso_unknown_user", lang, email=email)
    return None


def _oidc_active() -> bool:
    return oidc_providers() is not None and _authlib_installed()


def sign_out(user: User) -> None:
    st.session_state.pop(SESSION_KEY, None)
    for key in [k for k in st.session_state if not k.startswith("lang")]:
        del st.session_state[key]
    if user.source == "oidc" and _oidc_active():
        st.logout()


def sign_in_page(store: UserStore, lang: str) -> None:
    """The only page an anonymous visitor sees."""
    t = lambda key, **kw: i18n.t(key, lang, **kw)  # noqa: E731
    st.title(t("app_title"))
    st.write(t("sign_in_intro"))
    notice = st.session_state.pop("_signin_notice", None)
    if notice:
        st.warning(notice)
    providers = oidc_providers()
    if providers and _authlib_installed():
        for p in providers:
            label = t("sso_sign_in", provider="SSO" if p == "default" else p)
            if st.button(label, key=f"sso-{p}", type="primary"):
                st.login() if p == "default" else st.login(p)
        return
    if providers:
        st.info(t("sso_no_authlib"))
    if store.count() == 0:
        st.info(t("no_users"))
    with st.form("signin", clear_on_submit=True):
        username = st.text_input(t("username"), key="signin_user", max_chars=128)
        password = st.text_input(t("password"), type="password", key="signin_password", max_chars=1024)
        submitted = st.form_submit_button(t("sign_in"), key="signin_submit", type="primary")
    if submitted:
        try:
            user = store.authenticate(username or "", password or "")
        except SignInError as e:
            if e.retry_after is not None:
                st.error(t("sign_in_locked", minutes=max(1, math.ceil(e.retry_after / 60))))
            else:
                st.error(t("sign_in_failed"))
            return
        st.session_state[SESSION_KEY] = store.start_session(user)
        st.rerun()
