"""The resident's journey: consent, language, area and the survey, as (state, input) -> effects."""
