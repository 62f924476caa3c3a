"""Prompts, the one place for what goes around a text before it is embedded.

* :mod:`~embedlight.prompts.instructions`: query/document instruction templates (BGE, E5, INSTRUCTOR,
  E5-mistral) and how a row's ``prompt`` fills them.
* :mod:`~embedlight.prompts.icl`: the ICL templates (``DEFAULT_ICL_TEMPLATE``), the budgeted few-shot
  prompt builder, ``icl_prompt`` / ``icl_suffix`` for inference, PromptEOL.
* :mod:`~embedlight.prompts.examples`: in-context examples and reading them from files.

Used by ``data/`` (collators), ``evaluation/`` (ICL and MTEB encoders), ``engine/`` (mining, scoring),
``models/`` (default prompts) and ``modules/`` (the exported ICL template).
"""
