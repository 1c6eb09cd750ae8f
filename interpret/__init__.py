"""Model interpretation for audits.

Tabular explanations (SHAP, LIME, their quality evidence and reason codes) live in the
flat modules of this package:

- `models`: what a model is to an explainer (family, explained output, scale);
- `encoding`: raw columns <-> numeric matrix (categoricals as codes) for model-agnostic explainers;
- `pipeline_map`: scikit-learn preprocessing outputs mapped back to the raw input columns;
- `sampling`: stratified samples with design weights;
- `shap_explain`: explainer choice and SHAP values on the raw columns;
- `importance`: global and per-group mean |SHAP| with stratified-bootstrap intervals;
- `lime_explain`: seeded, reproducible LIME;
- `quality`: additivity, stability, agreement, deletion faithfulness, background sensitivity;
- `reason_codes`: plain-language reasons (English, Korean);
- `plots`: evidence figures (matplotlib Agg).

Nothing here imports the audit engine; modules are imported on demand so that importing
`interpret` (e.g. for `interpret.lm`) stays cheap.
"""
