"""The review app for compliance officers (Streamlit); all decisions go through `audit.review`."""
