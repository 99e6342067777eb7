"""Knowledge base: articles, ru/en normalisation, matcher with calibrated confidence, evaluation.

It knows bridge's domain types only, never its store, web or pipeline.
"""
