"""Prompts: instruction templates (BGE, E5, INSTRUCTOR, E5-mistral), ICL few-shot prompts and examples."""
