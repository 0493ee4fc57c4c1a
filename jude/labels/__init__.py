"""Labels: relevance (judged, scarce, strict) and engagement (behaviour, plentiful, noisy).

- :mod:`jude.labels.judge_interface`: the shared ``Judge`` interface (``Judgement``,
  ``JudgeStats``, ``JudgeError``), which both judges build on.
- :mod:`jude.labels.judges`: ``make_judge`` (and the interface, re-exported).
- :mod:`jude.labels.rubric`: ``RUBRIC``, ``rubric_grade``, ``RubricJudge`` (default).
- :mod:`jude.labels.llm_judge`: ``LLMJudge`` (OpenAI-compatible endpoint: retries,
  on-disk cache, malformed answers counted).
- :mod:`jude.labels.sampling`: ``sample_pairs`` (which pairs the judge sees) and
  ``judge_pairs`` (grades -> relevance labels).
- :mod:`jude.labels.engagement`: ``engagement_labels`` (applies and dismisses -> labels).
- :mod:`jude.labels.report`: ``label_report`` and ``label_report_html``.
- :mod:`jude.labels.build`: ``build_labels`` (the recipe every caller uses: sample,
  judge, add engagement) -> ``LabelSet`` (``table``, ``stats``).
"""
