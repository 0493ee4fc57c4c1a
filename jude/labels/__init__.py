"""Labels: relevance (judged, scarce, strict) and engagement (behaviour, plentiful, noisy).

- :mod:`jude.labels.judges`: ``RUBRIC``, ``RubricJudge`` (default), ``LLMJudge``
  (OpenAI-compatible endpoint), ``make_judge``.
- :mod:`jude.labels.sampling`: ``sample_pairs`` (which pairs the judge sees) and
  ``judge_pairs`` (grades -> relevance labels).
- :mod:`jude.labels.engagement`: ``engagement_labels`` (applies and dismisses -> labels).
- :mod:`jude.labels.report`: ``label_report`` and ``label_report_html``.
"""
