"""Offline tools: backtest, suggest, import and batch dedup, on the live stages' engines.

They read CSV files and call the same functions as the pipeline (scoring's
engine, dedup's matching and step, routing's router); no live stage imports them.
"""
